"""The front doors against the gRPC path they forward to, measured side by side in one run.

    .venv/bin/python bench/frontdoors.py [--clients 16] [--calls 25] [--pool-size 2]

Starts a real sandbox server (nsjail mode), the MCP front door (streamable HTTP and SSE on one process) and
the HTTP drop-ins on loopback, then for each cell (`print(1)`, a `sympy.factor`) and each path runs
`--clients` concurrent clients of `--calls` calls each, and prints calls/s, p50 and p99 per path and the
ratio of each front door's p50 to the gRPC path it stands in front of:

- stateful: gRPC `Session` against MCP `python` (streamable HTTP, SSE) and NeMo-Skills `/execute` (ipython);
- stateless: gRPC `Execute` against MCP `python_stateless` and SandboxFusion `/run_code`.

Clients: `mcp.ClientSession` for MCP, one keep-alive `httpx.AsyncClient` per client for the HTTP doors.
By default the doors forward to the gRPC server, one process hop more than the gRPC path. With
`--doors-in-process` each door runs its own sandbox pool instead (`--local`, same pool size), so both paths
cross the same number of processes; that needs `--isolation rlimit` (the doors run on this 3.11 venv, and
nsjail mode needs the 3.12 one), and the gRPC server then runs in rlimit mode too.
stdio is not measured: it is one server process per client, the same code path as the others.
The goal (issue 24): each front door within 1.5x of gRPC's p50.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from sandbox_service.client import AsyncSandboxClient
from sandbox_service.frontdoors.spawn import FrontDoorProcess
from sandbox_service.spawn import ServerProcess

CELLS = {
    "print(1)": "print(1)",
    "sympy.factor": "x = sympy.Symbol('x')\nprint(sympy.factor(x**20 - 1))",
}
GOAL = 1.5


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class Path_:
    """One way to run a cell: `open()` gives a per-client context whose `call(code)` runs one cell."""

    def __init__(self, name: str, baseline: str | None, opener) -> None:
        self.name = name
        self.baseline = baseline  # the gRPC path this one is compared with; None for a gRPC path
        self.opener = opener


def grpc_paths(address: str) -> list[Path_]:
    class Stateless:
        async def __aenter__(self):
            self.client = AsyncSandboxClient(address)
            return self

        async def call(self, code):
            assert (await self.client.execute(code)).status == "OK"

        async def __aexit__(self, *exc):
            await self.client.close()

    class Stateful(Stateless):
        async def __aenter__(self):
            await super().__aenter__()
            self.session = await self.client.session().__aenter__()
            return self

        async def call(self, code):
            assert (await self.session.run(code)).status == "OK"

        async def __aexit__(self, *exc):
            await self.session.close()
            await super().__aexit__()

    return [Path_("gRPC Session", None, Stateful), Path_("gRPC Execute", None, Stateless)]


def mcp_paths(url: str) -> list[Path_]:
    def opener(transport: str, tool: str):
        class MCP:
            async def __aenter__(self):
                self.streams = sse_client(f"{url}/sse") if transport == "sse" else \
                    streamable_http_client(f"{url}/mcp")
                read, write, *_ = await self.streams.__aenter__()
                self.session = await ClientSession(read, write).__aenter__()
                await self.session.initialize()
                return self

            async def call(self, code):
                result = await self.session.call_tool(tool, {"code": code})
                assert result.structured_content["status"] == "OK", result

            async def __aexit__(self, *exc):
                await self.session.__aexit__(None, None, None)
                await self.streams.__aexit__(None, None, None)

        return MCP

    return [Path_("MCP python, streamable HTTP", "gRPC Session", opener("http", "python")),
            Path_("MCP python, SSE (vLLM)", "gRPC Session", opener("sse", "python")),
            Path_("MCP python_stateless, streamable HTTP", "gRPC Execute", opener("http", "python_stateless"))]


def http_paths(url: str) -> list[Path_]:
    class Client:
        async def __aenter__(self):
            self.http = httpx.AsyncClient(base_url=url, timeout=60)
            self.sid = f"bench-{id(self)}"
            return self

        async def __aexit__(self, *exc):
            await self.http.delete(f"/sessions/{self.sid}")
            await self.http.aclose()

    class NeMo(Client):
        async def call(self, code):
            reply = await self.http.post("/execute", json={"generated_code": code, "timeout": 10,
                                                           "language": "ipython"},
                                         headers={"X-Session-ID": self.sid})
            assert reply.status_code == 200 and reply.json()["process_status"] == "completed", reply.text

    class Fusion(Client):
        async def call(self, code):
            reply = await self.http.post("/run_code", json={"code": code, "language": "python"})
            assert reply.status_code == 200 and reply.json()["status"] == "Success", reply.text

    return [Path_("NeMo-Skills /execute (ipython)", "gRPC Session", NeMo),
            Path_("SandboxFusion /run_code", "gRPC Execute", Fusion)]


async def measure(path: Path_, code: str, clients: int, calls: int) -> tuple[float, list[float]]:
    """calls/s over all clients, and every call's latency in ms."""
    samples: list[float] = []
    # anyio (under the mcp client) wants its contexts left in the reverse order they were entered.
    async with AsyncExitStack() as stack:
        contexts = [await stack.enter_async_context(path.opener()) for _ in range(clients)]
        for context in contexts:  # warm each connection and session once, untimed
            await context.call(code)

        async def client(context):
            for _ in range(calls):
                started = time.perf_counter()
                await context.call(code)
                samples.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in contexts))
        elapsed = time.perf_counter() - started
    return len(samples) / elapsed, samples


