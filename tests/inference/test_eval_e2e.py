"""`aimo eval` end to end: the tiny model in vLLM CPU, the real sandbox service, every output file, and
the HTML report opened in a real headless browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    completed = subprocess.run(
        [sys.executable, "-m", "inference.cli", "eval", "--synthetic", "6", "--samples", "4", "--agree", "3",
         "--sandbox", "spawn", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "6 problems, accuracy" in completed.stdout
    return out


def test_eval_writes_results_traces_summary_and_report(run_dir):
    results = pl.read_csv(run_dir / "results.csv")
    assert results.height == 6 and set(results.columns) >= {"id", "answer", "expected", "correct", "votes",
                                                              "code_calls", "seconds", "tokens"}
    assert pl.read_parquet(run_dir / "results.parquet").height == 6
    traces = [json.loads(line) for line in (run_dir / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 6 and traces[0]["samples"][0]["turns"][0]["text"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0 <= summary["accuracy"] <= 1 and summary["answered"] == 6 and summary["tool_calls_per_sample"] >= 1
    assert summary["cache_hit_rate"] > 0.9  # continuations reuse the KV of what came before


def test_report_renders_in_a_headless_browser(run_dir):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed (scripts/setup.sh installs it)")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--virtual-time-budget=3000", "--dump-dom",
         (run_dir / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert 'data-plots-rendered="3"' in dom  # all three plots decoded and laid out
    assert "id=\"accuracy-vs-samples\"" in dom and "class=\"code\"" in dom and "class=\"output\"" in dom
