"""The lab on real traces: the tiny model records a run (early stopping on), and the lab's replay of
that run's own policy, with the timing fitted on the other half of the problems, must give the same
answers (so the same score) and the time within a factor of 2; then
`aimo lab` searches policies on it and writes the report with its Pareto plot."""

from __future__ import annotations

import base64
import json

import polars as pl
import pytest
from typer.testing import CliRunner

from inference.budget import BudgetConfig, TimeBudget
from inference.cli import app
from inference.evaluate import evaluate
from inference.lab import fit_timing, load_runs, replay_recorded_policy
from inference.lab.recording import Recording
from inference.problems import synthetic_problems
from inference.sample import SamplingConfig
from inference.solver import Solver, SolverConfig
from sandbox_service.local import AsyncLocalSandbox

SAMPLES = 8
PROBLEMS = 16  # two halves of 8: one to fit the timing on, one to check it on
# The recording (vLLM's start, then 16 problems x 8 samples on a CPU) runs in the first test's fixture,
# which pytest-timeout counts: about 3-4 minutes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def recorded(engine_loop, tiny_engine, tiny_dialect, tmp_path_factory):
    out = tmp_path_factory.mktemp("recorded")

    async def record():
        async with AsyncLocalSandbox(pool_size=2) as sandbox:
            # Temperature 1: the samples differ, so early stopping (3 of 8 agree) cuts some of them off.
            config = SolverConfig(samples=SAMPLES, agree=3, seed=11,
                                  sampling=SamplingConfig(temperature=1.0, max_tokens=900))
            solver = Solver(tiny_engine, tiny_dialect, sandbox, config)
            budget = TimeBudget(BudgetConfig(total_s=3600, problems=PROBLEMS, max_samples=SAMPLES))
            return await evaluate(synthetic_problems(PROBLEMS, seed=31), solver, budget, out, show_progress=False)

    summary = engine_loop.run(record())
    assert summary["policy"]["agree"] == 3
    return out


def test_the_replay_of_the_recorded_policy_matches_the_recorded_run(recorded):
    recording = load_runs([recorded])
    assert any(s.finish == "aborted" for p in recording.problems for s in p.samples)  # early stop did cut some
    # The timing is fitted on half the problems and checked on the other half, which it has not seen:
    # fitted and checked on the same recording, a model that only memorised it would pass.
    halves = Recording(recording.problems[0::2], recording.policy), Recording(recording.problems[1::2],
                                                                              recording.policy)
    checks = [replay_recorded_policy(held_out, fit_timing(fitted_on))
              for fitted_on, held_out in (halves, halves[::-1])]
    for check in checks:
        assert check.answers_differ == []
        assert check.predicted_correct == check.recorded_correct
    # Held out, the fit is much looser than in-sample (within 10% there): 0.71x and 1.25x here, on
    # sub-second problems timed on a shared 2-core machine. Bounded at a factor of 2 either way, so a
    # timing model that is wrong, not just noisy, still fails.
    assert all(0.5 <= check.time_ratio <= 2.0 for check in checks), [c.time_ratio for c in checks]


def test_aimo_lab_searches_policies_and_writes_the_report(recorded, tmp_path):
    result = CliRunner().invoke(app, ["lab", str(recorded), "--samples", "2,4,8", "--agree", "1,3,8",
                                      "--replicates", "20", "--scoring", "aimo3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "replay of the recorded policy" in result.output and "Pareto front" in result.output
    table = pl.read_csv(tmp_path / "lab.csv")
    assert table.height == 9 and table["pareto"].any()
    assert table["score"].is_between(0, 1).all() and (table["pass_at_n"] >= table["score"] - 1e-9).all()
    page = (tmp_path / "lab.html").read_text()
    image = page.split("id='pareto' alt='pareto' src='data:image/png;base64,")[1].split("'")[0]
    assert base64.b64decode(image).startswith(b"\x89PNG")


def test_aimo_lab_refuses_a_folder_without_traces(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({}))
    result = CliRunner().invoke(app, ["lab", str(tmp_path)])
    assert result.exit_code == 2 and "no traces.jsonl" in result.output
