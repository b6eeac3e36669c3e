"""Acceptance: the shipped model, in vLLM CPU, through the real loop and sandbox.

It writes python blocks that run (one or two cells, stateful), reads the outputs and boxes the answer:
right on 95.7% of 1,000 fresh problems (model card), and on 9 or more of these 10.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tiny_tir.evaluate import evaluate
from tiny_tir.problems import generate

MODEL = Path(__file__).resolve().parents[2] / "models" / "tiny-tir"


@pytest.fixture(scope="module")
def results():
    problems = generate(20261129, 10)  # a seed used nowhere else: fresh problems
    return asyncio.run(evaluate(MODEL, problems))


def test_writes_code_that_runs_and_boxes_an_answer(results) -> None:
    with_tool, _ = results
    assert all(r.cells >= 1 and "```python" in r.text for r in with_tool)
    assert sum(r.predicted is not None for r in with_tool) >= 6


def test_solves_nine_of_ten_fresh_problems_with_the_tool(results) -> None:
    with_tool, without_tool = results
    assert sum(r.correct for r in with_tool) >= 9, [(r.kind, r.answer, r.predicted) for r in with_tool]
    assert sum(r.correct for r in without_tool) <= 3  # without the tool it has to invent the output
