"""The gateway double refuses what the real AIMO3 gateway (and its scorer) refuses, and accepts the rest.

Each listener scenario (`kaggle_scenarios.py`) runs in a child process against the double. With
AIMO_KAGGLE_EVALUATION set to a path list whose first folder holds the real `kaggle_evaluation` package
(with pandas and pyarrow importable from the list), the same scenarios also run against the real one and
must end the same way: the double is judged by the real thing, not by its author.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.inference.conftest import KAGGLE_DOUBLE as DOUBLE
from tests.inference.kaggle_scoring import SubmissionRefused, score_submission

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).with_name("kaggle_scenarios.py")
REAL = os.environ.get("AIMO_KAGGLE_EVALUATION", "")
METHOD_REFUSED = "Endpoint listeners passed to `serve` must be functions, got <class 'method'>"

# scenario -> (where it is refused, the gateway's error kind, a part of the message); None: accepted
EXPECTED = {
    "frame": (None, None, None),
    # The real gateway concatenates predictions with polars' relaxed strategy, which polars refuses for
    # series: a series answer fails the submission, whatever its name.
    "series": ("gateway", "GATEWAY_RAISED_EXCEPTION", "Series only supports 'vertical' concat strategy"),
    "module_predict": (None, None, None),
    "bound_method": ("server", None, METHOD_REFUSED),
    "old_serve": ("server", None, METHOD_REFUSED),
    "lambda": ("server", None, "Functions passed as endpoint listeners must be named"),
    "partial": ("server", None, "must be functions, got <class 'functools.partial'>"),
    "wrong_name": ("gateway", "SERVER_MISSING_ENDPOINT", "did not register a listener for predict"),
    "raises": ("gateway", "SERVER_RAISED_EXCEPTION", "the model is not there"),
    "unserializable": ("gateway", "SERVER_RAISED_EXCEPTION", "Type <class 'set'> not supported"),
    "none": ("gateway", "INVALID_SUBMISSION", "No prediction received"),
    "dict": ("gateway", "INVALID_SUBMISSION", "Invalid prediction data type"),
    "two_rows": ("gateway", "INVALID_SUBMISSION", "expected 1 rows but received 2"),
    "bare_int": ("gateway", "GATEWAY_RAISED_EXCEPTION", "target_column_name"),
    "wrong_column": ("scorer", None, "not ['id', 'answer']"),
    "float_answer": ("scorer", None, "not an integer"),
    "string_answer": ("scorer", None, "not an integer"),
    "out_of_range": ("scorer", None, "outside 0..99999: [100000"),
    "negative": ("scorer", None, "outside 0..99999: [-1"),
}
PACKAGES = ["double"] + (["real"] if REAL else [])


def write_test_csv(path: Path, n: int = 3) -> Path:
    pl.DataFrame({"id": [f"p{i}" for i in range(n)], "problem": [f"What is {i} + {i}?" for i in range(n)]}
                 ).write_csv(path)
    return path


def package_path(package: str) -> list[str]:
    if package == "double":
        return [str(DOUBLE)]
    first, *rest = REAL.split(os.pathsep)
    return [first, str(Path(first) / "kaggle_evaluation"), *rest]  # the real server imports its gateway bare


@pytest.fixture(scope="module", params=PACKAGES)
def outcomes(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    csv = write_test_csv(folder / "test.csv")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*package_path(request.param), str(ROOT)])}
    done = subprocess.run([sys.executable, str(SCENARIOS), str(csv), *EXPECTED], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_each_listener_is_judged_as_the_real_gateway_judges_it(outcomes, scenario):
    where, kind, message = EXPECTED[scenario]
    outcome = outcomes[scenario]
    assert outcome["refused_at"] == where, outcome
    if kind:
        assert outcome["kind"] == kind, outcome
    if message:
        assert message in outcome["message"], outcome
    if where is None:
        assert len(outcome["answers"]) == 3 and all(isinstance(a, int) for a in outcome["answers"])


def test_the_old_recipe_is_told_what_to_pass_instead(outcomes):
    assert any("module-level function" in note for note in outcomes["old_serve"]["notes"])


# --- timing: the double's own clock rules (the real constants are 15 minutes and 9 hours) ---------------

@pytest.fixture
def double(monkeypatch):
    monkeypatch.syspath_prepend(str(DOUBLE))
    import kaggle_evaluation.aimo_3_gateway as gateway
    import kaggle_evaluation.aimo_3_inference_server as server

    return gateway, server


def test_the_first_call_may_take_long_and_later_ones_are_timed(double, tmp_path, monkeypatch):
    gateway, server = double
    monkeypatch.setattr(gateway, "RESPONSE_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setenv("KAGGLE_DOUBLE_OUT", str(tmp_path))
    csv = write_test_csv(tmp_path / "test.csv")
    calls = []

    def predict(id_, problem, answer=None):
        calls.append(id_.item(0))
        time.sleep(2.0 if len(calls) == 1 else 0.0)  # the model loads in the first call
        return pl.DataFrame({"id": id_, "answer": [len(calls)]})

    server.AIMO3InferenceServer(predict).run_local_gateway((str(csv),))
    assert sorted(score_submission(tmp_path / "submission.parquet", csv)["answer"]) == [1, 2, 3]
    seconds = [c["seconds"] for c in json.loads((tmp_path / "gateway_calls.json").read_text())]
    assert seconds[0] >= 2.0 > max(seconds[1:])

    def predict(id_, problem, answer=None):  # the same name again: the gateway asks for `predict`
        calls.append(id_.item(0))
        time.sleep(2.0 if len(calls) == 5 else 0.0)  # the second call of this run is too slow
        return pl.DataFrame({"id": id_, "answer": [1]})

    with pytest.raises(Exception, match="GRPC_DEADLINE_EXCEEDED"):
        server.AIMO3InferenceServer(predict).run_local_gateway((str(csv),))


def test_a_server_that_never_listens_fails_the_submission(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(DOUBLE), "KAGGLE_DOUBLE_STARTUP_LIMIT_S": "1",
           "KAGGLE_DOUBLE_PORT_FILE": str(tmp_path / "port"), "KAGGLE_DOUBLE_OUT": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "kaggle_evaluation.aimo_3_gateway",
                           str(write_test_csv(tmp_path / "test.csv"))], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "SERVER_NEVER_STARTED" in done.stderr, done.stderr


def test_the_rerun_serves_the_module_predict_to_a_gateway_in_another_process(tmp_path):
    """As on Kaggle's rerun: the notebook's `serve()` blocks serving; the gateway, another process, connects,
    sends every row, writes the submission. The model is missing here, so every answer is the fallback."""
    csv = write_test_csv(tmp_path / "test.csv", n=4)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(DOUBLE), str(ROOT)]), "KAGGLE_IS_COMPETITION_RERUN": "1",
           "KAGGLE_DOUBLE_PORT_FILE": str(tmp_path / "port"), "KAGGLE_DOUBLE_OUT": str(tmp_path)}
    notebook = subprocess.Popen([sys.executable, "-c", "from inference import kaggle\n"
                                 "kaggle.predictor.configure(model='/nonexistent/model')\nkaggle.serve()"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        done = subprocess.run([sys.executable, "-m", "kaggle_evaluation.aimo_3_gateway", str(csv)], env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert notebook.poll() is None  # still serving: on Kaggle the container is stopped after the gateway
    finally:
        notebook.kill()
        _, log = notebook.communicate(timeout=30)
    assert score_submission(tmp_path / "submission.parquet", csv)["answer"].to_list() == [0, 0, 0, 0]
    assert "does not exist" in log


def test_the_scorer_refuses_a_submission_without_every_test_id(tmp_path):
    csv = write_test_csv(tmp_path / "test.csv")
    pl.DataFrame({"id": ["p0", "p1", "p1"], "answer": [1, 2, 3]}).write_parquet(tmp_path / "submission.parquet")
    with pytest.raises(SubmissionRefused, match="ids"):
        score_submission(tmp_path / "submission.parquet", csv)
