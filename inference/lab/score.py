"""Scoring policies on a recording: many simulated runs of the set, a bootstrap interval, a search.

Each simulated run draws the problems with replacement (the bootstrap: which problems the hidden set
happens to hold), in a random order (the budget's bank depends on it), and each problem's samples at
random from its recorded ones. Every policy sees the same draws (the same seed), so differences
between policies are not noise in the draws.
"""

from __future__ import annotations

import itertools
import random
import statistics
from dataclasses import dataclass, fields, replace

from .recording import Recording
from .replay import Policy, run_set
from .timing import Timing

SCORINGS = ("single", "aimo3")  # aimo3: the private set runs twice; 1 if both right, 0.5 if one is


@dataclass(frozen=True)
class PolicyScore:
    policy: Policy
    score: float  # expected share of the problems scored
    low: float  # 95% bootstrap interval of the score
    high: float
    seconds: float  # mean time of one run of the whole set
    problem_seconds: tuple[float, float, float]  # per problem: 10th, 50th and 90th percentile
    pass_at_n: float  # share of problems where a drawn sample was right
    selection_loss: float  # pass@n minus the share answered right
    truncated: float  # per problem: drawn samples whose recording ended before the replay was done
    replicates: tuple[float, ...]  # the score of each simulated run of the set


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def score_policy(recording: Recording, policy: Policy, timing: Timing, *, replicates: int = 100, seed: int = 0,
                 scoring: str = "single") -> PolicyScore:
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}")
    problems = list(recording.graded)
    if not problems:
        raise ValueError("the recording has no problems with a known answer to score against")
    rng = random.Random(seed)
    scores, totals, per_problem, passed, right, truncated = [], [], [], [], [], 0
    for _ in range(replicates):
        drawn = rng.choices(problems, k=len(problems))
        first = run_set(drawn, policy, timing, rng)
        points = [float(c) for c in first.correct]
        runs = [first]
        if scoring == "aimo3":  # the same problems again, in another order, with fresh samples
            order = rng.sample(range(len(drawn)), len(drawn))
            second = run_set([drawn[i] for i in order], policy, timing, rng)
            for position, i in enumerate(order):
                points[i] = (points[i] + second.correct[position]) / 2
            runs.append(second)
        scores.append(sum(points) / len(points))
        for run in runs:
            totals.append(sum(run.seconds))
            per_problem += run.seconds
            passed += run.pass_at_n
            right += run.correct
            truncated += run.truncated
    pass_at_n = sum(passed) / len(passed)
    return PolicyScore(
        policy=policy, score=statistics.fmean(scores), low=_percentile(scores, 0.025), high=_percentile(scores, 0.975),
        seconds=statistics.fmean(totals),
        problem_seconds=tuple(_percentile(per_problem, q) for q in (0.1, 0.5, 0.9)),
        pass_at_n=pass_at_n, selection_loss=pass_at_n - sum(right) / len(right),
        truncated=truncated / len(per_problem), replicates=tuple(scores),
    )


POLICY_FIELDS = {f.name: f.type for f in fields(Policy)}


def grid(base: Policy, choices: dict[str, list]) -> list[Policy]:
    """Every combination of the choices (policy field -> values) over `base`."""
    unknown = set(choices) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"not policy fields: {', '.join(sorted(unknown))}")
    names = list(choices)
    return [replace(base, **dict(zip(names, values, strict=True)))
            for values in itertools.product(*(choices[n] for n in names))]


def random_search(base: Policy, choices: dict[str, list], count: int, seed: int = 0) -> list[Policy]:
    """`count` distinct policies drawn from the grid at random (all of it, when it is smaller)."""
    policies = grid(base, choices)
    return random.Random(seed).sample(policies, min(count, len(policies)))


def pareto(scores: list[PolicyScore]) -> list[PolicyScore]:
    """The policies no other beats on both score and time, fastest first."""
    front, best = [], -1.0
    for s in sorted(scores, key=lambda s: (s.seconds, -s.score)):
        if s.score > best:
            front.append(s)
            best = s.score
    return front


def best(scores: list[PolicyScore], max_seconds: float | None = None) -> PolicyScore | None:
    """The highest expected score within `max_seconds` for the set (ties: the faster); None if none fits."""
    fitting = [s for s in scores if max_seconds is None or s.seconds <= max_seconds]
    return max(fitting, key=lambda s: (s.score, -s.seconds), default=None)


def boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "on", "off"):
        raise ValueError(text)
    return text.lower() in ("true", "1", "on")


def parse_choices(given: dict[str, str | None]) -> dict[str, list]:
    """Comma-separated option values ("4,8,16") as lists of the policy fields' types."""
    casts = {"int": int, "float": float, "str": str, "bool": boolean}
    choices = {}
    for name, text in given.items():
        if text is None:
            continue
        cast = casts[str(POLICY_FIELDS[name])]
        try:
            choices[name] = [cast(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"{name}: {text!r} is not a comma-separated list of {cast.__name__}") from None
    return choices
