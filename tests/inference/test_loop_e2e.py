"""The whole loop on a CPU: the tiny model in vLLM, code run mid-generation in a real sandbox, votes."""

from __future__ import annotations

import pytest

from inference.solver import Solver
from sandbox_service.client import AsyncSandboxClient
from sandbox_service.local import AsyncLocalSandbox
from tests.inference.loop_checks import CONFIG, EARLY_STOP, check_loop, fresh


def test_eight_samples_through_the_grpc_sandbox(engine_loop, tiny_engine, tiny_dialect, nsjail_server):
    async def run():
        async with AsyncSandboxClient(nsjail_server.address) as sandbox:
            # The server is shared with other tests (the front doors keep sessions of their own open):
            # what this solver opened must all be closed again.
            before = (await sandbox.info()).sessions_open
            solver = Solver(tiny_engine, tiny_dialect, sandbox, CONFIG)
            results = [(await solver.solve(p.text), p) for p in fresh(1, 1) + fresh(2, 2)]
            return results, (await sandbox.info()).sessions_open - before

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
