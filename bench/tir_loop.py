"""The TIR loop on the tiny model: ours (async, per sample) against lockstep rounds, side by side.

    .venv/bin/python bench/tir_loop.py [--problems 30] [--samples 16] [--sandbox local|spawn|HOST:PORT]

Prints one table from one run:
(a) wall time of the async per-sample loop vs a lockstep-rounds loop (every sample generates to its
    stop, then every sample's code runs, then every sample continues: Numina's SC-TIR), same problems,
    same seeds, same engine and sandbox; problems one after another, as the solver takes them, each
    with all its samples at once;
(b) KV reuse on continuations: vLLM's own `num_cached_tokens` over the tokens already computed before
    the tool call, rounded down to whole KV blocks (goal 100%: any re-tokenization drift shows here),
    summed, and per continuation: the worst one and how many fell below 100% (a sum can hide one that
    missed behind others' re-encoded tail block); the plain cached/prompt ratio beside it;
(c) per-tool-call overhead beyond the sandbox's own execution time, p50 (goal <= 2 ms): in the run, and
    again with the CPU to the sandbox alone (the run's cells replayed one at a time through the same loop
    steps, the engine idle), which separates what the loop adds from what sharing two cores costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.assembly import open_sandbox
from inference.dialects import MarkdownDialect, Turn
from inference.engine import GenerationRequest
from inference.sample import SamplingConfig, ToolSession, max_turns, run_sample
from inference.tool_output import render_result
from inference.trace import SampleTrace
from inference.vllm_engine import VLLMEngine
from tiny_tir.problems import generate

MODEL = Path(__file__).resolve().parent.parent / "models" / "tiny-tir"
BLOCK = 32
SAMPLING = SamplingConfig(temperature=0.8, max_tokens=900, max_tool_calls=4)


async def async_loop(engine, dialect, sandbox, prompts: list[list[int]], samples: int) -> list[SampleTrace]:
    """Ours: every sample its own task, each runs its code the moment it stops."""
    traces = []
    for p, prompt in enumerate(prompts):
        batch = [SampleTrace(index=s, seed=1000 * p + s) for s in range(samples)]
        await asyncio.gather(*(run_sample(engine, dialect, sandbox, prompt, t, request_prefix=f"a{p}",
                                          config=SAMPLING) for t in batch))
        traces += batch
    return traces


async def lockstep_loop(engine, dialect, sandbox, prompts: list[list[int]], samples: int) -> int:
    """The baseline: per problem, rounds of generate-all, execute-all, continue-all. Returns the answers found."""
    answered = 0
    for p in range(len(prompts)):
        answered += await lockstep_problem(engine, dialect, sandbox, prompts[p], p, samples)
    return answered


async def lockstep_problem(engine, dialect, sandbox, prompt: list[int], p: int, samples: int) -> int:
    states = [{"ids": list(prompt), "seed": 1000 * p + s, "session": None, "turns": [], "done": False,
               "prompt": len(prompt)} for s in range(samples)]
    async with contextlib.AsyncExitStack() as stack:
        for state in states:
            state["session"] = await stack.enter_async_context(ToolSession(sandbox, state["seed"]))
        for turn_no in range(max_turns(SAMPLING)):
            active = [s for s in states if not s["done"]]
            if not active:
                break

            async def generate(state, turn_no=turn_no):
                budget = min(SAMPLING.max_tokens - (len(state["ids"]) - state["prompt"]),
                             engine.max_model_len - len(state["ids"]))
                if budget <= 0:
                    return None
                return await engine.generate(GenerationRequest(
                    f"l{state['seed']}-t{turn_no}", state["ids"], budget, temperature=SAMPLING.temperature,
                    seed=(state["seed"] * 1_000_003 + turn_no) % (1 << 31), stop=dialect.stop_strings))

            generations = await asyncio.gather(*(generate(s) for s in active))
            calls = []
            for state, gen in zip(active, generations, strict=True):
                if gen is None:
                    state["done"] = True
                    continue
                turn = Turn(gen.token_ids, gen.text, gen.finish_reason, gen.stop_reason)
                state["turns"].append(turn)
                code = dialect.code_of(turn)
                if code is None:
                    state["done"] = True
                else:
                    calls.append((state, turn, code))
            results = await asyncio.gather(*(s["session"].run(code, SAMPLING.tool_timeout_ms) for s, _, code in calls))
            for (state, turn, _), result in zip(calls, results, strict=True):
                state["ids"] += dialect.continuation_ids(turn, render_result(result), None)
    from inference.answers import extract_answer

    return sum(extract_answer(dialect.answer_text(s["turns"])) is not None for s in states)


async def unshared_overhead(dialect, sandbox, traces: list[SampleTrace], samples: int = 48) -> list[float]:
    """(c) with nothing else running: the recorded cells of `samples` samples, each sample in its own session,
    through the loop's own steps (session call, output rendering, continuation ids). A pause before each call
    stands in for the generation between two cells, as in a real sample."""
    overheads = []
    for sample in [s for s in traces if s.tool_calls][:samples]:
        async with ToolSession(sandbox, sample.seed) as session:
            for recorded in (t for t in sample.turns if t.code is not None):
                turn = Turn(dialect.tokenizer.encode(recorded.text, add_special_tokens=False), recorded.text,
                            recorded.finish_reason, dialect.stop_strings[0])
                await asyncio.sleep(0.02)
                started = time.perf_counter()
                result = await session.run(recorded.code, SAMPLING.tool_timeout_ms)
                dialect.continuation_ids(turn, render_result(result), None)
                overheads.append((time.perf_counter() - started) * 1000 - result.wall_ms)
    return overheads


@dataclass
class KVReuse:
    aggregate: float  # cached / already-computed tokens in whole blocks, summed over continuations
    prompt_ratio: float  # cached / prompt tokens, summed
    continuations: int  # continuations with at least one whole block already computed
    minimum: float  # the worst single continuation's cached / already-computed whole blocks
    below: int  # continuations that found fewer than all their whole blocks


def kv_reuse(traces: list[SampleTrace]) -> KVReuse:
    """Per continuation, not only in sum: one that misses its blocks cannot hide behind others' extra tail."""
    continuations = [t for s in traces for t in s.turns if t.reusable_tokens and t.reusable_tokens >= BLOCK]
    per = [(t.cached_tokens or 0) / (t.reusable_tokens // BLOCK * BLOCK) for t in continuations]
    cached = sum(t.cached_tokens or 0 for t in continuations)
    reusable_blocks = sum(t.reusable_tokens // BLOCK * BLOCK for t in continuations)
    prompt = sum(t.prompt_tokens for t in continuations)
    return KVReuse(cached / max(1, reusable_blocks), cached / max(1, prompt), len(continuations),
                   min(per, default=float("nan")), sum(r < 1 for r in per))


async def main(args) -> None:
    problems = generate(args.seed, args.problems)
    engine = VLLMEngine.for_cpu(str(MODEL), max_model_len=1024, max_num_seqs=max(16, args.samples))
    from transformers import AutoTokenizer

    dialect = MarkdownDialect(AutoTokenizer.from_pretrained(str(MODEL)))
    prompts = [dialect.prompt_ids(p.text) for p in problems]
    async with open_sandbox(args.sandbox) as sandbox:
        await async_loop(engine, dialect, sandbox, prompts[:2], 2)  # warm-up: compile paths, fill pools
        started = time.perf_counter()
        traces = await async_loop(engine, dialect, sandbox, prompts, args.samples)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        lockstep_answered = await lockstep_loop(engine, dialect, sandbox, prompts, args.samples)
        lockstep_s = time.perf_counter() - started
        unshared = await unshared_overhead(dialect, sandbox, traces)
    await engine.close()

    correct = sum(t.answer == problems[t.seed // 1000].answer for t in traces)
    reuse = kv_reuse(traces)
    overheads = [t.tool_ms - t.sandbox_ms for s in traces for t in s.turns
                 if t.tool_ms is not None and t.sandbox_ms is not None]
    cells = [sum(t.code is not None for t in s.turns) for s in traces]
    print(f"\nTIR loop, tiny model, {args.problems} problems x {args.samples} samples "
          f"(cells per sample: {min(cells)}-{max(cells)}, mean {statistics.mean(cells):.2f}); "
          f"sandbox: {args.sandbox}\n")
    print("| measure | ours | baseline | ratio | goal |")
    print("|---|---:|---:|---:|---|")
    print(f"| (a) wall time, s | {ours_s:.1f} | {lockstep_s:.1f} (lockstep rounds) | "
          f"{lockstep_s / ours_s:.2f}x faster | >= 1.5x |")
    print(f"| (b) cached / already-computed tokens (whole {BLOCK}-token blocks), sum of {reuse.continuations} "
          f"continuations | {reuse.aggregate:.1%} | | | 100% |")
    print(f"| (b) the same, worst single continuation | {reuse.minimum:.1%} | | | 100% |")
    print(f"| (b) continuations below 100% | {reuse.below} of {reuse.continuations} | | | 0 |")
    print(f"| (b) cached / prompt tokens on continuations (sum) | {reuse.prompt_ratio:.1%} | | | |")
    print(f"| (c) tool-call overhead beyond the cell's own time, p50 ms | {statistics.median(overheads):.2f} "
          f"| | | <= 2 ms |")
    print(f"| (c) the same with the CPU to the sandbox alone ({len(unshared)} cells one at a time), p50 ms "
          f"| {statistics.median(unshared):.2f} | | | <= 2 ms |")
    print(f"\nanswers: ours {correct}/{len(traces)} samples correct; lockstep {lockstep_answered}/{len(traces)} "
          f"samples answered")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=30)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=424_242)
    parser.add_argument("--sandbox", default="local", help="local (in-process), spawn (gRPC service) or HOST:PORT")
    asyncio.run(main(parser.parse_args()))
