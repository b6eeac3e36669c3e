"""Kaggle mode, driven exactly as the AIMO3 gateway drives `predict` (our own copy of its convention)."""

from __future__ import annotations

import os
import random

import polars as pl

from inference.budget import BudgetConfig
from inference.kaggle import KagglePredictor
from inference.problems import synthetic_problems
from tests.inference.conftest import MODEL


def gateway_run(predict, test: pl.DataFrame) -> list[pl.DataFrame]:
    """The gateway's loop: rows shuffled with a random seed, one row per call as per-column Series,
    each response checked for exactly one row with the same id."""
    order = list(range(test.height))
    random.Random(os.urandom(8)).shuffle(order)
    responses = []
    for i in order:
        row = test.slice(i, 1)
        ids = row.select("id")
        response = predict(*row)  # iterating a frame gives its columns: predict(id_, problem[, answer])
        assert isinstance(response, pl.DataFrame) and response.height == 1, response
        assert response["id"].to_list() == ids["id"].to_list()
        assert response["answer"].dtype.is_integer() and 0 <= response["answer"].item() <= 99999
        responses.append(response)
    return responses


def test_predict_answers_like_the_gateway_expects():
    problems = synthetic_problems(4, seed=9090)
    test = pl.DataFrame({"id": [p.id for p in problems], "problem": [p.problem for p in problems]})
    predictor = KagglePredictor(model=str(MODEL), samples=4, agree=3,
                                budget=BudgetConfig(total_s=600, problems=4, max_samples=4))
    assert predictor._solver is None  # nothing loaded until the first call: the server starts fast
    try:
        responses = gateway_run(predictor.predict, test)
    finally:
        predictor.close()
    assert {r["id"].item() for r in responses} == {p.id for p in problems}
    assert predictor.budget.done == 4 and predictor._solver is not None


def test_predict_still_answers_when_everything_fails():
    predictor = KagglePredictor(model="/nonexistent/model", budget=BudgetConfig(total_s=60, problems=1))
    try:
        response = predictor.predict(pl.Series("id", ["x1"]), pl.Series("problem", ["What is 1+1?"]))
    finally:
        predictor.close()
    assert response.to_dicts() == [{"id": "x1", "answer": 0}]
