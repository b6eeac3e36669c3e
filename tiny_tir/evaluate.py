"""Evaluate the tiny TIR model through vLLM (CPU) with and without the Python tool.

    python -m tiny_tir.evaluate --model models/tiny-tir --n 1000 --write-card

With the tool: the project's own loop (`inference.Solver`, one greedy sample per problem, its own
sandbox session, code run mid-generation, outputs spliced in token space). Without the tool: the same
model and prompt, but generation does not stop at "```output", so the model has to write the output
itself. The answer is the last \\boxed{N} of what the model wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from tiny_tir.problems import Problem, generate

EVAL_SEED = 777  # training uses tiny_tir.train.TRAIN_SEED; never the same
MAX_MODEL_LEN = 1024
MAX_CELLS = 4
CARD_BEGIN, CARD_END = "<!-- eval:begin -->", "<!-- eval:end -->"


@dataclass
class Result:
    kind: str
    answer: int
    predicted: int | None
    cells: int
    text: str

    @property
    def correct(self) -> bool:
        return self.predicted == self.answer


async def evaluate(model: Path, problems: list[Problem], concurrency: int = 16) -> tuple[list[Result], list[Result]]:
    """(with the tool, without it): greedy decoding of every problem, through the real engine and sandbox."""
    from transformers import AutoTokenizer

    from inference.answers import extract_answer
    from inference.dialects import MarkdownDialect
    from inference.engine import GenerationRequest
    from inference.sample import SamplingConfig
    from inference.solver import Solver, SolverConfig
    from inference.vllm_engine import VLLMEngine
    from sandbox_service.local import AsyncLocalSandbox

    engine = VLLMEngine.for_cpu(str(model), max_model_len=MAX_MODEL_LEN, max_num_seqs=concurrency)
    dialect = MarkdownDialect(AutoTokenizer.from_pretrained(str(model)))
    limit = asyncio.Semaphore(concurrency)
    try:
        async with AsyncLocalSandbox(pool_size=2) as sandbox:
            config = SolverConfig(samples=1, agree=1, sampling=SamplingConfig(
                temperature=0.0, max_tokens=MAX_MODEL_LEN, max_tool_calls=MAX_CELLS))
            solver = Solver(engine, dialect, sandbox, config)

            async def with_tool(p: Problem) -> Result:
                async with limit:
                    sample = (await solver.solve(p.text)).samples[0]
                text = "".join(t.text for t in sample.turns)
                return Result(p.kind, p.answer, sample.answer, sample.tool_calls, text)

            async def without_tool(i: int, p: Problem) -> Result:
                prompt = dialect.prompt_ids(p.text)
                async with limit:
                    gen = await engine.generate(GenerationRequest(
                        f"notool-{i}", prompt, MAX_MODEL_LEN - len(prompt), temperature=0.0))
                return Result(p.kind, p.answer, extract_answer(gen.text), gen.text.count("```python"), gen.text)

            tool = await asyncio.gather(*(with_tool(p) for p in problems))
            no_tool = await asyncio.gather(*(without_tool(i, p) for i, p in enumerate(problems)))
            return list(tool), list(no_tool)
    finally:
        await engine.close()


def table(with_tool: list[Result], without_tool: list[Result]) -> str:
    """A markdown table of accuracy per kind and overall."""
    by: dict[str, list[list[Result]]] = defaultdict(lambda: [[], []])
    for col, rs in enumerate((with_tool, without_tool)):
        for r in rs:
            by[r.kind][col].append(r)

    def pct(rs: list[Result]) -> str:
        return f"{100 * sum(r.correct for r in rs) / len(rs):.1f}% ({sum(r.correct for r in rs)}/{len(rs)})"

    lines = ["| problems | with the tool | without the tool |", "|---|---|---|"]
    for kind in sorted(by):
        w, wo = by[kind]
        lines.append(f"| {kind} | {pct(w)} | {pct(wo)} |")
    lines.append(f"| **all** | **{pct(with_tool)}** | **{pct(without_tool)}** |")
    return "\n".join(lines)


def write_card_section(card: Path, body: str) -> None:
    """Replace the text between the eval markers of the model card."""
    text = card.read_text()
    head, rest = text.split(CARD_BEGIN, 1)
    _, tail = rest.split(CARD_END, 1)
    card.write_text(f"{head}{CARD_BEGIN}\n{body}\n{CARD_END}{tail}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("models/tiny-tir"))
    ap.add_argument("--n", type=int, default=1000)  # 200 left a spread of 4 points between seeds
    ap.add_argument("--seed", type=int, default=EVAL_SEED)
    ap.add_argument("--out", type=Path, default=None, help="write per-problem results (JSONL)")
    ap.add_argument("--write-card", action="store_true", help="put the table into the model card")
    args = ap.parse_args(argv)
    problems = generate(args.seed, args.n)
    t0 = time.time()
    with_tool, without_tool = asyncio.run(evaluate(args.model, problems))
    elapsed = time.time() - t0
    md = table(with_tool, without_tool)
    print(md)
    print(f"both passes in {elapsed:.0f} s")
    if args.out:
        with args.out.open("w") as f:
            for mode, rs in (("tool", with_tool), ("no_tool", without_tool)):
                for r in rs:
                    f.write(json.dumps({"mode": mode, **asdict(r), "correct": r.correct}) + "\n")
    if args.write_card:
        note = (
            f"{args.n} fresh problems (generator seed {args.seed}; training used seed "
            f"{_train_seed()}), greedy decoding, vLLM CPU, the project's own loop (`inference.Solver`) "
            "and sandbox (`LocalSandbox`)."
        )
        write_card_section(args.model / "README.md", f"{note}\n\n{md}")


def _train_seed() -> int:
    from tiny_tir.train import TRAIN_SEED

    return TRAIN_SEED


if __name__ == "__main__":
    main()
