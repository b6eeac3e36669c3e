"""Problem sets: a CSV of `id,problem[,answer]` read forgivingly, with a clear message per bad row; or
fresh problems from an installed problem source.

A problem source is a plugin: a function `(count, seed) -> list[Problem]` registered under the
`aimo.problem_sources` entry-point group. The bundled tiny model registers "tiny-tir" (its training
distribution, `tiny_tir.problem_set`); the product itself knows no model's problems.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

PROBLEM_SOURCES = "aimo.problem_sources"  # the entry-point group
DEFAULT_SOURCE = "tiny-tir"


@dataclass(frozen=True)
class Problem:
    id: str
    problem: str
    answer: int | None = None


class ProblemSetError(ValueError):
    """The file as a whole cannot be used (empty, no `problem` column...)."""


def read_problems(path: str | Path) -> tuple[list[Problem], list[str]]:
    """The usable problems, and one message per row that was skipped (the rest of the file still loads)."""
    raw = Path(path).read_bytes()
    if not raw.strip():
        raise ProblemSetError(f"{path}: the file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProblemSetError(f"{path}: not UTF-8 (line {line}, byte {exc.start}); save it as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "id" not in columns or "problem" not in columns:
        raise ProblemSetError(f"{path}: needs columns id and problem (found: {', '.join(columns) or 'none'})")
    reader.fieldnames = columns
    problems, problems_seen, messages = [], set(), []
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            messages.append(f"{where}: wrong number of fields; skipped")
            continue
        pid, statement = row["id"].strip(), row["problem"].strip()
        if not pid or not statement:
            messages.append(f"{where}: empty id or problem; skipped")
            continue
        if pid in problems_seen:
            messages.append(f"{where}: duplicate id {pid!r}; skipped (the first one is kept)")
            continue
        answer = None
        if row.get("answer", "").strip():
            try:
                answer = int(row["answer"].strip())
            except ValueError:
                messages.append(f"{where}: answer {row['answer']!r} is not an integer; kept without an answer")
        problems_seen.add(pid)
        problems.append(Problem(pid, statement, answer))
    if not problems:
        raise ProblemSetError(f"{path}: no usable rows" + (f" ({messages[0]})" if messages else ""))
    return problems, messages


ProblemSource = Callable[[int, int], list[Problem]]  # (count, seed) -> that many fresh problems


def problem_source(name: str = DEFAULT_SOURCE) -> ProblemSource:
    """The installed problem source of that name; ProblemSetError if there is none."""
    found = {ep.name: ep for ep in entry_points(group=PROBLEM_SOURCES)}
    if name not in found:
        installed = ", ".join(sorted(found)) or "none"
        raise ProblemSetError(f"no problem source {name!r} is installed (installed: {installed}; a source "
                              f"registers in the {PROBLEM_SOURCES!r} entry-point group: reinstall the project)")
    return found[name].load()


def synthetic_problems(count: int, seed: int = 2026, source: str = DEFAULT_SOURCE) -> list[Problem]:
    """Fresh problems from a problem source: by default the kind the tiny model was trained on (its
    generator, another seed)."""
    return problem_source(source)(count, seed)
