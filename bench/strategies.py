"""The strategy levers on the tiny model, measured side by side: accuracy and time, with 95% intervals.

    .venv/bin/python bench/strategies.py [--problems 20] [--samples 8] [--sandbox local|spawn|HOST:PORT]

Two splits of fresh problems (a seed neither training nor the model card uses): `easy`, the kinds with
short numbers (the shipped tiny model's vote is right ~100% of the time), and `hard`, the kinds with long
numbers to copy (~95%). Every strategy spends the same `--samples` first-round samples per problem, at
temperature 1, with no early stop, so the differences are the levers' alone:

- majority, entropy-weighted, code-weighted, execution-filtered (`executed`, `supported`) and
  verifier-reranked (the tiny verifier through vLLM's reward-model path, aggregate `min`): one recorded
  run, each selector choosing from the same samples; the verifier's scoring time is added to its row;
- mixed sources: half the samples from the tool-using model, half from the same model without the tool;
- with revision: the plain run, plus a second round of samples/2 checks when the leader holds less than
  75% of the votes.

Three untimed problems warm the engine, the verifier and the sandbox first. Intervals: a bootstrap over
the problems (2,000 resamples). "vs majority" is a ratio of accuracies on the
same problems; "time" a ratio of seconds per problem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers import AutoTokenizer

from inference.assembly import open_sandbox
from inference.dialects import MarkdownDialect
from inference.sample import SamplingConfig
from inference.solver import RevisionConfig, Solver, SolverConfig, Source, vote_of
from inference.verifier import VLLMVerifier
from inference.vllm_engine import VLLMEngine
from inference.voting import SELECTORS, Ballot
from tiny_tir.problems import LONG_NUMBERS, generate
from tiny_tir.verifier import STEP_TAG

ROOT = Path(__file__).resolve().parent.parent
MODEL, VERIFIER = ROOT / "models" / "tiny-tir", ROOT / "models" / "tiny-verifier"
SEED = 424_242
SAMPLING = SamplingConfig(temperature=1.0, max_tokens=900, max_tool_calls=4, logprobs=5)
RECORDED = ["majority", "entropy", "code", "executed", "supported", "verifier"]


def splits(n: int) -> dict[str, list]:
    pool = generate(SEED, 40 * n)
    return {"easy": [p for p in pool if p.kind not in LONG_NUMBERS][:n],
            "hard": [p for p in pool if p.kind in LONG_NUMBERS][:n]}


def interval(right: list[bool], rng: random.Random, resamples: int = 2000) -> tuple[float, float]:
    means = sorted(sum(rng.choices(right, k=len(right))) / len(right) for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


async def run(solver: Solver, problems: list) -> tuple[list, float]:
    started = time.perf_counter()
    results = [await solver.solve(p.text) for p in problems]
    return results, time.perf_counter() - started


def choose(result, selector: str) -> int | None:
    ballot = Ballot(len(result.samples), 0, SELECTORS[selector])
    for trace in result.samples:
        ballot.add(vote_of(trace))
    return ballot.winner()


async def main(args) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(MODEL))
    dialect = MarkdownDialect(tokenizer)
    engine = VLLMEngine.for_cpu(str(MODEL), max_model_len=1024, max_num_seqs=32)
    verifier = VLLMVerifier(str(VERIFIER), step_tag=STEP_TAG, aggregate="min")
    rows: dict[tuple[str, str], tuple[list[bool], float]] = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            sandbox = await stack.enter_async_context(open_sandbox(args.sandbox))
            base = SolverConfig(samples=args.samples, agree=0, seed=1, sampling=SAMPLING)
            no_tool = replace(SAMPLING, tools=False)
            mixed = [Source("tir", engine, dialect, SAMPLING, share=0.5),
                     Source("no-tool", engine, dialect, no_tool, share=0.5)]
            revision = replace(base, revision=RevisionConfig(below=0.75, samples=max(1, args.samples // 2),
                                                             min_seconds=0))
            warm = Solver(engine, dialect, sandbox, base)  # untimed: the first requests pay for start-up
            for problem in generate(SEED + 1, 3):
                result = await warm.solve(problem.text)
                await verifier.score(dialect, problem.text, result.samples[0])
            for split, problems in splits(args.problems).items():
                answers = [p.answer for p in problems]
                results, seconds = await run(Solver(engine, dialect, sandbox, base), problems)
                scoring = time.perf_counter()
                for problem, result in zip(problems, results, strict=True):
                    for trace in result.samples:
                        if trace.answer is not None:
                            trace.verifier_score = await verifier.score(dialect, problem.text, trace)
                scoring = time.perf_counter() - scoring
                for selector in RECORDED:
                    right = [choose(r, selector) == a for r, a in zip(results, answers, strict=True)]
                    rows[selector, split] = right, seconds + (scoring if selector == "verifier" else 0.0)
                rows["pass@n (any sample right)", split] = (
                    [any(s.answer == a for s in r.samples) for r, a in zip(results, answers, strict=True)], seconds)
                for name, solver in (("mixed sources (half without the tool)",
                                      Solver(engine, dialect, sandbox, base, sources=mixed)),
                                     ("with revision (below 75%)", Solver(engine, dialect, sandbox, revision))):
                    results, seconds = await run(solver, problems)
                    rows[name, split] = [r.answer == a for r, a in zip(results, answers, strict=True)], seconds
    finally:
        await verifier.close()
        await engine.close()
    print(f"\nStrategies on the tiny model: {args.problems} problems per split, {args.samples} samples each, "
          "temperature 1, no early stop\n")
    print("| strategy | split | accuracy [95% interval] | vs majority | s per problem | time vs majority |")
    print("|---|---|---|---:|---:|---:|")
    for split in ("easy", "hard"):
        base_right, base_s = rows["majority", split]
        for (name, row_split), (right, seconds) in rows.items():
            if row_split != split:
                continue
            low, high = interval(right, random.Random(0))  # the same draws for every row
            accuracy = sum(right) / len(right)
            ratio = accuracy / (sum(base_right) / len(base_right)) if sum(base_right) else float("nan")
            print(f"| {name} | {split} | {accuracy:.0%} [{low:.0%}, {high:.0%}] | {ratio:.2f}x | "
                  f"{seconds / len(right):.2f} | {seconds / base_s:.2f}x |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--sandbox", default="local")
    asyncio.run(main(ap.parse_args()))
