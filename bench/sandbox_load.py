"""Load with hostile traffic mixed in: is every call answered, once, correctly, and does the server stay responsive?

    .venv/bin/python bench/sandbox_load.py [--sessions 256] [--cells 20] [--hostile 0.05] [--address host:port]

N concurrent sessions each run `--cells` cells, interleaved with stateless calls (one after each cell
with probability `--stateless`); a fraction `--hostile` of all cells are hostile (CPU loops, memory
bombs, output floods) and must come back TIMEOUT / MEMORY_EXCEEDED / OUTPUT_LIMIT_EXCEEDED. Every
normal call is sent a fresh nonce that its cell echoes (with how often it ran), checked on arrival: lost =
sent - answered correctly; misrouted (another call's nonce) and duplicated (its own again) counted apart.
`--fault drop:K|misroute:K|duplicate:K` breaks the bench's own delivery on purpose, to show each is seen. A
health RPC is polled throughout from a separate process. Without --address a server is started (nsjail
mode, falling back to what `--isolation` allows). `tests/security/test_load.py` runs a small variant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from sandbox_service.client import AsyncSandboxClient, SandboxError

HOSTILE = {  # name: (code, per-cell limits, the status it must come back with)
    "cpu_loop": ("while True:\n    pass", {"timeout_ms": 300}, "TIMEOUT"),
    "memory_bomb": ("hog = []\nwhile True:\n    hog.append(bytearray(64 << 20))", {}, "MEMORY_EXCEEDED"),
    "output_flood": ("while True:\n    print('flood' * 40)", {"max_output_bytes": 4096}, "OUTPUT_LIMIT_EXCEEDED"),
}
SESSION_LIMITS = {"memory_bytes": 512 << 20}  # so a memory bomb fails fast, not after 2 GiB of page faults


@dataclass
class Tally:
    """Every call is counted against what it was sent: its nonce and, in a session, its cell index.

    An answer is *correct* only when it carries the call's own nonce, its expected value, status and cell
    index, and is the first answer to that nonce. Misrouted (another call's nonce) and duplicated (this
    call's nonce again, or a cell that reports it ran twice) are counted apart; lost = sent - correct.
    """

    sent: int = 0
    arrivals: int = 0  # answers that came back, whatever they carried
    correct: int = 0
    misrouted: int = 0  # carried the nonce of another call
    duplicated: int = 0  # this call's nonce answered a second time, or its cell ran twice
    wrong: int = 0  # own nonce (or a hostile cell), but the wrong value, status or cell index
    nonces: set[str] = field(default_factory=set)  # every nonce sent
    answered: set[str] = field(default_factory=set)  # nonces already answered correctly
    errors: Counter = field(default_factory=Counter)  # gRPC status names of calls that raised
    hostile: Counter = field(default_factory=Counter)  # "name:status"
    normal_ms: list[float] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    fault: FaultInjection | None = None


@dataclass
class FaultInjection:
    """A deliberate fault in the *bench*, to show that its counts can fail: applied to the `at`-th normal
    answer that arrives. "drop" discards it, "misroute" hands that call the previous normal answer (another
    call's) instead, "duplicate" delivers it to its call twice. Set with `--fault KIND:AT` or
    AIMO_LOAD_FAULT=KIND:AT; tests/security/test_load.py checks each one is reported."""

    kind: str
    at: int = 1
    seen: int = 0
    previous: object = None

    @classmethod
    def parse(cls, spec: str | None) -> FaultInjection | None:
        if not spec:
            return None
        kind, _, at = spec.partition(":")
        if kind not in ("drop", "misroute", "duplicate"):
            raise ValueError(f"unknown fault {kind!r}: drop, misroute or duplicate")
        return cls(kind, int(at or 1))

    def deliveries(self, result) -> list:
        """What the call receives in place of `result`: nothing, another answer, or it twice."""
        self.seen += 1
        previous, self.previous = self.previous, result
        if self.seen != self.at or (self.kind == "misroute" and previous is None):
            if self.seen == self.at:
                self.at += 1  # no earlier answer to misroute yet: take the next one
            return [result]
        return {"drop": [], "misroute": [previous], "duplicate": [result, result]}[self.kind]


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def normal_cell(nonce: str, index: int) -> str:
    """A cell echoing its call's nonce, how many times it ran in this namespace, and a value of its index."""
    return (f"_runs = globals().setdefault('_load_runs', {{}})\n"
            f"_runs['{nonce}'] = _runs.get('{nonce}', 0) + 1\n"
            f"print('{nonce}', _runs['{nonce}'], {index} * {index} + sum(range(100)))")


def check_normal(tally: Tally, nonce: str, index: int, result, expected_index: int | None) -> None:
    """Classify one arrival for a normal cell sent with `nonce` (see Tally)."""
    tally.arrivals += 1
    fields = result.stdout.split() if result.status == "OK" else []
    got = fields[0] if fields else None
    if got is not None and got != nonce and got in tally.nonces:
        tally.misrouted += 1
    elif got == nonce and (nonce in tally.answered or fields[1:2] != ["1"]):
        tally.duplicated += 1
    elif (got == nonce and result.stdout == f"{nonce} 1 {index * index + 4950}\n"
          and (expected_index is None or result.cell_index == expected_index)):
        tally.correct += 1
        tally.answered.add(nonce)
    else:
        tally.wrong += 1


async def one_call(tally: Tally, rng: random.Random, call, index: int, hostile_rate: float,
                   expected_index: int | None) -> None:
    hostile = rng.random() < hostile_rate
    nonce = f"n{rng.getrandbits(64):016x}"  # per call, fresh: a stale or foreign answer cannot match it
    tally.sent += 1
    tally.nonces.add(nonce)
    if hostile:
        name = rng.choice(sorted(HOSTILE))
        code, limits, expected = HOSTILE[name]
    else:
        code, limits = normal_cell(nonce, index), {}
    started = time.perf_counter()
    try:
        result = await call(code, limits)
    except SandboxError as exc:
        tally.arrivals += 1
        tally.errors[exc.code] += 1
        return
    elapsed = (time.perf_counter() - started) * 1000
    if hostile:
        tally.arrivals += 1
        tally.hostile[f"{name}:{result.status}"] += 1
        if result.status == expected and (expected_index is None or result.cell_index == expected_index):
            tally.correct += 1
        else:
            tally.wrong += 1
        return
    tally.normal_ms.append(elapsed)
    for delivered in tally.fault.deliveries(result) if tally.fault else [result]:
        check_normal(tally, nonce, index, delivered, expected_index)


async def session_worker(client: AsyncSandboxClient, tally: Tally, n: int, cells: int, hostile: float,
                         stateless: float, seed: int) -> None:
    rng = random.Random(seed * 7919 + n)
    try:
        async with client.session(seed=n, **SESSION_LIMITS) as session:
            for i in range(cells):
                async def in_session(code, limits):
                    return await session.run(code, **limits)

                await one_call(tally, rng, in_session, i, hostile, i + 1)
                if rng.random() < stateless:
                    async def stateless_call(code, limits):
                        return await client.execute(code, **SESSION_LIMITS, **limits)

                    await one_call(tally, rng, stateless_call, i, hostile, None)
    except SandboxError as exc:  # the stream itself failed: count it, never hide it
        tally.errors[f"session:{exc.code}"] += 1


# Health is polled from a process of its own, as a real monitor (Docker's HEALTHCHECK, a load balancer)
# does: measured from inside the load generator, the latency would be the generator's own event-loop
# backlog, not the server's. The poller stops when its stdin closes and prints what it saw as JSON.
HEALTH_POLLER = """
import json, select, sys, time
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
latencies, errors = [], {}
stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(sys.argv[1]))
while not select.select([sys.stdin], [], [], float(sys.argv[2]))[0]:
    started = time.perf_counter()
    try:
        if stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status != 1:
            errors["health:NOT_SERVING"] = errors.get("health:NOT_SERVING", 0) + 1
    except grpc.RpcError as exc:
        errors["health:" + exc.code().name] = errors.get("health:" + exc.code().name, 0) + 1
    latencies.append((time.perf_counter() - started) * 1000)
print(json.dumps([latencies, errors]))
"""


async def run_load(address: str, sessions: int = 256, cells: int = 20, hostile: float = 0.05,
                   stateless: float = 0.25, seed: int = 0, channels: int = 4, fault: str | None = None) -> dict:
    """Drive the server at `address`; return the summary (see `summary`). `fault` (KIND:AT) injects a
    deliberate fault into the bench's own delivery of answers (see FaultInjection)."""
    tally = Tally(fault=FaultInjection.parse(fault))
    clients = [AsyncSandboxClient(address) for _ in range(channels)]
    health = await asyncio.create_subprocess_exec(sys.executable, "-c", HEALTH_POLLER, address, "0.05",
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(session_worker(clients[n % channels], tally, n, cells, hostile, stateless, seed)
                               for n in range(sessions)))
    finally:
        out, _ = await health.communicate(b"")  # closing its stdin stops it
        latencies, errors = json.loads(out)
        tally.health_ms += latencies
        tally.errors.update(errors)
        for client in clients:
            await client.close()
    return summary(tally, time.perf_counter() - started, sessions, cells)


def summary(tally: Tally, seconds: float, sessions: int, cells: int) -> dict:
    return {
        "sessions": sessions,
        "cells_per_session": cells,
        "calls": tally.sent,
        "answers": tally.arrivals,
        "correct": tally.correct,
        "lost": tally.sent - tally.correct,
        "misrouted": tally.misrouted,
        "duplicated": tally.duplicated,
        "wrong": tally.wrong,
        "errors": dict(tally.errors),
        "hostile": dict(tally.hostile),
        "normal_p50_ms": round(statistics.median(tally.normal_ms), 1) if tally.normal_ms else None,
        "normal_p99_ms": round(percentile(tally.normal_ms, 0.99), 1),
        "health_polls": len(tally.health_ms),
        "health_p50_ms": round(percentile(tally.health_ms, 0.5), 1),
        "health_p99_ms": round(percentile(tally.health_ms, 0.99), 1),
        "health_max_ms": round(max(tally.health_ms, default=float("nan")), 1),
        "seconds": round(seconds, 1),
        "calls_per_s": round(tally.sent / seconds, 1),
        "fault_injected": f"{tally.fault.kind}:{tally.fault.at}" if tally.fault else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=256)
    p.add_argument("--cells", type=int, default=20)
    p.add_argument("--hostile", type=float, default=0.05)
    p.add_argument("--stateless", type=float, default=0.25, help="chance of a stateless call after each cell")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--address", help="an already running server (default: start one)")
    p.add_argument("--isolation", default="nsjail")
    p.add_argument("--pool-size", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print the summary as JSON only")
    p.add_argument("--fault", default=os.environ.get("AIMO_LOAD_FAULT"),
                   help="fault injection into the bench itself, KIND:AT with KIND drop, misroute or duplicate: "
                        "shows the counts catch it")
    args = p.parse_args()
    server = None
    if args.address is None:
        from sandbox_service.spawn import ServerProcess

        server = ServerProcess("--isolation", args.isolation, "--pool-size", str(args.pool_size),
                               "--max-sessions", str(max(1024, args.sessions * 2)), "--log-level", "WARNING")
        server.wait_serving()
        args.address = server.address
    try:
        result = asyncio.run(run_load(args.address, args.sessions, args.cells, args.hostile, args.stateless,
                                      args.seed, fault=args.fault))
    finally:
        if server is not None:
            server.stop()
    result["isolation"] = args.isolation if server else "(external server)"
    if args.json:
        print(json.dumps(result))
        return
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    verdict = (result["lost"] == 0 and result["misrouted"] == 0 and result["duplicated"] == 0
               and result["wrong"] == 0 and not result["errors"])
    print("PASS" if verdict else "FAIL: lost, misrouted, duplicated, wrong or failed calls above")
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()

