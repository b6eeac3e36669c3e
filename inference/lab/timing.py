"""How fast samples decode together, fitted from a recording.

Samples that decode at once share the accelerator: one decode step advances every one of them by a
token, and a step takes longer the more sequences it carries. So a turn of `g` tokens, decoded while
`k` samples (on average) were decoding, takes  overhead + g * (step + per_sequence * k)  ms. The
overhead is the request's prefill and scheduling. Tool calls are replayed as recorded.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from .recording import RecordedProblem, Recording


@dataclass(frozen=True)
class Timing:
    step_ms: float  # a decode step's fixed cost
    per_sequence_ms: float  # what each sequence in the batch adds to a step
    turn_ms: float  # per generation request: prefill and scheduling
    problem_ms: float  # per problem: prompt, set-up and stopping

    def token_ms(self, decoding: int) -> float:
        """Milliseconds per token for each of `decoding` samples decoding together."""
        return self.step_ms + self.per_sequence_ms * decoding


def _concurrency(problem: RecordedProblem) -> list[tuple[int, float, float]]:
    """(tokens, generate_ms, mean samples decoding meanwhile, itself included) for each turn."""
    spans = [(seg.start_ms, seg.start_ms + seg.generate_ms, seg.tokens) for s in problem.samples for seg in s.segments]
    rows = []
    for start, end, tokens in spans:
        length = end - start
        if length <= 0 or tokens <= 0:
            continue
        overlap = sum(max(0.0, min(end, e) - max(start, s)) for s, e, _ in spans)
        rows.append((tokens, length, overlap / length))
    return rows


def _nonnegative_lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0: drop the negative ones and refit (three unknowns)."""
    active = list(range(x.shape[1]))
    while True:
        coef = np.zeros(x.shape[1])
        coef[active] = np.linalg.lstsq(x[:, active], y, rcond=None)[0]
        negative = [i for i in active if coef[i] < 0]
        if not negative:
            return coef
        active.remove(min(negative, key=lambda i: coef[i]))


def fit_timing(recording: Recording) -> Timing:
    rows = [row for p in recording.problems for row in _concurrency(p)]
    if len(rows) < 3:
        raise ValueError("too few recorded turns to fit the decode rate")
    tokens, ms, k = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    turn, step, per_sequence = _nonnegative_lstsq(np.stack([np.ones_like(tokens), tokens, tokens * k], 1), ms)
    tails = [p.elapsed_s * 1000 - max((s.end_ms for s in p.samples if s.complete), default=0.0)
             for p in recording.problems]
    return Timing(step_ms=float(step), per_sequence_ms=float(per_sequence), turn_ms=float(turn),
                  problem_ms=max(0.0, statistics.median(tails)))
