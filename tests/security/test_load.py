"""The load benchmark's small variant (bench/sandbox_load.py): concurrent sessions and stateless calls,
5% hostile, against the nsjail server. Every call answered, once, with its own answer; health stays fast."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sandbox_load.py"
SESSIONS = int(os.environ.get("AIMO_LOAD_SESSIONS", "24"))
CELLS = int(os.environ.get("AIMO_LOAD_CELLS", "8"))
# The goal is 50 ms on 2 cores (see SECURITY.md for the measured full run); CI machines are noisier.
HEALTH_P99_MS = float(os.environ.get("AIMO_LOAD_HEALTH_P99_MS", "250"))


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
    assert result["lost"] == 0 and result["wrong"] == 0, result
    assert result["errors"] == {}, result
    assert sum(result["hostile"].values()) > 0, result
    assert result["health_p99_ms"] < HEALTH_P99_MS, result
