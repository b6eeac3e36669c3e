"""The loop's written-down contracts: the request ids a sample uses (what stopping it aborts), and the
sandbox interface both sandbox implementations must offer."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from inference.dialects import MarkdownDialect
from inference.sample import SamplingConfig, max_turns, request_id, request_ids, run_sample, sample_and_turn
from inference.sandbox import Sandbox, SandboxSession
from inference.trace import SampleTrace
from sandbox_service.client import AsyncClientSession, AsyncSandboxClient
from sandbox_service.local import AsyncLocalSandbox, AsyncLocalSession
from tests.inference.replay import HarmonyTokenizer, ReplayEngine

CELL = "```python\nprint(6 * 7)\n```\n```output\n"


@pytest.mark.parametrize("calls", [0, 1, 3])
def test_a_sample_that_never_stops_calling_uses_exactly_the_ids_aborting_it_covers(calls):
    config = SamplingConfig(max_tool_calls=calls, max_tokens=4000)
    engine = ReplayEngine(HarmonyTokenizer(), [[CELL] * (max_turns(config) + 5)], max_model_len=8192)
    dialect = MarkdownDialect(engine.tokenizer)

    async def one() -> SampleTrace:
        async with AsyncLocalSandbox(pool_size=1) as sandbox:
            trace = SampleTrace(index=0, seed=1)
            prompt = engine.tokenizer.encode("What is six times seven?")
            return await run_sample(engine, dialect, sandbox, prompt, trace, request_prefix="p7", config=config)

    trace = asyncio.run(one())
    used = [r.request_id for r in engine.requests]
    assert used == request_ids("p7", 0, config)  # every turn the loop allows, each id once, in order
    assert [t.status for t in trace.turns[:calls]] == ["OK"] * calls
    assert trace.turns[calls].status == "LIMIT"  # the call past the limit is refused, then one last turn


@pytest.mark.parametrize(("prefix", "index", "turn"), [("p0", 0, 0), ("p-12-r", 7, 9), ("", 15, 10)])
def test_a_request_id_gives_back_its_sample_and_turn(prefix, index, turn):
    assert sample_and_turn(request_id(prefix, index, turn)) == (index, turn)


def _keywords(function) -> set[str]:
    return {n for n, p in inspect.signature(function).parameters.items() if p.kind is not p.POSITIONAL_ONLY} - {"self"}


@pytest.mark.parametrize(("sandbox", "session"), [(AsyncSandboxClient, AsyncClientSession),
                                                   (AsyncLocalSandbox, AsyncLocalSession)])
def test_both_sandboxes_offer_what_the_protocol_asks(sandbox, session):
    for protocol, implementation in ((Sandbox, sandbox), (SandboxSession, session)):
        for name in ("session", "run", "__aenter__", "__aexit__"):
            if name in vars(protocol):
                assert hasattr(implementation, name), (implementation, name)
                assert _keywords(getattr(protocol, name)) <= _keywords(getattr(implementation, name)) | {"exc"}
                assert inspect.iscoroutinefunction(getattr(implementation, name)) == inspect.iscoroutinefunction(
                    getattr(protocol, name)), (implementation, name)
