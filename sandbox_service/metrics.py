"""Prometheus metrics: what an operator watches (calls by status, latency, pool health, kills).

With `--workers N` every worker process writes these to files in PROMETHEUS_MULTIPROC_DIR (set by the
supervisor, `workers.py`), and the supervisor serves their sum on the one metrics port
(prometheus-client's multiprocess mode): one scrape target per box, however many workers it runs.
The gauges say `livesum`: the sum over the workers alive now, not over every worker that ever ran.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

CALLS = Counter("sandbox_calls_total", "Cells answered, by method and status", ["method", "status"])
LATENCY = Histogram(
    "sandbox_call_seconds",
    "Time from request to answer, per cell",
    ["method"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60),
)
REJECTED = Counter("sandbox_rejected_total", "Calls refused before running, by gRPC code", ["code"])
SESSIONS_OPEN = Gauge("sandbox_sessions_open", "Open sessions", multiprocess_mode="livesum")
CELLS_RUNNING = Gauge("sandbox_cells_running", "Cells running or queued", multiprocess_mode="livesum")
ZYGOTES_READY = Gauge("sandbox_zygotes_ready", "Warm zygotes able to take work", multiprocess_mode="livesum")
ZYGOTES_REPLACED = Counter("sandbox_zygotes_replaced_total", "Zygotes that died or wedged and were replaced")
KILLS = Counter("sandbox_kills_total", "Cells killed, by reason", ["reason"])

KILL_REASONS = {"TIMEOUT": "timeout", "MEMORY_EXCEEDED": "memory", "OUTPUT_LIMIT_EXCEEDED": "output",
                "CRASHED": "crash"}


def record(method: str, result: dict, seconds: float) -> None:
    status = result.get("status", "CRASHED")
    CALLS.labels(method, status).inc()
    LATENCY.labels(method).observe(seconds)
    if status in KILL_REASONS:
        KILLS.labels(KILL_REASONS[status]).inc()


_tasks: set[asyncio.Task] = set()


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def track_zygotes_ready(count: Callable[[], int], every_s: float = 0.5) -> None:
    """Keep ZYGOTES_READY equal to `count()`: read at scrape time in one process; in multiprocess mode,
    where the scrape reads files and never calls into this process, written every `every_s`."""
    if not multiprocess():
        ZYGOTES_READY.set_function(count)
        return

    async def refresh() -> None:
        while True:
            ZYGOTES_READY.set(count())
            await asyncio.sleep(every_s)

    task = asyncio.get_running_loop().create_task(refresh())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
