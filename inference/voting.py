"""Selecting one answer from many samples: pluggable selectors, and early stopping.

A selector maps the finished samples' (answer, weight-relevant facts) to a score per answer; the
`Ballot` tracks votes as samples finish and says, by its stop rule, when to stop waiting for more.

The AIMO3 selectors (docs/aimo3-preset.md): `entropy` is the winners' vote, each sample weighted by
1 / its mean top-5 entropy; second place measured the entropy over the last 256 tokens only
(`entropy-tail`) and ranked answers by vote count first, entropy only among equal counts
(`votes-entropy`, `votes-entropy-tail`).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Vote:
    answer: int
    mean_entropy: float | None = None  # mean top-k logprob entropy of the sample's tokens (nats)
    code_ok: int = 0  # tool calls that ran without error
    code_failed: int = 0  # tool calls that raised, timed out or crashed
    supported: bool = False  # some tool output the sample saw shows the answer it boxed
    weight: float = 1.0  # its source's or its round's weight in the vote
    verifier: float | None = None  # a process reward model's aggregate score, 0..1 (when one scored it)
    tail_entropy: float | None = None  # mean entropy over its last ENTROPY_TAIL_TOKENS generated tokens


ENTROPY_TAIL_TOKENS = 256  # second place's window: the entropy where the sample settles on its answer
# The winners capped weights with 1 / max(entropy, 1e-9), Sebastian Gil with 0.3. gpt-oss at temperature
# 1.0 should average well above 0.05 over thousands of tokens (not measured here), so that for it the
# floor would not bind; 0.05 keeps a
# small model's near-deterministic samples (mean entropies of 0.0004 on the tiny model) from each
# outvoting a hundred others.
ENTROPY_FLOOR = 0.05


Selector = Callable[[list[Vote]], dict[int, float]]


def majority(votes: list[Vote]) -> dict[int, float]:
    scores: dict[int, float] = defaultdict(float)
    for vote in votes:
        scores[vote.answer] += vote.weight
    return dict(scores)


def _entropy_weight(vote: Vote, tail: bool) -> float:
    entropy = vote.tail_entropy if tail and vote.tail_entropy is not None else vote.mean_entropy
    return 1.0 if entropy is None else 1.0 / max(entropy, ENTROPY_FLOOR)


def entropy_weighted(votes: list[Vote], *, tail: bool = False) -> dict[int, float]:
    """Confident samples count more: weight 1 / mean top-k entropy (the AIMO3 winners' vote). `tail`:
    the entropy of the last ENTROPY_TAIL_TOKENS tokens only (second place); a sample recorded without
    its tail counts its whole mean."""
    scores: dict[int, float] = defaultdict(float)
    for vote in votes:
        scores[vote.answer] += vote.weight * _entropy_weight(vote, tail)
    return dict(scores)


def votes_then_entropy(votes: list[Vote], *, tail: bool = False) -> dict[int, float]:
    """Vote count ranked above entropy (second place): the answer more samples gave wins; the entropy
    weighting only orders answers with equal (weighted) counts."""
    counts, confidence = majority(votes), entropy_weighted(votes, tail=tail)
    total = sum(confidence.values())
    # The entropy share is below 1, so it never outweighs one vote: a lexicographic (count, entropy) order.
    return {answer: counts[answer] + confidence[answer] / (total + 1.0) for answer in counts}


def code_verified(votes: list[Vote]) -> dict[int, float]:
    """Samples whose code ran count more; samples with no code or only failing code count less."""
    scores: dict[int, float] = defaultdict(float)
    for vote in votes:
        runs = vote.code_ok + vote.code_failed
        scores[vote.answer] += vote.weight * (0.5 + (vote.code_ok / runs if runs else 0.0))
    return dict(scores)


def _only(keep: Callable[[Vote], bool]) -> Selector:
    """Majority over the votes `keep` accepts; over all of them when it accepts none (an answer beats none)."""
    def select(votes: list[Vote]) -> dict[int, float]:
        return majority([v for v in votes if keep(v)] or votes)
    return select


# Execution filtering: drop samples whose code never ran without error...
executed = _only(lambda v: v.code_ok > 0)
# ...or whose boxed answer no tool output shows (the model made it up, or miscopied it).
supported = _only(lambda v: v.supported)


def verifier_weighted(votes: list[Vote]) -> dict[int, float]:
    """Each vote counts its verifier score: the vote reranked by a process reward model (majority if none
    was scored; an unscored vote counts 0 beside scored ones)."""
    if all(vote.verifier is None for vote in votes):
        return majority(votes)
    scores: dict[int, float] = defaultdict(float)
    for vote in votes:
        scores[vote.answer] += vote.weight * (vote.verifier or 0.0)
    return dict(scores)


SELECTORS: dict[str, Selector] = {
    "majority": majority,
    "entropy": entropy_weighted,
    "entropy-tail": functools.partial(entropy_weighted, tail=True),
    "votes-entropy": votes_then_entropy,
    "votes-entropy-tail": functools.partial(votes_then_entropy, tail=True),
    "code": code_verified,
    "executed": executed,
    "supported": supported,
    "verifier": verifier_weighted,
}
ENTROPY_SELECTORS = frozenset(name for name in SELECTORS if "entropy" in name)  # these need logprobs

# When to stop waiting for more samples: "agree" once `agree` samples share an answer (the AIMO3
# winners' rule); "uncatchable" also as soon as the leader cannot be caught by the samples still running
# (second place's addition).
STOP_RULES = ("agree", "uncatchable")


class Ballot:
    """Votes as they arrive; `decided()` when `agree` samples share an answer or, under the "uncatchable"
    stop rule, nobody can catch up (`agree` 0: only when every sample has finished)."""

    def __init__(self, total: int, agree: int, selector: Selector = majority, stop: str = "uncatchable") -> None:
        if stop not in STOP_RULES:
            raise ValueError(f"stop rule must be one of {STOP_RULES}, not {stop!r}")
        self.total = total
        self.agree = agree
        self.selector = selector
        self.stop = stop
        self.votes: list[Vote] = []
        self.finished = 0  # samples done, with or without an answer

    def add(self, vote: Vote | None) -> None:
        self.finished += 1
        if vote is not None:
            self.votes.append(vote)

    def merge(self, other: Ballot) -> None:
        """Count another round's ballot in with this one's (the votes carry their own weights)."""
        self.total += other.total
        self.finished += other.finished
        self.votes += other.votes

    def counts(self) -> dict[int, int]:
        counts: dict[int, int] = defaultdict(int)
        for vote in self.votes:
            counts[vote.answer] += 1
        return dict(counts)

    def decided(self) -> bool:
        if self.finished >= self.total:
            return True
        if self.agree <= 0:  # no early stop: every sample runs to its end (how traces for the lab are recorded)
            return False
        ranked = sorted(self.counts().values(), reverse=True)
        if not ranked:
            return False
        leader, runner_up = ranked[0], (ranked[1] if len(ranked) > 1 else 0)
        remaining = self.total - self.finished
        return leader >= self.agree or (self.stop == "uncatchable" and leader > runner_up + remaining)

    def winner(self) -> int | None:
        scores = self.selector(self.votes)
        if not scores:
            return None
        counts = self.counts()
        # Ties in score go to the answer more samples gave, then to the smaller answer: deterministic.
        return max(scores, key=lambda a: (scores[a], counts.get(a, 0), -a))
