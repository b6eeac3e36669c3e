"""One sample's life: generate until a tool call, run it in the sample's own session, splice, continue.

Every sample is its own engine request and its own sandbox session, so a sample waiting on its code
never holds up the others; the engine batches whoever is decoding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sandbox_service.client import SandboxError
from sandbox_service.limits import InvalidRequest, check_code
from sandbox_service.result import ExecResult

from .answers import extract_answer
from .dialects import Dialect, Turn
from .engine import Engine, EngineError, GenerationRequest
from .sandbox import Sandbox
from .tool_output import render_result
from .trace import SampleTrace, TurnTrace
from .voting import ENTROPY_TAIL_TOKENS

CALL_LIMIT_REPLY = "[no code executions left: continue without code]"


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.7
    top_p: float = 1.0
    min_p: float = 0.0
    max_tokens: int = 4096  # generated tokens per sample, tool outputs included
    max_tool_calls: int = 8
    tool_timeout_ms: int = 10_000
    tool_output_chars: int = 2000
    logprobs: int = 0  # top-k per token, for the entropy-weighted vote
    tools: bool = True  # False: no tool calls; the model writes on through its code (chain of thought)


def max_turns(config: SamplingConfig) -> int:
    """The most generation turns a sample runs: one ending in each allowed call, one ending in a call
    refused (no calls left), and the last."""
    return config.max_tool_calls + 2


def request_id(prefix: str, index: int, turn: int) -> str:
    """The engine request id of a sample's turn: unique within the solver's `prefix` (its problem)."""
    return f"{prefix}-s{index}-t{turn}"


def sample_and_turn(request_id: str) -> tuple[int, int]:
    """The sample index and turn a `request_id` was made from (the inverse of `request_id`)."""
    *_, sample, turn = request_id.split("-")
    return int(sample.removeprefix("s")), int(turn.removeprefix("t"))


def request_ids(prefix: str, index: int, config: SamplingConfig) -> list[str]:
    """Every request id the sample may use (what aborting the sample aborts)."""
    return [request_id(prefix, index, turn) for turn in range(max_turns(config))]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class ToolSession:
    """A sample's sandbox session that never raises: a sandbox that fails, at open or at a cell,
    answers as a crashed cell, and the model reads why and goes on without the tool."""

    def __init__(self, sandbox: Sandbox, seed: int) -> None:
        self._session = sandbox.session(seed=seed)
        self._opened = False
        self._error: SandboxError | None = None

    async def __aenter__(self) -> ToolSession:
        try:
            await self._session.__aenter__()
            self._opened = True
        except SandboxError as exc:
            self._error = exc
        return self

    async def __aexit__(self, *exc) -> None:
        if self._opened:
            await self._session.__aexit__(*exc)

    async def run(self, code: str, timeout_ms: int) -> ExecResult:
        try:  # checked here, so that an empty or oversized block never ends the session's stream
            check_code(code)
        except InvalidRequest as exc:
            return ExecResult(status="ERROR", error={"type": "ValueError", "message": str(exc), "traceback": ""})
        if self._error is None:
            try:
                return await self._session.run(code, timeout_ms=timeout_ms)
            except SandboxError as exc:
                self._error = exc
        return ExecResult(status="CRASHED", message=f"sandbox unavailable ({self._error.code}: {self._error.details})")


async def run_sample(engine: Engine, dialect: Dialect, sandbox: Sandbox, prompt_ids: list[int], trace: SampleTrace, *,
                     request_prefix: str, config: SamplingConfig, origin: float | None = None) -> SampleTrace:
    """Fill `trace` (the caller's: if this task is cancelled, what it did so far is still there).

    `origin` is the problem's start on the `time.perf_counter` clock; the trace's times count from it.
    """
    index, seed = trace.index, trace.seed
    started = time.perf_counter()
    origin = started if origin is None else origin
    trace.start_ms = (started - origin) * 1000
    ids = list(prompt_ids)
    turns: list[Turn] = []
    computed: list[int] = []  # ids whose KV the previous turn computed
    calls_left = config.max_tool_calls
    try:
        async with ToolSession(sandbox, seed) as session:
            for turn_no in range(max_turns(config)):
                budget = min(config.max_tokens - (len(ids) - len(prompt_ids)), engine.max_model_len - len(ids))
                if budget <= 0:
                    trace.finish = "length"
                    break
                request = GenerationRequest(
                    request_id=request_id(request_prefix, index, turn_no), prompt_ids=ids, max_tokens=budget,
                    temperature=config.temperature, top_p=config.top_p, min_p=config.min_p,
                    seed=(seed * 1_000_003 + turn_no) % (1 << 31), stop=dialect.stop_strings if config.tools else (),
                    stop_token_ids=dialect.stop_token_ids, logprobs=config.logprobs,
                )
                t0 = time.perf_counter()
                gen = await engine.generate(request)
                t1 = time.perf_counter()
                turn = Turn(gen.token_ids, gen.text, gen.finish_reason, gen.stop_reason)
                turns.append(turn)
                trace.turns.append(TurnTrace(
                    text=gen.text, finish_reason=gen.finish_reason, prompt_tokens=len(ids),
                    generated_tokens=len(gen.token_ids), cached_tokens=gen.cached_tokens,
                    reusable_tokens=_common_prefix(ids, computed), generate_ms=(t1 - t0) * 1000,
                    start_ms=(t0 - origin) * 1000,
                ))
                trace.entropy_sum += gen.entropy_sum
                trace.entropy_tokens += gen.entropy_tokens
                if gen.entropies:  # rounded: 256 floats a sample in traces.jsonl, precise enough to rank
                    tail = trace.entropy_tail + [round(h, 5) for h in gen.entropies[-ENTROPY_TAIL_TOKENS:]]
                    trace.entropy_tail = tail[-ENTROPY_TAIL_TOKENS:]
                code = dialect.code_of(turn) if config.tools else None
                if code is None:
                    trace.finish = "length" if gen.finish_reason == "length" else ""
                    break
                record = trace.turns[-1]
                record.code = code
                if calls_left > 0:
                    calls_left -= 1
                    result = await session.run(code, config.tool_timeout_ms)
                    output = render_result(result, config.tool_output_chars)
                    record.status, record.sandbox_ms = result.status, result.wall_ms
                else:
                    output = CALL_LIMIT_REPLY
                    record.status = "LIMIT"
                record.output = output
                computed = ids + list(gen.token_ids[:-1])  # the last sampled token was never fed back
                ids = ids + dialect.continuation_ids(turn, output, calls_left if dialect.shows_calls_left else None)
                record.tool_ms = (time.perf_counter() - t1) * 1000
    except EngineError as exc:
        trace.finish, trace.error = "error", str(exc)
    trace.answer = extract_answer(dialect.answer_text(turns))
    if not trace.finish:
        trace.finish = "answered" if trace.answer is not None else "no_answer"
    trace.wall_ms = (time.perf_counter() - started) * 1000
    return trace
