"""What the loop's end-to-end tests share: their problems, solver configs and the check of a solved problem
(the in-process engine's tests and the OpenAI-compatible server's run the same checks)."""

from __future__ import annotations

from inference.sample import SamplingConfig
from inference.solver import SolverConfig
from tiny_tir.problems import KINDS, LONG_NUMBERS, generate

FRESH_SEED = 777_001  # not the training seed: these problems were never seen
CONFIG = SolverConfig(samples=8, agree=8, seed=3, sampling=SamplingConfig(temperature=0.3, max_tokens=900))
BLOCK = 32  # VLLMEngine.for_cpu's KV block size
EARLY_STOP = SolverConfig(samples=20, agree=1, seed=5, sampling=SamplingConfig(temperature=1.0, max_tokens=900))


# Kinds whose numbers are short: the tiny model copies those right (114 of 114 on its card), while it still
# miscopies some digit groups of long numbers. The loop is what is tested here.
SHORT_NUMBER_KINDS = set(KINDS) - LONG_NUMBERS


def fresh(kind_cells: int, count: int) -> list:
    """Fresh problems whose reference solution has `kind_cells` cells, of kinds the tiny model solves."""
    return [p for p in generate(FRESH_SEED, 400)
            if len(p.cells) == kind_cells and p.kind in SHORT_NUMBER_KINDS][:count]


def check_loop(result, problem) -> None:
    """The loop did its job: every sample wrote code that ran in its session mid-generation, continued
    from the spliced output with its KV reused, and the votes chose the right answer."""
    assert len(result.samples) == 8
    # Samples still running once the leader cannot be caught are aborted: check the ones that finished.
    samples = [s for s in result.samples if s.finish != "aborted"]
    assert all(s.finish in ("answered", "no_answer") for s in samples)
    assert sum(s.finish == "answered" for s in samples) >= 4, [s.finish for s in samples]
    assert all(s.tool_calls >= 1 for s in samples) and sum(s.code_ok for s in samples) >= 2
    assert all(t.status in ("OK", "ERROR") for s in samples for t in s.turns if t.code is not None)
    for sample in samples:
        for turn in sample.turns[1:]:  # every continuation reused the KV of what came before it
            assert turn.cached_tokens >= turn.reusable_tokens // BLOCK * BLOCK, (turn.cached_tokens,
                                                                                 turn.reusable_tokens)
            assert turn.reusable_tokens > 0
    counts = result.votes
    assert counts and result.answered and counts[result.answer] == max(counts.values())
    assert result.answer == problem.answer, (problem.text, counts)
