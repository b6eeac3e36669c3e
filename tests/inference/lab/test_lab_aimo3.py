"""Second place's changes as the lab replays them on recorded traces: "vote count over entropy" and
"last-256-token entropy" as selectors, "leader cannot be caught" as a stop rule. The traces are written
as `aimo eval` writes them (Result.to_dict() plus the plan) and read back through `load_runs`."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from inference.budget import Plan
from inference.lab import Policy, load_runs
from inference.lab.replay import run_set
from inference.lab.timing import Timing
from inference.recipes import lab_policy, recipe_for
from inference.trace import Result, SampleTrace, TurnTrace
from inference.voting import ENTROPY_TAIL_TOKENS

MS_PER_TOKEN = Timing(step_ms=1.0, per_sequence_ms=0.0, turn_ms=0.0, problem_ms=0.0)


def sample(index: int, answer: int | None, tokens: int, mean: float | None = None,
           tail: float | None = None) -> SampleTrace:
    """A finished sample: one turn of `tokens` tokens (it finishes after `tokens` ms in the replay), with
    a mean entropy over all its tokens and the entropy of its last 256 tokens as recorded."""
    trace = SampleTrace(index=index, seed=index, answer=answer, finish="answered" if answer is not None else
                        "no_answer", wall_ms=float(tokens))
    trace.turns.append(TurnTrace(text="", finish_reason="stop", prompt_tokens=10, generated_tokens=tokens,
                                 cached_tokens=0, reusable_tokens=0, generate_ms=float(tokens)))
    if mean is not None:
        trace.entropy_tokens = tokens
        trace.entropy_sum = mean * tokens
        trace.entropy_tail = [tail if tail is not None else mean] * min(tokens, ENTROPY_TAIL_TOKENS)
    return trace


def record(tmp_path, problems: list[tuple[int, list[SampleTrace]]]):
    """traces.jsonl as `aimo eval` writes it, read back by the lab."""
    lines = []
    for number, (expected, samples) in enumerate(problems):
        result = Result(problem="p", answer=expected, answered=True, votes={}, samples=samples, elapsed_s=1.0)
        lines.append(json.dumps({"id": f"p{number}", "expected": expected, **result.to_dict(),
                                 "plan": asdict(Plan(seconds=1e6, samples=len(samples)))}))
    (tmp_path / "traces.jsonl").write_text("\n".join(lines) + "\n")
    return load_runs([tmp_path])


def replay(recording, **policy) -> tuple[list[int], list[float]]:
    run = run_set(recording.problems, Policy(**{"samples": 8, "agree": 0, "total_s": 1e7, **policy}), MS_PER_TOKEN)
    return run.answers, run.seconds


def test_vote_count_over_entropy_lets_more_votes_beat_fewer_confident_ones(tmp_path):
    recording = record(tmp_path, [
        # Three hesitant samples say 7, two confident ones say 8: the entropy vote takes 8 (2 x 1/0.1 > 3 x 1).
        (7, [sample(0, 7, 500, 1.0), sample(1, 7, 600, 1.0), sample(2, 7, 700, 1.0),
             sample(3, 8, 800, 0.1), sample(4, 8, 900, 0.1)]),
        # Equal counts: the entropy still decides between them (the confident 8s win).
        (8, [sample(0, 7, 500, 1.0), sample(1, 7, 600, 1.0), sample(2, 8, 700, 0.2), sample(3, 8, 800, 0.2)]),
    ])
    assert replay(recording, selector="entropy")[0] == [8, 8]
    assert replay(recording, selector="votes-entropy")[0] == [7, 8]
    assert replay(recording, selector="majority")[0] == [7, 7]  # the tie: to the smaller answer


def test_last_256_token_entropy_judges_a_sample_by_how_it_ends(tmp_path):
    # 7's sample wanders (mean 2.0) but ends sure of itself (0.1 over its last 256 tokens); 8's is the reverse.
    recording = record(tmp_path, [(7, [sample(0, 7, 2000, mean=2.0, tail=0.1), sample(1, 8, 2000, mean=0.5,
                                                                                        tail=1.0)])])
    votes = {s.answer: s.vote for s in recording.problems[0].samples}
    assert (votes[7].mean_entropy, votes[7].tail_entropy) == (pytest.approx(2.0), pytest.approx(0.1))
    assert replay(recording, selector="entropy")[0] == [8]
    assert replay(recording, selector="entropy-tail")[0] == [7]
    assert replay(recording, selector="votes-entropy-tail")[0] == [7]


def test_a_leader_that_cannot_be_caught_stops_the_problem_early(tmp_path):
    # Needing 5 agreeing votes of 8: four 7s, an 8 and a sample without an answer, and two samples still
    # running, 7 cannot be caught (4 > 1 + 2): "uncatchable" stops at the sixth finish, "agree" waits for all.
    answers = [7, 7, 7, 7, 8, None, 9, 10]
    recording = record(tmp_path, [(7, [sample(i, a, 1000 * (i + 1)) for i, a in enumerate(answers)])])
    caught, stopped = replay(recording, agree=5, stop="agree"), replay(recording, agree=5, stop="uncatchable")
    assert caught[0] == stopped[0] == [7]
    assert stopped[1] == [pytest.approx(6.0)] and caught[1] == [pytest.approx(8.0)]


def test_both_presets_replay_as_lab_policies(tmp_path):
    recording = record(tmp_path, [(7, [sample(0, 7, 500, 1.0), sample(1, 7, 600, 1.0), sample(2, 7, 700, 1.0),
                                       sample(3, 8, 800, 0.1), sample(4, 8, 900, 0.1), sample(5, 9, 1000, 1.0),
                                       sample(6, 10, 1100, 1.0), sample(7, 11, 1200, 1.0)])])
    first, second = lab_policy(recipe_for("aimo3-gpt-oss")), lab_policy(recipe_for("aimo3-gpt-oss-2nd"))
    assert (first.base_s, first.bank_slack, first.stop, second.stop) == (300.0, True, "agree", "uncatchable")
    assert run_set(recording.problems, first, MS_PER_TOKEN).answers == [8]
    assert run_set(recording.problems, second, MS_PER_TOKEN).answers == [7]


def test_aimo_lab_compares_the_switches_and_refuses_an_unknown_one(tmp_path):
    import polars as pl
    from typer.testing import CliRunner

    from inference.cli import app

    runs = tmp_path / "run"
    runs.mkdir()
    record(runs, [(7, [sample(i, a, 1000 * (i + 1), 0.5, 0.5) for i, a in enumerate([7, 7, 7, 7, 8, None, 9, 10])])])
    out = tmp_path / "lab"
    done = CliRunner().invoke(app, ["lab", str(runs), "--samples", "8", "--agree", "5", "--selector",
                                    "entropy,votes-entropy-tail", "--stop", "agree,uncatchable", "--replicates", "5",
                                    "--out", str(out)])
    assert done.exit_code == 0, done.output
    lab = pl.read_csv(out / "lab.csv")
    assert sorted(zip(lab["selector"], lab["stop"], strict=True)) == [
        ("entropy", "agree"), ("entropy", "uncatchable"), ("votes-entropy-tail", "agree"),
        ("votes-entropy-tail", "uncatchable")]
    by_stop = dict(zip(lab["stop"], lab["seconds"], strict=False))
    assert by_stop["uncatchable"] < by_stop["agree"]
    refused = CliRunner().invoke(app, ["lab", str(runs), "--stop", "never", "--out", str(out)])
    assert refused.exit_code == 2 and "unknown stop never" in refused.output
