"""Kaggle mode on the tiny model, served through the gateway double, and every kind of bad input."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from inference import kaggle
from inference.budget import BudgetConfig
from inference.problems import synthetic_problems
from tests.inference.conftest import KAGGLE_DOUBLE as DOUBLE
from tests.inference.conftest import MODEL
from tests.inference.kaggle_scoring import score_submission


@pytest.fixture(scope="module")
def tiny_predictor():
    """The module's own predictor, configured as a notebook configures it, on the tiny model."""
    saved = kaggle.predictor
    kaggle.predictor = kaggle.KagglePredictor().configure(
        model=str(MODEL), samples=4, agree=3, budget=BudgetConfig(total_s=900, problems=8, max_samples=4))
    yield kaggle.predictor
    kaggle.predictor.close()
    kaggle.predictor = saved


def test_serve_hands_the_gateway_the_module_predict(tiny_predictor, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(DOUBLE))
    monkeypatch.setenv("KAGGLE_DOUBLE_OUT", str(tmp_path))
    problems = synthetic_problems(4, seed=9090)
    csv = tmp_path / "test.csv"
    pl.DataFrame({"id": [p.id for p in problems], "problem": [p.problem for p in problems]}).write_csv(csv)
    assert tiny_predictor._solver is None  # nothing loaded until the first call: the server starts fast
    kaggle.serve(test_csv=str(csv))
    submission = score_submission(tmp_path / "submission.parquet", csv)
    assert submission.height == 4 and tiny_predictor._solver is not None
    assert tiny_predictor.budget.done == 4
    right = sum(int(a) == p.answer for a, p in zip(submission.sort("id")["answer"],
                                                    sorted(problems, key=lambda p: p.id), strict=True))
    assert right >= 2, submission  # the tiny model solves most of its own kind of problem


def one_row(response: pl.DataFrame) -> int:
    assert isinstance(response, pl.DataFrame) and response.columns == ["id", "answer"] and response.height == 1
    assert response["answer"].dtype == pl.Int64
    return response["answer"].item()


@pytest.mark.parametrize(("problem", "why"), [
    (pl.Series("problem", [None], dtype=pl.String), "a problem of type NoneType"),
    (pl.Series("problem", [""]), "is empty"),
    ("   \n", "is empty"),
    (pl.Series("problem", [], dtype=pl.String), "a problem of type NoneType"),
    (pl.DataFrame({"problem": ["  "]}), "is empty"),
])
def test_an_empty_or_missing_problem_is_answered_without_the_model(problem, why, caplog):
    predictor = kaggle.KagglePredictor(model=str(MODEL))
    with caplog.at_level(logging.WARNING, logger="aimo.kaggle"):
        assert one_row(predictor.predict(pl.Series("id", ["e1"]), problem)) == 0
    assert why in caplog.text and predictor._solver is None


def test_a_problem_that_is_not_text_is_solved_as_its_text(tiny_predictor, caplog):
    with caplog.at_level(logging.WARNING, logger="aimo.kaggle"):
        response = tiny_predictor.predict(pl.Series("id", ["n1"]), pl.Series("problem", [12345]))
    assert 0 <= one_row(response) <= 99999 and response["id"].item() == "n1"
    assert "a problem of type int (12345), not text" in caplog.text


@pytest.mark.parametrize(("id_", "kept"), [
    (pl.Series("id", [7]), 7),                 # an integer id stays an integer
    (7, 7),
    (pl.DataFrame({"id": ["f1"]}), "f1"),
    (pl.Series("id", [1.5]), "1.5"),           # any other type: its text, and a warning
    (None, "None"),
])
def test_an_id_of_another_type_still_gets_its_row(id_, kept, caplog):
    predictor = kaggle.KagglePredictor(model=str(MODEL))
    with caplog.at_level(logging.WARNING, logger="aimo.kaggle"):
        response = predictor.predict(id_, "")
    assert one_row(response) == 0 and response["id"].item() == kept
    if not isinstance(kept, int):
        assert "an id of type" in caplog.text or kept == "f1"


def test_a_model_that_does_not_exist_answers_every_call_and_says_why(caplog):
    with caplog.at_level(logging.WARNING, logger="aimo.kaggle"):
        predictor = kaggle.KagglePredictor(model="/nonexistent/model", budget=BudgetConfig(total_s=60, problems=3))
        assert "the model folder /nonexistent/model does not exist" in caplog.text  # told when configured
        try:
            answers = [one_row(predictor.predict(pl.Series("id", [f"x{i}"]), pl.Series("problem", ["1+1?"])))
                       for i in range(3)]
        finally:
            predictor.close()
    assert answers == [0, 0, 0]
    # the first call tries to load and logs the failure; the others say why without trying again
    assert caplog.text.count("the model failed to load (the model folder /nonexistent/model does not exist)") == 2


def test_configure_is_refused_once_the_model_is_loaded(tiny_predictor):
    if tiny_predictor._solver is None:
        tiny_predictor.predict("warm", "What is 1 + 1?")
    with pytest.raises(RuntimeError, match="before the first problem"):
        tiny_predictor.configure(samples=8)


def test_the_budget_clock_runs_from_when_the_predictor_was_made():
    predictor = kaggle.KagglePredictor()
    made = predictor._made
    predictor.configure(budget=BudgetConfig(total_s=100, problems=2))
    assert predictor.budget.deadline == pytest.approx(made + 100)
