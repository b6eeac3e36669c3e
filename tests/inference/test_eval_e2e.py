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
# pytest-timeout counts fixtures too, so each test's own limit is the sum of every child it may wait
# on (the module's eval run included, since any test may be the first to need it) plus a margin, and a
# child that hangs is stopped by its own timeout first, with its output in the failure.
EVAL_S = 420  # one `aimo eval` of a few problems on the tiny model (about a minute when the CPU is free)
BROWSER_S = 120
EXPORT_S = 120
TRAIN_S = 300
MARGIN_S = 60


def waits_on(*children_s: int) -> pytest.MarkDecorator:
    return pytest.mark.timeout(sum(children_s) + MARGIN_S)


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    completed = subprocess.run(
        [sys.executable, "-m", "inference.cli", "eval", "--synthetic", "6", "--samples", "4", "--agree", "3",
         "--sandbox", "spawn", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=EVAL_S,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return out, completed


@pytest.fixture(scope="module")
def run_dir(eval_run):
    return eval_run[0]


def test_the_main_job_reads_well_in_a_terminal(eval_run):
    """A progress bar and a summary table: no engine log, no traceback at exit (vLLM's INFO start-up and
    its AsyncLLM.__del__ TypeError were some 90 lines of it)."""
    out, completed = eval_run
    printed = completed.stdout + completed.stderr
    assert len(printed.splitlines()) < 40, printed
    assert "Traceback" not in printed and "Exception ignored" not in printed and " INFO " not in printed, printed
    assert "accuracy" in completed.stdout and str(out / "report.html") in completed.stdout
    assert "6/6" in completed.stdout  # the progress bar's last state


@waits_on(EVAL_S)
def test_eval_writes_results_traces_summary_and_report(run_dir):
    results = pl.read_csv(run_dir / "results.csv")
    assert results.height == 6 and set(results.columns) >= {"id", "answer", "expected", "correct", "votes",
                                                              "code_calls", "seconds", "tokens"}
    assert pl.read_parquet(run_dir / "results.parquet").height == 6
    traces = [json.loads(line) for line in (run_dir / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 6 and traces[0]["samples"][0]["turns"][0]["text"]
    summary = json.loads((run_dir / "summary.json").read_text())
    # The accuracy is the share of rows whose answer is the expected one, counted here from results.csv;
    # and the shipped model (96% of its problems per sample) loses at most two of six by a 4-sample vote.
    right = [a is not None and int(a) == int(e)
             for a, e in zip(results["answer"].to_list(), results["expected"].to_list(), strict=True)]
    assert results["correct"].to_list() == right
    assert summary["accuracy"] == pytest.approx(sum(right) / 6) and sum(right) >= 4, (summary["accuracy"], right)
    assert summary["answered"] == 6 and summary["tool_calls_per_sample"] >= 1
    assert summary["cache_hit_rate"] > 0.9  # continuations reuse the KV of what came before


@waits_on(EVAL_S, BROWSER_S)
def test_report_renders_in_a_headless_browser(run_dir):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed (scripts/setup.sh installs it)")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--virtual-time-budget=3000", "--dump-dom",
         (run_dir / "report.html").as_uri()],
        capture_output=True, text=True, timeout=BROWSER_S,
    ).stdout
    assert 'data-plots-rendered="3"' in dom  # all three plots decoded and laid out
    assert "id=\"accuracy-vs-samples\"" in dom and "class=\"code\"" in dom and "class=\"output\"" in dom


@waits_on(EVAL_S, EXPORT_S, TRAIN_S)
def test_export_sft_round_trips_into_the_tiny_models_training(run_dir, tmp_path):
    from tiny_tir.tokenizer import build_tokenizer
    from tiny_tir.train import IGNORE, encode_sft

    out = tmp_path / "sft.jsonl"
    exported = subprocess.run([sys.executable, "-m", "inference.cli", "export-sft", str(run_dir), "--out", str(out)],
                              cwd=ROOT, capture_output=True, text=True, timeout=EXPORT_S)
    assert exported.returncode == 0, exported.stderr[-3000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    traces = [json.loads(line) for line in (run_dir / "traces.jsonl").read_text().splitlines()]
    right = [(t["id"], tuple((turn["text"], turn["output"]) for turn in s["turns"]))
             for t in traces for s in t["samples"] if s["finish"] == "answered" and s["answer"] == t["expected"]]
    assert records and len(records) == len(set(right))  # each distinct right sample once
    assert f"{len(records)} records from {len(right)} right" in exported.stdout
    tok = build_tokenizer()
    for record in records:
        segments = record["segments"]
        assert [s["train"] for s in segments[:2]] == [False, True] and segments[-1]["train"]
        assert segments[-1]["text"].endswith(f"\\boxed{{{record['answer']}}}<|end|>")
        assert segments[0]["text"].startswith("<|user|>" + record["problem"])
        # The splice rule: the segments tokenize apart exactly as the whole text does, so the masks line up.
        whole = tok.encode("".join(s["text"] for s in segments), add_special_tokens=False)
        assert whole == [i for s in segments for i in tok.encode(s["text"], add_special_tokens=False)]
    (ids, labels), *_ = encode_sft(out)
    reply = tok.encode(records[0]["segments"][2]["text"], add_special_tokens=False)
    start = len(tok.encode("".join(s["text"] for s in records[0]["segments"][:2]), add_special_tokens=False))
    assert ids[start:start + len(reply)] == reply and set(labels[start:start + len(reply)]) == {IGNORE}
    trained = subprocess.run([sys.executable, "-m", "tiny_tir.train", "--smoke", "--sft", str(out)],
                             cwd=ROOT, capture_output=True, text=True, timeout=TRAIN_S)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    assert f"sft examples {len(records)}" in trained.stdout and "smoke: loss" in trained.stdout


@waits_on(EVAL_S)
def test_eval_with_mixed_sources_a_revision_round_and_the_verifier_from_a_config_file(tmp_path):
    config = tmp_path / "levers.toml"
    config.write_text("""
samples = 4
agree = 0
selector = "verifier"
verifier = "models/tiny-verifier"
revise_below = 0.99
revise_samples = 1

[[sources]]
name = "tir"
share = 3

[[sources]]
name = "no-tool"
tools = false
weight = 0.5
prompt = "{problem}"
""")
    out = tmp_path / "run"
    completed = subprocess.run(
        [sys.executable, "-m", "inference.cli", "eval", "--synthetic", "2", "--config", str(config),
         "--sandbox", "local", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=EVAL_S)
    assert completed.returncode == 0, completed.stderr[-3000:]
    policy = json.loads((out / "summary.json").read_text())["policy"]
    assert [(s["name"], s["share"], s["tools"]) for s in policy["sources"]] == [("tir", 3, True),
                                                                                ("no-tool", 1.0, False)]
    assert policy["selector"] == "verifier" and policy["revision"]["below"] == 0.99
    for line in (out / "traces.jsonl").read_text().splitlines():
        samples = json.loads(line)["samples"]
        assert [s["source"] for s in samples[:4]] == ["tir", "tir", "tir", "no-tool"]
        assert samples[3]["weight"] == 0.5 and not any(t["code"] and t["output"] for t in samples[3]["turns"])
        answered = [s for s in samples if s["answer"] is not None and s["finish"] != "aborted"]
        assert answered and all(s["verifier_score"] is not None for s in answered)
