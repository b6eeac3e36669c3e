"""The whole loop on a CPU: the tiny model in vLLM, code run mid-generation in a real sandbox, votes."""

from __future__ import annotations

import pytest

from inference.sample import SamplingConfig
from inference.solver import Solver, SolverConfig
from sandbox_service.client import AsyncSandboxClient
from sandbox_service.local import AsyncLocalSandbox
from tiny_tir.problems import KINDS, LONG_NUMBERS, generate

FRESH_SEED = 777_001  # not the training seed: these problems were never seen
CONFIG = SolverConfig(samples=8, agree=8, seed=3, sampling=SamplingConfig(temperature=0.3, max_tokens=900))
BLOCK = 32  # VLLMEngine.for_cpu's KV block size


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


def test_eight_samples_through_the_grpc_sandbox(engine_loop, tiny_engine, tiny_dialect, nsjail_server):
    async def run():
        async with AsyncSandboxClient(nsjail_server.address) as sandbox:
            solver = Solver(tiny_engine, tiny_dialect, sandbox, CONFIG)
            results = [(await solver.solve(p.text), p) for p in fresh(1, 1) + fresh(2, 2)]
            return results, (await sandbox.info()).sessions_open

    results, sessions_open = engine_loop.run(run())
    for result, problem in results:
        check_loop(result, problem)
    # Two-cell traces: the second cell uses what the first defined, in the same session, and runs.
    stateful = [s for result, _ in results[1:] for s in result.samples
                if s.tool_calls >= 2 and s.turns[1].status == "OK"]
    assert stateful, "no sample ran a second cell on the first one's state"
    assert sessions_open == 0


def test_eight_samples_through_local_sandbox(engine_loop, tiny_engine, tiny_dialect):
    async def run():
        async with AsyncLocalSandbox(pool_size=2) as sandbox:
            solver = Solver(tiny_engine, tiny_dialect, sandbox, CONFIG)
            problem = fresh(2, 3)[-1]
            return await solver.solve(problem.text), problem, sandbox.pool.sessions_open

    result, problem, sessions_open = engine_loop.run(run())
    check_loop(result, problem)
    assert sessions_open == 0


# agree=1: the first sample to answer decides. More samples than the engine's 16 slots, so some are still
# queued or generating when it does, however alike the first sixteen are (they can all end on one step).
EARLY_STOP = SolverConfig(samples=20, agree=1, seed=5, sampling=SamplingConfig(temperature=1.0, max_tokens=900))


def test_early_stop_aborts_requests_and_closes_sessions(engine_loop, tiny_engine, tiny_dialect):
    async def run():
        async with AsyncLocalSandbox(pool_size=2) as sandbox:
            solver = Solver(tiny_engine, tiny_dialect, sandbox, EARLY_STOP)
            problem = fresh(2, 4)[-1]
            result = await solver.solve(problem.text)
            return result, problem, sandbox.pool.sessions_open, tiny_engine.unfinished()

    result, _, sessions_open, unfinished = engine_loop.run(run())
    assert result.early_stopped and result.answered
    assert sum(s.finish == "aborted" for s in result.samples) >= 1
    assert sessions_open == 0 and unfinished == 0


def test_without_the_tool_the_model_must_invent_outputs(engine_loop, tiny_engine, tiny_dialect):
    """The point of the design, on a real model: no tool, no right answers (it cannot compute)."""
    from inference.engine import GenerationRequest

    async def run():
        hits = 0
        problems = fresh(1, 6)
        for i, problem in enumerate(problems):
            prompt = tiny_dialect.prompt_ids(problem.text)
            gen = await tiny_engine.generate(GenerationRequest(f"notool-{i}", prompt, 600, temperature=0.0))
            hits += f"\\boxed{{{problem.answer}}}" in gen.text
        return hits, len(problems)

    hits, total = engine_loop.run(run())
    assert hits <= total // 3


@pytest.mark.parametrize("problem", ["", "   \n"])
def test_empty_problem_answers_the_fallback_with_a_reason(engine_loop, tiny_engine, tiny_dialect, problem):
    async def run():
        async with AsyncLocalSandbox(pool_size=1) as sandbox:
            return await Solver(tiny_engine, tiny_dialect, sandbox, CONFIG).solve(problem)

    result = engine_loop.run(run())
    assert result.answer == 0 and not result.answered and result.failure == "empty problem"


def test_problem_longer_than_the_context_is_refused_with_a_reason(engine_loop, tiny_engine, tiny_dialect):
    async def run():
        async with AsyncLocalSandbox(pool_size=1) as sandbox:
            return await Solver(tiny_engine, tiny_dialect, sandbox, CONFIG).solve("What is 1+1? " * 200)

    result = engine_loop.run(run())
    assert not result.answered and "context holds 1024" in result.failure
