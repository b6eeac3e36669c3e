"""What the main job shows in a terminal: a quiet engine by default, the progress bar, a summary table.

vLLM logs every step of its start-up at INFO from three processes (the main one, the engine core and
its worker), and libraries under it warn about their own builds. `quiet_engine_logs()` turns that down
through their own settings, before vLLM is imported: vLLM's `VLLM_LOGGING_LEVEL` (which its child
processes inherit), torch's `TORCH_CPP_LOG_LEVEL`, Python's warning filters, and the `vllm` logger for
what vLLM logs at import, before its logging is configured. `--verbose` leaves all of them alone.
"""

from __future__ import annotations

import logging
import os
import warnings

from rich.console import Console
from rich.table import Table

QUIET_ENV = "AIMO_QUIET_ENGINE"  # set for the child processes too: they import vLLM afresh
QUIET_SETTINGS = {
    "VLLM_LOGGING_LEVEL": "ERROR",
    "TORCH_CPP_LOG_LEVEL": "ERROR",  # torch's C++ warnings (the CPU worker's NUMA notice)
    # FutureWarnings from vLLM's Triton shims, and multiprocessing's resource tracker at exit.
    "PYTHONWARNINGS": "ignore::FutureWarning,ignore::UserWarning:multiprocessing.resource_tracker",
    "TQDM_DISABLE": "1",  # the checkpoint-loading bar (engine_args also turns it off where it can)
}


def quiet_engine_logs(verbose: bool = False) -> None:
    """Quiet vLLM and what it pulls in, in this process and in those it starts (not when `verbose`).
    Settings already in the environment win: a user's VLLM_LOGGING_LEVEL=DEBUG stays."""
    if verbose:
        return
    os.environ[QUIET_ENV] = "1"
    for name, value in QUIET_SETTINGS.items():
        os.environ.setdefault(name, value)
    _quiet_this_process()


def _quiet_this_process() -> None:
    logging.getLogger("vllm").setLevel(os.environ.get("VLLM_LOGGING_LEVEL", "ERROR"))
    warnings.filterwarnings("ignore", category=FutureWarning)


def engine_is_quiet() -> bool:
    return os.environ.get(QUIET_ENV) == "1"


# vLLM starts its engine processes with multiprocessing's spawn method, which imports the parent's main
# module (the `aimo` command, hence this module) in each child before vLLM: quiet them from the start.
if engine_is_quiet():
    _quiet_this_process()


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def summary_table(summary: dict, report: str | os.PathLike | None = None) -> Table:
    """The evaluation's headline figures as a short two-column table."""
    table = Table(title="aimo eval", show_header=False, title_justify="left", box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    answered = f"{summary['answered']} of {summary['problems']}"
    rows = [
        ("problems", f"{summary['problems']} ({summary['graded']} graded, {answered} answered)"),
        ("accuracy", _percent(summary["accuracy"])),
        ("pass@k", _percent(summary["pass_at_k"])),
        ("time", f"{summary['seconds_total']:.1f} s in all, {summary['seconds_per_problem']:.1f} s per problem"),
        ("tokens", f"{summary['tokens']:,} ({summary['tokens_per_second']:.0f} per second)"),
        ("tool calls", f"{summary['tool_calls_per_sample']:.2f} per sample"),
        ("prefix cache", _percent(summary["cache_hit_rate"])),
    ]
    if summary["failures"]:
        rows.append(("notes", f"{len(summary['failures'])} problems, e.g. {summary['failures'][0]}"))
    if report is not None:
        rows.append(("report", str(report)))
    for name, value in rows:
        table.add_row(name, value)
    return table


def print_summary(summary: dict, report: str | os.PathLike | None = None, console: Console | None = None) -> None:
    (console or Console()).print(summary_table(summary, report))
