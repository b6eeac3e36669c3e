"""Recorded runs as the lab sees them: per problem, per sample, the turns as (tokens, time) segments.

Reads the traces.jsonl and summary.json that `aimo eval` writes (docs/trace-format.md). Several runs
over the same problems pool their samples by problem id, so one recording can hold more samples per
problem than any single run drew.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..answers import shown_in
from ..trace import TRACE_FORMAT
from ..voting import Vote


class RecordingError(ValueError):
    pass


@dataclass(frozen=True)
class Segment:
    tokens: int  # generated in this turn
    generate_ms: float
    start_ms: float  # from the problem's start
    tool_ms: float  # the tool call that ended the turn (0 for the last turn)


@dataclass(frozen=True)
class RecordedSample:
    segments: tuple[Segment, ...]
    vote: Vote | None  # None: the sample gave no answer
    finish: str  # "aborted" samples were cut off: what they would have done is unknown
    end_ms: float

    @property
    def answer(self) -> int | None:
        return None if self.vote is None else self.vote.answer

    @property
    def complete(self) -> bool:
        return self.finish != "aborted"


@dataclass(frozen=True)
class RecordedProblem:
    id: str
    expected: int | None
    samples: tuple[RecordedSample, ...]
    elapsed_s: float
    plan_samples: int  # what the run's budget gave this problem
    plan_seconds: float
    answer: int  # what the run answered


@dataclass(frozen=True)
class Recording:
    problems: tuple[RecordedProblem, ...]
    policy: dict | None  # the recorded run's own policy (one run only; None when runs were pooled)

    @property
    def graded(self) -> tuple[RecordedProblem, ...]:
        return tuple(p for p in self.problems if p.expected is not None)


def sample_from(data: dict) -> RecordedSample:
    segments = tuple(Segment(tokens=t["generated_tokens"], generate_ms=t["generate_ms"], start_ms=t["start_ms"],
                             tool_ms=t["tool_ms"] or 0.0) for t in data["turns"])
    entropy = data["entropy_sum"] / data["entropy_tokens"] if data["entropy_tokens"] else None
    ok = sum(t["status"] == "OK" for t in data["turns"])
    calls = sum(t["code"] is not None for t in data["turns"])
    outputs = [t["output"] for t in data["turns"] if t["status"] == "OK"]
    tail = data.get("entropy_tail") or []  # absent in traces recorded before it was
    vote = None if data["answer"] is None else Vote(data["answer"], entropy, ok, calls - ok,
                                                    supported=shown_in(data["answer"], outputs),
                                                    weight=data.get("weight", 1.0),
                                                    verifier=data.get("verifier_score"),
                                                    tail_entropy=sum(tail) / len(tail) if tail else None)
    return RecordedSample(segments, vote, data["finish"], data["start_ms"] + data["wall_ms"])


def problem_from(data: dict, where: str) -> RecordedProblem:
    if data.get("trace_format") != TRACE_FORMAT:
        raise RecordingError(f"{where}: trace format {data.get('trace_format')!r}; this lab reads {TRACE_FORMAT}")
    plan = data["plan"]
    return RecordedProblem(id=str(data["id"]), expected=data["expected"],
                           samples=tuple(sample_from(s) for s in data["samples"]), elapsed_s=data["elapsed_s"],
                           plan_samples=plan["samples"], plan_seconds=plan["seconds"], answer=data["answer"])


def load_run(folder: Path) -> tuple[list[RecordedProblem], dict | None]:
    path = folder / "traces.jsonl"
    if not path.is_file():
        raise RecordingError(f"{folder}: no traces.jsonl (record one with `aimo eval ... --out {folder}`)")
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                problems.append(problem_from(json.loads(line), f"{path}:{number}"))
            except (KeyError, TypeError, json.JSONDecodeError) as exc:
                raise RecordingError(f"{path}:{number}: not a trace line ({exc!r})") from None
    summary = folder / "summary.json"
    policy = json.loads(summary.read_text()).get("policy") if summary.is_file() else None
    return problems, policy


def load_runs(folders: list[Path | str]) -> Recording:
    """One recording from one or more `aimo eval` output folders (samples pooled by problem id)."""
    pooled: dict[str, RecordedProblem] = {}
    policy = None
    for folder in folders:
        problems, policy = load_run(Path(folder))
        for p in problems:
            if p.id in pooled:
                first = pooled[p.id]
                p = RecordedProblem(p.id, first.expected, first.samples + p.samples, first.elapsed_s,
                                    first.plan_samples, first.plan_seconds, first.answer)
            pooled[p.id] = p
    if not pooled:
        raise RecordingError("the recording holds no problems")
    return Recording(tuple(pooled.values()), policy if len(folders) == 1 else None)
