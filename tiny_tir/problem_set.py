"""The tiny model's kind of problems as a problem source of the product (`aimo eval --synthetic N`).

Registered in pyproject.toml under the `aimo.problem_sources` entry points as "tiny-tir": the model is
a client of the product, so this module imports `inference`, never the other way round.
"""

from __future__ import annotations

from inference.problems import Problem
from tiny_tir.problems import generate


def fresh_problems(count: int, seed: int) -> list[Problem]:
    """`count` problems of the training distribution, drawn with `seed` (another than training's)."""
    return [Problem(f"synthetic-{i}", p.text, p.answer) for i, p in enumerate(generate(seed, count))]
