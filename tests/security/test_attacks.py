"""Each attack of attacks.ATTACKS through a real server, in both isolation modes.

Asserts the declared outcome (status and per-label results), that it finished within its time bound
and that its answer stayed small, then `check_untouched`: health, the victim session, a fresh call,
no surviving processes, no files left.
"""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest

from .attacks import ATTACKS, PROLOGUE, Attack
from .harness import Target, fill

ANSWER_CAP = (64 << 10) * 2 + 4096  # default max_output_bytes, head and tail, plus a marker


def run_attack(target: Target, attack: Attack, marker: str) -> tuple[list, float]:
    values = target.substitutions(marker)
    steps = [fill(PROLOGUE + step, values) for step in attack.steps]
    started = time.perf_counter()
    if attack.session:
        with target.client.session(**attack.limits) as session:
            results = [session.run(code) for code in steps]
    else:
        results = [target.client.execute(code, **attack.limits) for code in steps]
    return results, time.perf_counter() - started


def result_field(result, name: str) -> str:
    """`message`, `stdout`, ... of a result, or `error.type` and the like of its error."""
    if name.startswith("error."):
        return (result.error or {}).get(name.split(".", 1)[1], "")
    return getattr(result, name)


def parse_lines(stdout: str) -> dict[str, str]:
    lines = {}
    for line in stdout.splitlines():
        label, sep, value = line.partition(": ")
        if sep:
            lines[label] = value
    return lines


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_contained(target: Target, attack: Attack):
    outcome = attack.outcome(target.mode)
    marker = f"marker-{uuid.uuid4().hex}"
    try:
        results, elapsed = run_attack(target, attack, marker)
        assert elapsed < attack.max_seconds, f"took {elapsed:.1f}s"
        last = results[-1]
        assert last.status in outcome.statuses, f"{last.status}: {last.message} {last.error} {last.stdout[-500:]}"
        for result in results:
            for text in (result.stdout, result.stderr, result.display, *(result.error or {}).values()):
                assert len(text.encode()) <= ANSWER_CAP
                assert target.canary not in text
        seen = {}
        for result in results:
            seen.update(parse_lines(result.stdout))
        for label, pattern in outcome.lines.items():
            assert label in seen, f"no '{label}:' line in {[r.stdout for r in results]} {results[-1]}"
            assert re.fullmatch(pattern, seen[label]), f"{label}: {seen[label]!r} !~ {pattern!r}"
        for name, pattern in outcome.fields.items():
            value = result_field(last, name)
            assert re.fullmatch(pattern, value, re.S), f"{name}: {value[:300]!r}... !~ {pattern!r}"
        target.check_untouched(marker)
    finally:
        for path in attack.cleanup:  # what a documented gap leaves on the host
            try:
                os.unlink(path.replace("MARKER", marker))
            except FileNotFoundError:
                pass
