"""Recordings drawn from a stated distribution: for checking the lab against what is known exactly,
and for benchmarking it at scale.

Each problem has a per-sample accuracy drawn from Beta(a, b); a right sample answers the problem's
answer, a wrong one either the problem's one popular wrong answer (the trap) or an answer of its own.
Turn lengths and tool times are drawn independently of being right, so the order in which samples
finish says nothing about their answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..voting import Vote
from .recording import RecordedProblem, RecordedSample, Recording, Segment


@dataclass(frozen=True)
class SyntheticSpec:
    problems: int = 50
    samples: int = 16  # recorded per problem
    accuracy: tuple[float, float] = (2.0, 2.0)  # Beta(a, b) of a problem's per-sample accuracy
    trap: float = 0.3  # share of the wrong samples that agree on one wrong answer
    turns: tuple[int, int] = (1, 4)  # generation turns per sample (a tool call between each), uniform
    tokens: tuple[int, int] = (200, 2000)  # per turn, uniform
    tool_ms: tuple[float, float] = (20.0, 500.0)  # per tool call, uniform
    seed: int = 0


def make_sample(answer: int | None, tokens: list[int], tool_ms: list[float] | None = None) -> RecordedSample:
    """A complete recorded sample: turns of these token counts, tool calls of these durations between them."""
    tools = [*(tool_ms or [0.0] * (len(tokens) - 1)), 0.0]
    segments = tuple(Segment(tokens=t, generate_ms=0.0, start_ms=0.0, tool_ms=ms)
                     for t, ms in zip(tokens, tools, strict=True))
    vote = None if answer is None else Vote(answer)
    return RecordedSample(segments, vote, "answered" if vote else "no_answer", end_ms=0.0)


def make_problem(id: str, expected: int, samples: list[RecordedSample]) -> RecordedProblem:
    return RecordedProblem(id=id, expected=expected, samples=tuple(samples), elapsed_s=0.0,
                           plan_samples=len(samples), plan_seconds=float("inf"), answer=expected)


def synthetic_recording(spec: SyntheticSpec) -> Recording:
    r = random.Random(spec.seed)
    problems = []
    for number in range(spec.problems):
        expected, trap = r.randrange(1000), 1000 + r.randrange(1000)
        p = r.betavariate(*spec.accuracy)
        samples = []
        for s in range(spec.samples):
            if r.random() < p:
                answer = expected
            else:
                answer = trap if r.random() < spec.trap else 10_000 + number * spec.samples + s
            turns = r.randint(*spec.turns)
            samples.append(make_sample(answer, [r.randint(*spec.tokens) for _ in range(turns)],
                                       [r.uniform(*spec.tool_ms) for _ in range(turns - 1)]))
        problems.append(make_problem(f"synthetic-{number}", expected, samples))
    return Recording(tuple(problems), policy=None)
