"""The load benchmark's small variant (bench/sandbox_load.py): concurrent sessions and stateless calls,
10% hostile, against the nsjail server. Every call answered once, with its own nonce; health stays up.

The bench's counts are themselves checked: with one answer dropped, misrouted or duplicated on purpose
(its fault injection), it must report exactly that one."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sandbox_load.py"
SESSIONS = int(os.environ.get("AIMO_LOAD_SESSIONS", "24"))
CELLS = int(os.environ.get("AIMO_LOAD_CELLS", "8"))
# A generous bound that says the health RPC kept answering under load, not how fast: the speed goal
# (50 ms on 2 cores) is the bench's to measure (see SECURITY.md), and a loaded CI machine is noisier.
HEALTH_P99_MS = float(os.environ.get("AIMO_LOAD_HEALTH_P99_MS", "2000"))


def load_bench():
    spec = importlib.util.spec_from_file_location("sandbox_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_load_with_hostile_cells_loses_nothing(nsjail_server):
    bench = load_bench()
    result = asyncio.run(bench.run_load(nsjail_server.address, sessions=SESSIONS, cells=CELLS, hostile=0.1,
                                        seed=1))
    assert result["calls"] >= SESSIONS * CELLS
    assert result["correct"] == result["calls"] == result["answers"], result
    assert (result["lost"], result["misrouted"], result["duplicated"], result["wrong"]) == (0, 0, 0, 0), result
    assert result["errors"] == {}, result
    assert sum(result["hostile"].values()) > 0, result
    assert result["health_polls"] > 0 and result["health_p99_ms"] < HEALTH_P99_MS, result


@pytest.mark.parametrize(("fault", "expected"), [
    ("drop:3", {"lost": 1, "misrouted": 0, "duplicated": 0, "wrong": 0}),
    ("misroute:3", {"lost": 1, "misrouted": 1, "duplicated": 0, "wrong": 0}),
    ("duplicate:3", {"lost": 0, "misrouted": 0, "duplicated": 1, "wrong": 0}),
])
def test_the_bench_reports_one_injected_fault(nsjail_server, fault, expected):
    """Fault injection into the bench's delivery of answers: one answer broken, exactly one reported."""
    bench = load_bench()
    result = asyncio.run(bench.run_load(nsjail_server.address, sessions=3, cells=3, hostile=0.0, seed=2,
                                        fault=fault))
    assert result["fault_injected"] == fault
    assert {key: result[key] for key in expected} == expected, result
    assert result["correct"] == result["calls"] - expected["lost"], result
