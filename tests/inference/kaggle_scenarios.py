"""Listeners handed to a `kaggle_evaluation` package, the double or the real one, in a child process.

    python tests/inference/kaggle_scenarios.py TEST_CSV SCENARIO...

(in a scratch folder) prints one JSON line: for each scenario, where the submission was refused
(`server`: the listener, when the server is built; `gateway`: while serving, with the gateway's error
kind; `scorer`: the written submission), or `null` when it was accepted, and the message. The child
imports whichever `kaggle_evaluation` is first on its path, so the same scenario judges the double and,
where it is at hand, the real package.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project, and tests.inference.kaggle_scoring


def _frame(id_, answer, column: str = "answer") -> pl.DataFrame:
    return pl.DataFrame({"id": id_, column: [answer]})


def listener_for(scenario: str):
    """The object the scenario passes to `AIMO3InferenceServer`."""
    if scenario == "module_predict":  # the project's own listener; the model is missing: every answer is 0
        from inference import kaggle

        kaggle.predictor.configure(model="/nonexistent/model")
        return kaggle.predict
    if scenario == "bound_method":
        class Predictor:
            def predict(self, id_, problem, answer=None):
                return _frame(id_, 1)

        return Predictor().predict
    if scenario == "lambda":
        return lambda id_, problem, answer=None: _frame(id_, 1)
    if scenario == "partial":
        def answer_with(value, id_, problem, answer=None):
            return _frame(id_, value)

        return functools.partial(answer_with, 1)

    def predict(id_, problem, answer=None):
        if scenario == "raises":
            raise ValueError("the model is not there")
        return {
            "frame": lambda: _frame(id_, 42),
            "series": lambda: pl.Series("answer", [42]),
            "wrong_column": lambda: _frame(id_, 42, column="ans"),
            "float_answer": lambda: _frame(id_, 42.0),
            "out_of_range": lambda: _frame(id_, 100_000),
            "negative": lambda: _frame(id_, -1),
            "string_answer": lambda: _frame(id_, "42"),
            "two_rows": lambda: pl.DataFrame({"id": [id_.item(0)] * 2, "answer": [1, 2]}),
            "none": lambda: None,
            "bare_int": lambda: 42,
            "dict": lambda: {"id": id_.item(0), "answer": 42},
            "unserializable": lambda: {42},
        }[scenario]()

    if scenario == "wrong_name":
        def solve(id_, problem, answer=None):
            return _frame(id_, 42)

        return solve
    return predict


def gateway_refusal(exc: Exception) -> dict:
    kind = getattr(getattr(exc, "error_type", None), "name", type(exc).__name__)
    return {"refused_at": "gateway", "kind": kind, "message": str(getattr(exc, "error_details", exc))}


def run(scenario: str, test_csv: str) -> dict:
    import kaggle_evaluation.aimo_3_inference_server as aimo3

    from tests.inference.kaggle_scoring import SubmissionRefused, score_submission

    try:
        if scenario == "old_serve":  # the README's recipe before this module had `predict`: serve builds and runs
            from inference.kaggle import KagglePredictor, serve

            serve(KagglePredictor(model="/nonexistent/model").predict, test_csv)
        else:
            server = aimo3.AIMO3InferenceServer(listener_for(scenario))
    except ValueError as exc:
        return {"refused_at": "server", "message": str(exc), "notes": getattr(exc, "__notes__", [])}
    except Exception as exc:  # noqa: BLE001 (the gateway's error, from serve(): recorded, not raised)
        return gateway_refusal(exc)
    if scenario != "old_serve":
        try:
            server.run_local_gateway((test_csv,))
        except Exception as exc:  # noqa: BLE001 (the gateway's error, GatewayRuntimeError in both packages)
            return gateway_refusal(exc)
    try:
        submission = score_submission("submission.parquet", test_csv)
    except SubmissionRefused as exc:
        return {"refused_at": "scorer", "message": str(exc)}
    return {"refused_at": None, "answers": submission["answer"].to_list()}


def main(test_csv: str, scenarios: list[str]) -> dict:
    """Each scenario in its own folder (the gateway writes submission.parquet where it runs)."""
    import os

    results = {}
    for scenario in scenarios:
        Path(scenario).mkdir()
        os.chdir(scenario)
        try:
            results[scenario] = run(scenario, test_csv)
        finally:
            os.chdir("..")
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2:])))
