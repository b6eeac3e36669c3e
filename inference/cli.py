"""The `aimo` command: solve one problem, evaluate a problem set, or serve the sandbox.

    aimo solve "What is 2^100 mod 997?"
    aimo eval problems.csv --samples 8 --out runs/first
    aimo eval --synthetic 20            # the tiny model's kind of problems, generated fresh
    aimo eval set.csv --model gpt-oss-120b --preset aimo3-gpt-oss   # the AIMO3 winners' pipeline
    aimo lab runs/first --samples 4,8,16 --agree 2,3,4 --total-s 3600   # replay the traces under other policies
    aimo export-sft runs/first --out sft.jsonl   # the right samples as fine-tuning data
    aimo sandbox --isolation nsjail     # the gRPC sandbox service (same flags as python -m sandbox_service)
    aimo sandbox mcp|http --sandbox H:P # its MCP server / SandboxFusion and NeMo-Skills HTTP drop-ins

Every option can also come from a TOML file (`--config aimo.toml`, keys as the option names with
underscores); options on the command line win. The defaults run on a CPU with the bundled tiny model.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import typer

from .assembly import (
    TINY_MODEL,
    Settings,
    SettingsError,
    evaluate_problems,
    load_settings,
    preset_and_dialect,
    solve_problem,
)

# At the top, not in a command: vLLM's spawned engine processes import the `aimo` command, and this
# module then quiets vLLM's import-time logs in them too (inference/console.py).
from .console import print_summary, quiet_engine_logs

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])


SELECTOR_HELP = ("majority, entropy, entropy-tail (its last 256 tokens), votes-entropy[-tail] (vote count first), "
                 "code (down-weights failed code), executed or supported (drop samples), verifier (needs --verifier)")
STOP_HELP = "agree (once --agree samples agree), or uncatchable (also once the leader cannot be caught)"
PRESET = typer.Option(None, help="a whole pipeline: aimo3-gpt-oss, aimo3-gpt-oss-2nd (docs/aimo3-preset.md)")
VERBOSE = typer.Option(False, "--verbose", help="show the engine's own logs (vLLM's start-up and warnings)")
REVISE_HELP = "a revision round when the leader holds less than this share of the votes (0: never)"
CONFIG = typer.Option(None, "--config", help="a TOML file of option values", exists=True, dir_okay=False)


@app.command()
def solve(
    problem: str = typer.Argument(..., help="the problem statement"),
    config: Path = CONFIG,
    model: str = typer.Option(None, help="model folder or name [default: the bundled tiny model]"),
    engine: str = typer.Option(None, help="'vllm' (in-process) or an OpenAI-compatible server URL"),
    sandbox: str = typer.Option(None, help="'spawn', 'local', or the host:port of a sandbox service"),
    samples: int = typer.Option(None, help="samples to vote over"),
    selector: str = typer.Option(None, help=SELECTOR_HELP),
    budget: float = typer.Option(None, "--budget", help="seconds for this problem"),
    trace: bool = typer.Option(False, help="print every sample's trace as JSON"),
    preset: str = PRESET,
    verbose: bool = VERBOSE,
) -> None:
    """Solve one problem and print the answer."""
    quiet_engine_logs(verbose)
    settings = settings_or_exit(config, model=model, engine=engine, sandbox=sandbox, samples=samples,
                                selector=selector, total_s=budget, preset=preset)
    result = asyncio.run(solve_problem(settings, problem))
    if trace:
        typer.echo(json.dumps(result, indent=1))
    typer.echo(f"answer: {result['answer']}  votes: {result['votes']}  ({result['elapsed_s']:.1f} s)"
               + (f"  note: {result['failure']}" if result["failure"] else ""))


@app.command("eval")
def eval_command(
    problems_csv: Path = typer.Argument(None, help="CSV with columns id,problem[,answer]", dir_okay=False),
    synthetic: int = typer.Option(0, help="instead of a CSV: this many fresh problems of the tiny model's kind"),
    config: Path = CONFIG,
    model: str = typer.Option(None, help="model folder or name [default: the bundled tiny model]"),
    engine: str = typer.Option(None, help="'vllm' (in-process) or an OpenAI-compatible server URL"),
    sandbox: str = typer.Option(None, help="'spawn', 'local', or the host:port of a sandbox service"),
    samples: int = typer.Option(None, help="samples per problem (fewer when time runs short)"),
    agree: int = typer.Option(None, help="stop a problem once this many samples agree (0: every sample to its end)"),
    selector: str = typer.Option(None, help=SELECTOR_HELP),
    revise_below: float = typer.Option(None, help=REVISE_HELP),
    revise_samples: int = typer.Option(None, help="samples in a revision round"),
    verifier: str = typer.Option(None, help="a process reward model to score the samples (models/tiny-verifier)"),
    total: float = typer.Option(None, "--total-s", help="seconds for the whole set"),
    expected: int = typer.Option(None, "--problems", help="problems expected in all, for the budget"),
    out: str = typer.Option(None, help="folder for results.csv, traces.jsonl, summary.json, report.html"),
    stop: str = typer.Option(None, help=STOP_HELP),
    preset: str = PRESET,
    verbose: bool = VERBOSE,
) -> None:
    """Evaluate a problem set: accuracy, per-problem results, traces and an HTML report."""
    from .problems import ProblemSetError, read_problems, synthetic_problems

    quiet_engine_logs(verbose)
    if problems_csv is not None:
        try:
            problems, messages = read_problems(problems_csv)
        except (ProblemSetError, OSError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        for message in messages:
            typer.echo(f"warning: {message}", err=True)
    elif synthetic:
        try:
            problems = synthetic_problems(synthetic)
        except ProblemSetError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    else:
        typer.echo("error: give a CSV file or --synthetic N", err=True)
        raise typer.Exit(2)
    settings = settings_or_exit(config, model=model, engine=engine, sandbox=sandbox, samples=samples, agree=agree,
                                selector=selector, revise_below=revise_below, revise_samples=revise_samples,
                                verifier=verifier, total_s=total, problems=expected, out=out, stop=stop,
                                preset=preset)
    summary = asyncio.run(evaluate_problems(settings, problems))
    print_summary(summary, Path(settings.out) / "report.html")


def settings_or_exit(config: Path | None, **given) -> Settings:
    """The settings from `--config` and the options given; bad ones end the command with exit status 2."""
    try:
        return load_settings(config, **given)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _choice(help: str) -> typer.Option:
    return typer.Option(None, help=f"{help} (comma-separated values: each is tried)")


@app.command()
def lab(
    runs: list[Path] = typer.Argument(..., help="folders `aimo eval` wrote (samples pool by problem id)",
                                      exists=True, file_okay=False),
    samples: str = _choice("samples per problem"),
    agree: str = _choice("early-stop agreement thresholds"),
    selector: str = _choice(f"selectors: {SELECTOR_HELP}"),
    stop: str = _choice(f"stop rules: {STOP_HELP}"),
    slots: str = _choice("samples decoding at once (the engine's max_num_seqs; 0: all)"),
    total: str = typer.Option(None, "--total-s", help="global deadlines in seconds (comma-separated)"),
    expected: str = typer.Option(None, "--problems", help="problems the budget expects (comma-separated)"),
    base_share: str = _choice("share of the even split a problem gets as its base"),
    ceiling_factor: str = _choice("most bases one problem may use"),
    random_count: int = typer.Option(0, "--random", help="score this many policies drawn from the grid, not all"),
    replicates: int = typer.Option(100, help="simulated runs of the set per policy"),
    scoring: str = typer.Option("single", help="single, or aimo3 (the set runs twice: 1 if both right, 0.5 if one)"),
    max_minutes: float = typer.Option(None, help="the best policy must fit the set in this many minutes"),
    seed: int = typer.Option(0, help="seed of the simulated draws"),
    out: Path = typer.Option(Path("runs/lab"), help="folder for lab.csv and lab.html"),
) -> None:
    """Replay recorded traces under other policies: expected score, time and the Pareto front, no GPU."""
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    from .lab.report import label, varied
    from .lab.search import load_search, search_policies

    try:
        setup = load_search(runs, {"samples": samples, "agree": agree, "selector": selector, "stop": stop,
                                   "slots": slots,
                                   "total_s": total, "problems": expected, "base_share": base_share,
                                   "ceiling_factor": ceiling_factor})
    except ValueError as exc:  # RecordingError is one
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for warning in setup.warnings:
        typer.echo(f"warning: {warning}", err=True)
    console = Console()
    if (check := setup.check) is not None:
        console.print(f"replay of the recorded policy: {check.predicted_correct} right (recorded "
                      f"{check.recorded_correct}), {check.predicted_s:.1f} s (recorded {check.recorded_s:.1f} s)")
    found = search_policies(
        setup, out=out, random_count=random_count, replicates=replicates, scoring=scoring, seed=seed,
        max_seconds=None if max_minutes is None else max_minutes * 60,
        progress=lambda policies: track(policies, description="scoring policies", console=console))
    names = varied(found.scores)
    table = Table("policy", "score [95%]", "minutes", "pass@n", "selection loss", title="Pareto front")
    for s in found.front:
        table.add_row(label(s.policy, names), f"{s.score:.3f} [{s.low:.3f}, {s.high:.3f}]", f"{s.seconds / 60:.1f}",
                      f"{s.pass_at_n:.3f}", f"{s.selection_loss:.3f}")
    console.print(table)
    top = found.best
    console.print(f"best: {label(top.policy, names)}, score {top.score:.3f}" if top else "no policy fits the time")
    console.print(f"report: {found.report}")


@app.command("export-sft")
def export_sft_command(
    runs: list[Path] = typer.Argument(..., help="folders `aimo eval` wrote (or their traces.jsonl files)",
                                      exists=True),
    out: Path = typer.Option(Path("runs/sft.jsonl"), help="the JSON-lines file to write"),
    model: str = typer.Option(str(TINY_MODEL), help="the model the traces came from (its tokenizer and dialect)"),
    dialect: str = typer.Option("", help="the dialect, if not the model's preset's"),
    max_tool_calls: int = typer.Option(8, help="the run's max_tool_calls (dialects that show calls left)"),
) -> None:
    """Fine-tuning data from evaluation traces: the right samples only, deduplicated, tool outputs masked."""
    from .sft import export_sft

    _, chosen = preset_and_dialect(model, dialect)
    try:
        stats = export_sft(runs, chosen, out, max_tool_calls=max_tool_calls)
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        typer.echo(f"error: not a traces file ({exc!r})", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{stats.kept} records from {stats.right} right of {stats.samples} finished samples "
               f"({stats.problems_kept} of {stats.problems} graded problems): {out}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sandbox(ctx: typer.Context) -> None:
    """Serve the sandbox over gRPC (all flags of `python -m sandbox_service`); `aimo sandbox mcp|http ...`
    serves its front doors instead (flags of `python -m sandbox_service.frontdoors.mcp|http`)."""
    from sandbox_service.__main__ import main as serve
    from sandbox_service.frontdoors import DOORS, serve_door

    if ctx.args and ctx.args[0] in DOORS:
        serve_door(ctx.args[0], list(ctx.args[1:]))
        return
    serve(list(ctx.args))


def main() -> None:
    app(prog_name="aimo")


if __name__ == "__main__":
    sys.exit(main())