async def run(args: argparse.Namespace, sandbox: ServerProcess, mcp: FrontDoorProcess,
              http: FrontDoorProcess) -> list[tuple]:
    paths = [*grpc_paths(sandbox.address), *mcp_paths(mcp.url), *http_paths(http.url)]
    rows = []
    for cell, code in CELLS.items():
        p50s = {}
        for path in paths:
            rate, samples = await measure(path, code, args.clients, args.calls)
            p50, p99 = percentiles(samples)
            p50s[path.name] = p50
            ratio = p50 / p50s[path.baseline] if path.baseline else None
            rows.append((cell, path.name, rate, p50, p99, ratio))
            print(f"  {cell:14s} {path.name:40s} {rate:7.0f}/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--calls", type=int, default=25, help="per client, per path and cell")
    p.add_argument("--pool-size", type=int, default=2)
    p.add_argument("--isolation", choices=["nsjail", "rlimit"], default="nsjail")
    p.add_argument("--doors-in-process", action="store_true",
                   help="each door runs its own pool (--local) instead of forwarding to the gRPC server")
    args = p.parse_args()
    if args.doors_in_process and args.isolation != "rlimit":
        p.error("--doors-in-process needs --isolation rlimit")
    sandbox = ServerProcess("--isolation", args.isolation, "--pool-size", str(args.pool_size),
                            "--max-sessions", "4096")
    doors = []
    try:
        sandbox.wait_serving()
        target = ["--local", "rlimit", "--pool-size", str(args.pool_size)] if args.doors_in_process else \
            ["--sandbox", sandbox.address]
        doors = [FrontDoorProcess("mcp", *target).wait_ready(), FrontDoorProcess("http", *target).wait_ready()]
        rows = asyncio.run(run(args, sandbox, *doors))
    finally:
        for door in doors:
            door.stop()
        sandbox.stop()
    where = "each door with its own pool" if args.doors_in_process else "the doors forwarding to the gRPC server"
    print(f"\n{args.clients} concurrent clients, {args.calls} calls each, {args.isolation} mode, {where}; "
          f"p50 ratio against the gRPC path (goal <= {GOAL}x)\n")
    print("| cell | path | calls/s | p50 ms | p99 ms | p50 / gRPC p50 |\n|---|---|---:|---:|---:|---:|")
    for cell, name, rate, p50, p99, ratio in rows:
        verdict = "" if ratio is None else f"{ratio:.2f}x {'ok' if ratio <= GOAL else 'over'}"
        print(f"| {cell} | {name} | {rate:.0f} | {p50:.2f} | {p99:.2f} | {verdict} |")


if __name__ == "__main__":
    main()
