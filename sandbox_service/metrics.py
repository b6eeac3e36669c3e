"""Prometheus metrics: what an operator watches (calls by status, latency, pool health, kills)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CALLS = Counter("sandbox_calls_total", "Cells answered, by method and status", ["method", "status"])
LATENCY = Histogram(
    "sandbox_call_seconds",
    "Time from request to answer, per cell",
    ["method"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60),
)
REJECTED = Counter("sandbox_rejected_total", "Calls refused before running, by gRPC code", ["code"])
SESSIONS_OPEN = Gauge("sandbox_sessions_open", "Open sessions")
CELLS_RUNNING = Gauge("sandbox_cells_running", "Cells running or queued")
ZYGOTES_READY = Gauge("sandbox_zygotes_ready", "Warm zygotes able to take work")
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
