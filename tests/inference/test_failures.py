"""The loop when things go wrong: bad code blocks, a dead sandbox, a dying engine. Never a hang."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from inference.dialects import MarkdownDialect
from inference.engine import EngineError
from inference.sample import SamplingConfig
from inference.solver import STOP_GRACE_S, RevisionConfig, Solver, SolverConfig, Source, split
from sandbox_service.client import AsyncSandboxClient
from sandbox_service.local import AsyncLocalSandbox
from sandbox_service.result import ExecResult
from sandbox_service.spawn import free_port
from tests.inference.replay import HarmonyTokenizer, ReplayEngine

GOOD = ["```python\nprint(6 * 7)\n```\n```output\n", "The answer is \\boxed{42}."]


def solver_for(engine, sandbox, samples=1, **sampling) -> Solver:
    config = SolverConfig(samples=samples, agree=samples, sampling=SamplingConfig(**sampling))
    return Solver(engine, MarkdownDialect(engine.tokenizer), sandbox, config)


async def with_local(scripts, samples=1, **sampling):
    engine = ReplayEngine(HarmonyTokenizer(), scripts, max_model_len=4096)
    async with AsyncLocalSandbox(pool_size=1) as sandbox:
        return await solver_for(engine, sandbox, samples, **sampling).solve("What is six times seven?"), engine


def test_a_code_block_that_never_closes_ends_the_sample_without_running():
    result, engine = asyncio.run(with_local([["```python\nprint(1)\nwhile True:\n    x = 1\n" * 10]],
                                            max_tokens=60))
    sample = result.samples[0]
    # The engine stops it at max_tokens, as vLLM does ("length"), and the open block never runs.
    assert sample.finish == "length" and sample.tool_calls == 0
    assert [t.finish_reason for t in sample.turns] == ["length"] and sample.turns[0].generated_tokens == 60
    assert engine.requests[0].max_tokens == 60
    assert not result.answered and result.answer == 0


def test_the_replay_engine_cuts_as_vllm_does():
    """The stand-in's own contract: max_tokens gives "length"; a stop string on the last allowed token is
    still "stop" (vLLM checks stops first); the script's end is an end of sequence ("stop", no reason)."""
    from inference.engine import GenerationRequest

    tok = HarmonyTokenizer()
    text = "one two three four five six"
    engine = ReplayEngine(tok, [[text]], max_model_len=4096)
    n = len(tok.encode(text))

    def cut(max_tokens: int, stop: tuple[str, ...] = ()):
        gen = asyncio.run(engine.generate(GenerationRequest("p-s0-t0", [1, 2], max_tokens, stop=stop)))
        return gen.text, gen.finish_reason, gen.stop_reason, len(gen.token_ids)

    assert cut(3) == ("one two three", "length", None, 3)
    assert cut(3, stop=(" three",)) == ("one two three", "stop", " three", 3)
    assert cut(n) == (text, "length", None, n)
    assert cut(n + 1) == (text, "stop", None, n)
    assert ReplayEngine(tok, [[text]], max_model_len=4)._cut(tok.encode(text), GenerationRequest(
        "p-s0-t0", [1, 2], 100))[2] == "length"  # the model's length: 2 prompt + 2 generated


def test_invalid_syntax_is_shown_to_the_model_which_goes_on():
    script = ["```python\nprint(6 *\n```\n```output\n", *GOOD]
    result, engine = asyncio.run(with_local([script]))
    first = result.samples[0].turns[0]
    assert first.status == "ERROR" and "SyntaxError" in first.output
    assert result.answer == 42
    assert "SyntaxError" in engine.tokenizer.decode(engine.requests[1].prompt_ids)


def test_a_dead_sandbox_is_an_error_the_model_sees_not_a_hang():
    async def run():
        engine = ReplayEngine(HarmonyTokenizer(), [GOOD], max_model_len=4096)
        async with AsyncSandboxClient(f"127.0.0.1:{free_port()}") as nobody:
            solver = solver_for(engine, nobody)
            return await asyncio.wait_for(solver.solve("What is six times seven?"), 30)

    result = asyncio.run(run())
    turn = result.samples[0].turns[0]
    assert turn.status == "CRASHED" and "sandbox unavailable (UNAVAILABLE" in turn.output
    assert result.answer == 42  # the model went on without the tool


