"""Replicas behind gRPC's own balancing: round robin, health checking, retries of calls that never started.

Real servers on loopback (each its own process, nsjail mode); a replica is killed with SIGKILL mid-run.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request

import grpc
import pytest

from aimo.sandbox.v1 import sandbox_pb2 as pb
from inference.sample import ToolSession
from sandbox_service import SandboxClient
from sandbox_service.client import AsyncSandboxClient
from sandbox_service.pool import PoolSettings
from sandbox_service.server import SandboxServer

from .conftest import sigkill, start_replicas, stop_all

pytestmark = pytest.mark.nsjail


def replica_name(server) -> str:
    return f"{socket.gethostname()}/{server.proc.pid}:{server.port}"


def calls_answered(server) -> float:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('sandbox_calls_total{method="Execute"'))


def test_round_robin_spreads_calls_over_every_replica(three_replicas):
    before = [calls_answered(s) for s in three_replicas]
    with SandboxClient(",".join(s.address for s in three_replicas)) as client:
        for _ in range(30):
            assert client.execute("6 * 7").display == "42"
    taken = [calls_answered(s) - b for s, b in zip(three_replicas, before, strict=True)]
    assert sum(taken) == 30 and min(taken) >= 3, taken


async def execute(client: AsyncSandboxClient, code: str) -> tuple[str, str]:
    """(status code name, replica that took the call or "" if none did), through the client's own channel."""
    call = client.stub.Execute(pb.ExecuteRequest(code=code), timeout=20)
    try:
        await call
        code_name = "OK"
    except grpc.aio.AioRpcError as exc:
        code_name = exc.code().name
    metadata = await call.initial_metadata()
    return code_name, dict(metadata or ()).get("sandbox-replica", "")


def cells_running(server) -> float:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    (line,) = [line for line in text.splitlines() if line.startswith("sandbox_cells_running ")]
    return float(line.split()[1])


def test_a_replica_killed_mid_run_loses_no_call_that_had_not_started(three_replicas):
    victim = three_replicas[1]
    dead = replica_name(victim)
    target = ",".join(s.address for s in three_replicas)

    async def scenario():
        async with AsyncSandboxClient(target) as client:
            tools = [ToolSession(client, seed=i) for i in range(6)]
            for tool in tools:
                await tool.__aenter__()
                assert (await tool.run("x = 41", timeout_ms=5000)).status == "OK"
            homes = [await tool._session.replica() for tool in tools]

            # One long cell on each replica (round robin), so one is surely running on the victim when it dies.
            long_cells = [asyncio.create_task(execute(client, "import time; time.sleep(4); 6 * 7")) for _ in range(3)]
            while await asyncio.to_thread(cells_running, victim) < 1:
                await asyncio.sleep(0.05)

            outcomes: list[tuple[float, str, str]] = []
            stop = asyncio.Event()

            async def load():
                while not stop.is_set():
                    code, replica = await execute(client, "import time; time.sleep(0.05); 6 * 7")
                    outcomes.append((time.monotonic(), code, replica))

            loaders = [asyncio.create_task(load()) for _ in range(6)]
            await asyncio.sleep(1.5)
            killed_at = time.monotonic()
            await asyncio.to_thread(sigkill, victim)
            await asyncio.sleep(2.5)
            stop.set()
            await asyncio.gather(*loaders)

            answers = []
            for tool in tools:
                started = time.monotonic()
                result = await tool.run("x + 1", timeout_ms=5000)
                answers.append((result, time.monotonic() - started))
                second = await tool.run("x + 2", timeout_ms=5000)
                answers[-1] += (second,)
            for tool in tools:
                await tool.__aexit__(None, None, None)
            cut_off = sorted(code for code, _ in await asyncio.gather(*long_cells))
            return homes, outcomes, killed_at, answers, cut_off

    homes, outcomes, killed_at, answers, cut_off = asyncio.run(scenario())
    # A cell that had started on the killed replica is not run again elsewhere: its caller hears why.
    assert cut_off == ["OK", "OK", "UNAVAILABLE"], cut_off
    assert 0 < homes.count(dead) < len(homes), homes  # round robin spread the sessions

    failed = [(code, replica) for _, code, replica in outcomes if code != "OK"]
    # A call that failed had started on the killed replica (its headers say so) and failed UNAVAILABLE;
    # one that had not started there was retried elsewhere and answered.
    assert all(code == "UNAVAILABLE" and replica == dead for code, replica in failed), failed
    assert len(failed) <= 6  # at most one in flight per loader
    after = [replica for t, code, replica in outcomes if code == "OK" and t > killed_at + 0.5]
    assert after and dead not in after
    assert len(outcomes) - len(failed) > 20

    for home, (first, seconds, second) in zip(homes, answers, strict=True):
        if home == dead:  # one clear error, at once, and the model is told the tool is gone
            assert first.status == "CRASHED" and "sandbox unavailable (UNAVAILABLE" in first.message, first
            assert seconds < 1.0
            assert second.status == "CRASHED" and second.message == first.message
        else:
            assert first.status == "OK" and first.display == "42", first
            assert second.display == "43"


def test_a_replica_answering_not_serving_gets_no_new_calls():
    """In-process servers, so the test can flip one's health as a draining or degraded replica would."""

    async def scenario():
        settings = PoolSettings(pool_size=1, isolation="rlimit")
        servers = [SandboxServer(settings, "127.0.0.1:0") for _ in range(2)]
        for server in servers:
            await server.start()
        names = [f"{socket.gethostname()}/{__import__('os').getpid()}:{s.port}" for s in servers]
        try:
            async with AsyncSandboxClient(",".join(f"127.0.0.1:{s.port}" for s in servers)) as client:
                both = {replica for _, replica in [await execute(client, "1") for _ in range(10)]}
                await servers[0].set_serving(False)
                await asyncio.sleep(0.5)  # the Watch stream carries the change to the client
                drained = [await execute(client, "1") for _ in range(10)]
                await servers[0].set_serving(True)
                await asyncio.sleep(0.5)
                back = {replica for _, replica in [await execute(client, "1") for _ in range(10)]}
        finally:
            for server in servers:
                await server.stop()
        return names, both, drained, back

    names, both, drained, back = asyncio.run(scenario())
    assert both == set(names)
    assert drained == [("OK", names[1])] * 10
    assert back == set(names)


def test_an_aged_connection_is_closed_without_cutting_a_session_or_losing_a_call():
    """--max-connection-age: the server closes old connections (so clients re-resolve and find new
    replicas) but lets the streams on them finish; the client reconnects for new calls."""
    (server,) = start_replicas(1, "--max-connection-age", "1")
    try:
        with SandboxClient(server.address) as client, client.session() as session:
            session.run("x = 0")
            for _ in range(12):  # 3 s: the connection is past its age three times over
                assert client.execute("6 * 7").display == "42"
                session.run("x += 1")
                time.sleep(0.25)
            assert session.run("x").display == "12"

        async def state_after_idling() -> grpc.ChannelConnectivity:
            async with grpc.aio.insecure_channel(server.address) as channel:
                await channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
                await asyncio.sleep(2.5)  # past the age: GOAWAY, and with no stream left the connection closes
                return channel.get_state(try_to_connect=False)

        assert asyncio.run(state_after_idling()) == grpc.ChannelConnectivity.IDLE  # the server closed it
    finally:
        stop_all([server])
