"""Run a problem set through the solver under a time budget; write results, traces and a summary.

Outputs in `out_dir`: results.csv and results.parquet (one row per problem), traces.jsonl (every sample,
every turn), summary.json, and report.html (plots and a trace viewer; opens without a server).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .budget import TimeBudget
from .problems import Problem
from .solver import Solver
from .trace import Result


@dataclass
class Row:
    id: str
    answer: int
    expected: int | None
    correct: bool | None
    answered: bool
    samples: int
    votes: str
    tokens: int
    code_calls: int
    sandbox_errors: int
    seconds: float
    early_stopped: bool
    pass_at_k: bool | None
    failure: str


def row_of(problem: Problem, result: Result) -> Row:
    turns = [t for s in result.samples for t in s.turns]
    expected = problem.answer
    return Row(
        id=problem.id, answer=result.answer, expected=expected,
        correct=None if expected is None else result.answer == expected, answered=result.answered,
        samples=len(result.samples), votes=json.dumps({str(k): v for k, v in result.votes.items()}),
        tokens=sum(s.generated_tokens for s in result.samples), code_calls=sum(1 for t in turns if t.code is not None),
        sandbox_errors=sum(1 for t in turns if t.status in ("CRASHED", "REJECTED")), seconds=result.elapsed_s,
        early_stopped=result.early_stopped,
        pass_at_k=None if expected is None else any(s.answer == expected for s in result.samples),
        failure=result.failure or "",
    )


def summarize(rows: list[Row], results: list[Result], wall_s: float) -> dict:
    graded = [r for r in rows if r.correct is not None]
    turns = [t for res in results for s in res.samples for t in s.turns]
    continuations = [t for t in turns if t.reusable_tokens and t.cached_tokens is not None]
    samples = [s for res in results for s in res.samples]
    tokens = sum(r.tokens for r in rows)
    return {
        "problems": len(rows),
        "graded": len(graded),
        "accuracy": sum(r.correct for r in graded) / len(graded) if graded else None,
        "pass_at_k": sum(bool(r.pass_at_k) for r in graded) / len(graded) if graded else None,
        "sample_accuracy": (sum(s.answer == p.expected for p, res in zip(rows, results, strict=True)
                                for s in res.samples) / max(1, sum(len(res.samples) for res in results)))
        if graded else None,
        "answered": sum(r.answered for r in rows),
        "seconds_total": wall_s,
        "seconds_per_problem": sum(r.seconds for r in rows) / max(1, len(rows)),
        "tokens": tokens,
        "tokens_per_second": tokens / wall_s if wall_s else 0.0,
        "tool_calls_per_sample": sum(1 for t in turns if t.code is not None) / max(1, len(samples)),
        "cache_hit_rate": (sum(t.cached_tokens for t in continuations) /
                           sum(t.reusable_tokens for t in continuations)) if continuations else None,
        "failures": [f"{r.id}: {r.failure}" for r in rows if r.failure],
    }


async def evaluate(problems: list[Problem], solver: Solver, budget: TimeBudget, out_dir: str | Path, *,
                   show_progress: bool = True) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    results: list[Result] = []
    started = time.monotonic()
    with (out / "traces.jsonl").open("w") as traces, Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[accuracy]}"), disable=not show_progress,
    ) as progress:
        task = progress.add_task("solving", total=len(problems), accuracy="")
        for problem in problems:
            plan = budget.plan()
            result = await solver.solve(problem.problem, budget_s=plan.seconds, samples=plan.samples)
            budget.record(result.elapsed_s)
            row = row_of(problem, result)
            rows.append(row)
            results.append(result)
            traces.write(json.dumps({"id": problem.id, "expected": problem.answer, **result.to_dict(),
                                     "plan": asdict(plan)}) + "\n")
            traces.flush()
            graded = [r for r in rows if r.correct is not None]
            accuracy = f"accuracy {sum(r.correct for r in graded)}/{len(graded)}" if graded else ""
            progress.update(task, advance=1, accuracy=accuracy)
    summary = summarize(rows, results, time.monotonic() - started)
    # What the lab needs to replay this run's own policy (docs/trace-format.md).
    summary["policy"] = {"samples": solver.config.samples, "agree": solver.config.agree,
                         "selector": solver.config.selector, "stop": solver.config.stop,
                         "budget": asdict(budget.config),
                         "revision": asdict(solver.config.revision),
                         "sources": [{"name": s.name, "model": s.engine.name, "share": s.share, "weight": s.weight,
                                      "prompt": s.prompt, "tools": s.sampling.tools} for s in solver.sources]}
    frame = pl.DataFrame([r.__dict__ for r in rows])
    frame.write_csv(out / "results.csv")
    frame.write_parquet(out / "results.parquet")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    from .report import write_report

    write_report(out, rows, results, summary)
    return summary
