"""The main job's terminal: the engine's logs quieted through their own settings (and not when verbose,
nor over a setting the user gave), and the summary table short."""

from __future__ import annotations

import logging
import os

from rich.console import Console

from inference import console
from inference.console import QUIET_ENV, QUIET_SETTINGS, quiet_engine_logs, summary_table

SUMMARY = {"problems": 20, "graded": 20, "accuracy": 0.9, "pass_at_k": 0.95, "answered": 20, "seconds_total": 12.5,
           "seconds_per_problem": 0.6, "tokens": 12345, "tokens_per_second": 987.6, "tool_calls_per_sample": 1.25,
           "cache_hit_rate": 0.99, "failures": ["p3: time budget of 1 s ran out"]}


def _clear(monkeypatch):
    for name in (QUIET_ENV, *QUIET_SETTINGS):
        monkeypatch.delenv(name, raising=False)


def test_quiet_sets_the_engines_own_settings_but_keeps_the_users(monkeypatch):
    _clear(monkeypatch)
    monkeypatch.setenv("TORCH_CPP_LOG_LEVEL", "INFO")  # the user's: it stays
    monkeypatch.setattr(logging.getLogger("vllm"), "level", logging.NOTSET)
    quiet_engine_logs()
    assert os.environ["VLLM_LOGGING_LEVEL"] == "ERROR" and os.environ[QUIET_ENV] == "1"
    assert os.environ["TORCH_CPP_LOG_LEVEL"] == "INFO"
    assert logging.getLogger("vllm").level == logging.ERROR
    assert console.engine_is_quiet()


def test_verbose_leaves_everything_as_it_was(monkeypatch):
    _clear(monkeypatch)
    before = dict(os.environ)
    quiet_engine_logs(verbose=True)
    assert dict(os.environ) == before and not console.engine_is_quiet()


def test_the_summary_table_is_a_few_lines_with_the_headline_figures():
    out = Console(record=True, width=120)
    out.print(summary_table(SUMMARY, "runs/latest/report.html"))
    text = out.export_text()
    assert len(text.splitlines()) <= 12
    for figure in ("90.0%", "95.0%", "0.6 s per problem", "12,345", "99.0%", "p3: time budget", "report.html"):
        assert figure in text, figure
