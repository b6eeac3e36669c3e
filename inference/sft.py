"""Evaluation traces to fine-tuning data: rejection sampling in the dialect's own format.

    aimo export-sft runs/first runs/second --out sft.jsonl

Only samples that boxed the expected answer are kept, each distinct completion once. A record is the
text the model saw and wrote, cut into segments, in order:

    {"id": "...", "problem": "...", "answer": 42, "dialect": "markdown",
     "segments": [{"text": <prompt>, "train": false}, {"text": <turn 1>, "train": true},
                  {"text": <tool reply 1>, "train": false}, ..., {"text": <last turn>, "train": true}]}

Joined, the segments are token for token what the engine ran (the dialect renders the prompt and the
tool replies); `train: false` marks what a trainer masks from the loss: the prompt and every tool
output, so a model never learns to invent outputs. `tiny_tir.train --sft FILE` reads this format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .dialects import Dialect, Turn


@dataclass
class ExportStats:
    problems: int = 0  # graded problems read
    samples: int = 0  # finished samples read
    right: int = 0  # of those, the ones that boxed the expected answer
    kept: int = 0  # after dropping repeated completions
    problems_kept: int = 0  # problems with at least one record


def tool_reply(dialect: Dialect, output: str, calls_left: int | None) -> str:
    """The text the engine spliced in after a tool call: the dialect's rendering, as text."""
    return dialect.decode(dialect.continuation_ids(Turn([], "", "stop"), output, calls_left))


def sample_segments(dialect: Dialect, problem: str, sample: dict, max_tool_calls: int) -> list[dict]:
    segments = [{"text": dialect.decode(dialect.prompt_ids(problem)), "train": False}]
    calls = 0
    for turn in sample["turns"]:
        segments.append({"text": turn["text"], "train": True})
        if turn["output"] is not None:
            calls += 1
            calls_left = max(0, max_tool_calls - calls) if dialect.shows_calls_left else None
            segments.append({"text": tool_reply(dialect, turn["output"], calls_left), "train": False})
    return segments


def records(lines: Iterable[dict], dialect: Dialect, stats: ExportStats, *, max_tool_calls: int) -> Iterator[dict]:
    seen: set[str] = set()
    for line in lines:
        expected = line.get("expected")
        if expected is None:
            continue
        stats.problems += 1
        kept_before = stats.kept
        for sample in line["samples"]:
            if sample["finish"] in ("aborted", "error", ""):
                continue
            stats.samples += 1
            if sample["answer"] != expected or sample["finish"] != "answered":
                continue
            stats.right += 1
            segments = sample_segments(dialect, line["problem"], sample, max_tool_calls)
            key = json.dumps(segments)
            if key in seen:
                continue
            seen.add(key)
            stats.kept += 1
            yield {"id": str(line["id"]), "problem": line["problem"], "answer": expected,
                   "dialect": dialect.name, "segments": segments}
        stats.problems_kept += stats.kept > kept_before


def read_traces(runs: Iterable[Path]) -> Iterator[dict]:
    for run in runs:
        path = run / "traces.jsonl" if run.is_dir() else run
        for line in path.read_text().splitlines():
            if line.strip():
                yield json.loads(line)


def export_sft(runs: Iterable[Path], dialect: Dialect, out: Path, *, max_tool_calls: int = 8) -> ExportStats:
    """Write the right, distinct samples of `runs` (folders `aimo eval` wrote) to `out` as JSON lines."""
    stats = ExportStats()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for record in records(read_traces(runs), dialect, stats, max_tool_calls=max_tool_calls):
            f.write(json.dumps(record) + "\n")
    return stats