class DyingEngine(ReplayEngine):
    """A replay engine that dies after `lives` requests (a fault injected on purpose, named so)."""

    def __init__(self, *args, lives: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lives = lives

    async def generate(self, request):
        if len(self.requests) >= self.lives:
            raise EngineError("engine died (injected)")
        return await super().generate(request)


def test_an_engine_dying_mid_problem_returns_the_best_answer_so_far():
    async def run():
        engine = DyingEngine(HarmonyTokenizer(), [GOOD, GOOD, GOOD], lives=4, max_model_len=4096)
        async with AsyncLocalSandbox(pool_size=1) as sandbox:
            return await solver_for(engine, sandbox, samples=3).solve("What is six times seven?")

    result = asyncio.run(run())
    finishes = sorted(s.finish for s in result.samples)
    assert "error" in finishes and "answered" in finishes
    assert result.answer == 42 and result.answered
    assert "failed" in result.failure and "engine died (injected)" in result.failure


def test_the_time_budget_returns_an_answer_on_time_even_with_a_stuck_sample():
    class StuckEngine(ReplayEngine):
        """Sample 1 never finishes generating (a stuck request, injected on purpose)."""

        async def generate(self, request):
            if "-s1-" in request.request_id:
                await asyncio.sleep(3600)
            return await super().generate(request)

    async def run():
        engine = StuckEngine(HarmonyTokenizer(), [GOOD, GOOD], max_model_len=4096)
        async with AsyncLocalSandbox(pool_size=1) as sandbox:
            solver = solver_for(engine, sandbox, samples=2)
            loop = asyncio.get_running_loop()
            started = loop.time()
            result = await solver.solve("What is six times seven?", budget_s=2.0)
            return result, loop.time() - started, engine

    result, elapsed, engine = asyncio.run(run())
    # Ended on the budget, not on the stuck sample (an hour): the 2 s budget, the bounded wait for
    # cancelled tasks, and generous room for a loaded machine. Speed is the benchmarks' to measure.
    assert elapsed < 2.0 + STOP_GRACE_S + 10, elapsed
    assert result.answer == 42 and "time budget" in result.failure
    assert [s.finish for s in result.samples] == ["answered", "aborted"]
    assert any("-s1-" in rid for rid in engine.aborted)


class SlowReplayEngine(ReplayEngine):
    """A replay engine that takes `decode_s` per request, as a real one does."""

    def __init__(self, *args, decode_s: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.decode_s = decode_s

    async def generate(self, request):
        await asyncio.sleep(self.decode_s)
        return await super().generate(request)


class CancellationSwallowingSandbox:
    """Its sessions answer a cell whose caller was cancelled instead of raising (a fault injected on
    purpose, named so): what `asyncio.wait_for` does on Python 3.11 when the answer lands at the cancel."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def session(self, **kwargs):
        return _SwallowingSession(self.inner.session(**kwargs))


class _SwallowingSession:
    def __init__(self, inner) -> None:
        self.inner = inner

    async def __aenter__(self):
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.inner.__aexit__(*exc)

    async def run(self, code, **kwargs):
        try:
            return await self.inner.run(code, **kwargs)
        except asyncio.CancelledError:
            return ExecResult(status="OK", stdout="answered after the cancel\n")


def test_a_sample_that_swallows_its_cancel_is_still_stopped_at_once():
    slow_tool = ["```python\nimport time\ntime.sleep(1)\n```\n```output\n", "The answer is \\boxed{7}."]
    quick = ["The answer is \\boxed{42}."]

    async def run():
        engine = SlowReplayEngine(HarmonyTokenizer(), [quick, slow_tool], decode_s=0.2, max_model_len=4096)
        async with AsyncLocalSandbox(pool_size=1) as local:
            config = SolverConfig(samples=2, agree=1)
            solver = Solver(engine, MarkdownDialect(engine.tokenizer), CancellationSwallowingSandbox(local), config)
            loop = asyncio.get_running_loop()
            started = loop.time()
            result = await solver.solve("What is six times seven?")
            return result, loop.time() - started

    result, elapsed = asyncio.run(run())
    assert result.answer == 42 and result.early_stopped
    stopped = result.samples[1]
    assert stopped.finish == "aborted"
    assert len(stopped.turns) == 1, "the stopped sample went on to finish another turn"
    # Cancelled again (every RECANCEL_S) until it ended, not left to run out the grace; the turn count above
    # says it did not go on, and this that the solver did not wait the grace out.
    assert elapsed < STOP_GRACE_S, elapsed


def boxed(n: int) -> list[str]:
    return [f"The answer is \\boxed{{{n}}}."]


async def with_revision(scripts, revision, samples=3, **solve):
    engine = ReplayEngine(HarmonyTokenizer(), scripts, max_model_len=4096)
    async with AsyncLocalSandbox(pool_size=1) as sandbox:
        config = SolverConfig(samples=samples, agree=0, revision=revision)
        solver = Solver(engine, MarkdownDialect(engine.tokenizer), sandbox, config)
        return await solver.solve("What is six times seven?", **solve), engine


def test_a_revision_round_sees_the_leaders_and_joins_the_vote_with_its_weight():
    # Round one splits 1/2/3; both checks (samples 3 and 4) side with 2, at weight 2 each.
    scripts = [boxed(1), boxed(2), boxed(3), boxed(2), boxed(2)]
    revision = RevisionConfig(below=0.6, samples=2, weight=2.0, candidates=2)
    result, engine = asyncio.run(with_revision(scripts, revision))
    checks = [s for s in result.samples if s.round == 1]
    assert [s.index for s in checks] == [3, 4] and all(s.weight == 2.0 for s in checks)
    revision_prompt = engine.tokenizer.decode(engine.requests[-1].prompt_ids)
    assert "Earlier attempts answered 1 and 2. Check them" in revision_prompt
    assert result.answer == 2 and result.votes == {1: 1, 2: 3, 3: 1}


def test_no_revision_when_the_first_round_agrees_or_time_is_short():
    revision = RevisionConfig(below=0.6, samples=2)
    agreed, engine = asyncio.run(with_revision([boxed(2)] * 3, revision))
    assert len(agreed.samples) == 3 and len(engine.requests) == 3
    split = [boxed(1), boxed(2), boxed(3), boxed(2), boxed(2)]
    short, engine = asyncio.run(with_revision(split, replace(revision, min_seconds=60), budget_s=30))
    assert len(short.samples) == 3 and short.answer == 1  # a three-way tie: the smallest answer


@pytest.mark.parametrize(("n", "shares", "counts"), [
    (5, [1, 1], [3, 2]), (8, [3, 1], [6, 2]), (1, [1, 1], [1, 0]), (7, [0.2, 0.3, 0.5], [1, 2, 4]),
])
def test_samples_split_over_sources_by_share(n, shares, counts):
    assert split(n, shares) == counts


def test_mixed_sources_vote_together_with_their_weights_each_on_its_own_engine():
    # Two engines: "tir" (2 samples: 7 and 5) and "cot" (2 samples answering 5, at weight 3 each).
    tir = ReplayEngine(HarmonyTokenizer(), [boxed(7), boxed(5)], max_model_len=4096)
    cot = ReplayEngine(HarmonyTokenizer(), [None, None, boxed(5), boxed(5)], max_model_len=4096)

    async def run():
        async with AsyncLocalSandbox(pool_size=1) as sandbox:
            sources = [Source("tir", tir, MarkdownDialect(tir.tokenizer)),
                       Source("cot", cot, MarkdownDialect(cot.tokenizer), SamplingConfig(tools=False), weight=3.0,
                              prompt="Think step by step. {problem}")]
            solver = Solver(tir, sources[0].dialect, sandbox, SolverConfig(samples=4, agree=0), sources=sources)
            return await solver.solve("What is six times seven?")

    result = asyncio.run(run())
    assert [(s.source, s.weight) for s in result.samples] == [("tir", 1.0), ("tir", 1.0), ("cot", 3.0), ("cot", 3.0)]
    assert result.votes == {7: 1, 5: 3} and result.answer == 5
    assert {r.request_id.split("-")[1] for r in tir.requests} == {"s0", "s1"}
    assert {r.request_id.split("-")[1] for r in cot.requests} == {"s2", "s3"}
    assert all(r.stop == () for r in cot.requests)  # no tool: the model writes its own outputs
    assert tir.tokenizer.decode(cot.requests[0].prompt_ids).count("Think step by step. What is six") == 1
