"""`--workers N`: N server processes on one port under one supervising parent (real nsjail servers)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aimo.sandbox.v1 import sandbox_pb2 as pb
from aimo.sandbox.v1 import sandbox_pb2_grpc as pb_grpc
from sandbox_service.spawn import ROOT, free_port, server_python
from sandbox_service.workers import resolve_workers

from .conftest import start_replicas, stop_all

pytestmark = pytest.mark.nsjail
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def two_workers():
    (server,) = start_replicas(1, "--pool-size", "1", "--workers", "2")
    try:
        yield server
    finally:
        stop_all([server])


def workers_of(server) -> list[psutil.Process]:
    return psutil.Process(server.proc.pid).children()


def health(address: str) -> int | str:
    """One check on a fresh connection, which the kernel hands to any of the workers."""
    with grpc.insecure_channel(address) as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="aimo.sandbox.v1.Sandbox"), timeout=2).status
        except grpc.RpcError as exc:
            return exc.code().name


def metrics(server) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as reply:
        lines = reply.read().decode().splitlines()
    return {k: float(v) for k, _, v in (line.rpartition(" ") for line in lines if not line.startswith("#"))}


def answered_by(address: str) -> str:
    """The worker that answered an Execute on a fresh connection (its sandbox-replica header)."""
    with grpc.insecure_channel(address) as channel:
        reply, call = pb_grpc.SandboxStub(channel).Execute.with_call(pb.ExecuteRequest(code="6 * 7"), timeout=20)
    assert reply.display == "42"
    return dict(call.initial_metadata())["sandbox-replica"]


def test_n_workers_serve_one_port_and_the_parent_sums_their_metrics(two_workers):
    pids = {w.pid for w in workers_of(two_workers)}
    assert len(pids) == 2
    answers = [answered_by(two_workers.address) for _ in range(40)]
    who = {int(a.split("/")[1].split(":")[0]) for a in answers}
    assert who == pids  # the kernel spread the connections over both workers, on the one port
    assert {a.rsplit(":", 1)[1] for a in answers} == {str(two_workers.port)}
    m = metrics(two_workers)
    assert m['sandbox_calls_total{method="Execute",status="OK"}'] == 40  # both workers' counts, summed
    assert m["sandbox_workers"] == 2 and m["sandbox_workers_up"] == 2
    assert m["sandbox_zygotes_ready"] == 2  # one zygote a worker, live gauges summed
    assert health(two_workers.address) == SERVING


def test_a_killed_worker_makes_health_not_serving_until_the_parent_replaces_it(two_workers):
    victim = workers_of(two_workers)[0]
    its_zygotes = victim.children(recursive=True)
    survivor = {w.pid for w in workers_of(two_workers)} - {victim.pid}
    victim.send_signal(signal.SIGKILL)
    seen: list[int | str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = health(two_workers.address)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == SERVING and NOT_SERVING in seen:
            break
        time.sleep(0.05)
    # A connection caught in the dead worker's accept queue is reset (UNAVAILABLE; the client's retry
    # policy covers that for stateless calls); every answer given says NOT_SERVING until the replacement is up.
    answers = [s for s in seen if s != "UNAVAILABLE"]
    assert answers[-2:] == [NOT_SERVING, SERVING] and len(answers) <= 3, seen
    now = {w.pid for w in workers_of(two_workers)}
    assert len(now) == 2 and survivor <= now and victim.pid not in now  # a new worker in its place
    m = metrics(two_workers)
    assert m["sandbox_workers_replaced_total"] == 1 and m["sandbox_workers_up"] == 2
    assert m["sandbox_zygotes_ready"] == 2  # the dead worker's live gauge no longer counts
    _, alive = psutil.wait_procs(its_zygotes, timeout=10)
    assert not alive, f"the dead worker's zygotes outlived it: {alive}"
    assert answered_by(two_workers.address)


def test_sigterm_drains_every_worker(two_workers):
    workers = workers_of(two_workers)
    everything = [p for w in workers for p in [w, *w.children(recursive=True)]]
    answers: list = []

    def long_call():
        with grpc.insecure_channel(two_workers.address) as channel:
            answers.append(pb_grpc.SandboxStub(channel).Execute(
                pb.ExecuteRequest(code="import time; time.sleep(1.5); 6 * 7"), timeout=20).display)

    calls = [threading.Thread(target=long_call) for _ in range(4)]
    for call in calls:
        call.start()
    deadline = time.monotonic() + 30
    while metrics(two_workers)["sandbox_cells_running"] < 4:  # all four running, on one worker or both
        assert time.monotonic() < deadline, "the calls never all started"
        time.sleep(0.05)
    two_workers.proc.send_signal(signal.SIGTERM)
    for call in calls:
        call.join(30)
    assert two_workers.proc.wait(30) == 0
    assert answers == ["42"] * 4  # the calls in flight finished within the grace period
    _, alive = psutil.wait_procs(everything, timeout=10)
    assert not alive, alive


def start_and_fail(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([server_python(), "-m", "sandbox_service", "--isolation", "rlimit", "--pool-size", "1",
                           "--metrics-port", "0", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_zero_workers_is_a_clear_error():
    result = start_and_fail("--workers", "0", "--address", f"127.0.0.1:{free_port()}")
    assert result.returncode != 0 and "--workers must be at least 1" in result.stderr


def test_workers_on_port_zero_is_a_clear_error():
    result = start_and_fail("--workers", "2", "--address", "127.0.0.1:0")
    assert result.returncode != 0 and "needs a fixed port" in result.stderr


def test_a_taken_port_is_a_clear_error_not_a_silent_share():
    """Without --workers the server turns SO_REUSEPORT off, so a second server cannot quietly split the port."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        result = start_and_fail("--address", f"127.0.0.1:{holder.getsockname()[1]}")
    assert result.returncode != 0 and "could not bind" in result.stderr


def test_more_workers_than_cores_is_a_logged_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="sandbox.workers"):
        assert resolve_workers("8", cores=2) == 8
    assert "--workers 8 on 2 usable cores" in caplog.text
    assert resolve_workers("auto", cores=6) == 6
    for bad in ("0", "-1", "many"):
        with pytest.raises(SystemExit):
            resolve_workers(bad, cores=2)


def test_a_worker_that_cannot_start_stops_the_parent_with_its_reason():
    """At start a failing worker is a configuration error, not something to restart forever."""
    result = start_and_fail("--workers", "2", "--address", f"127.0.0.1:{free_port()}",
                            "--preload", "no_such_module_anywhere")
    assert result.returncode == 1
    assert "No module named 'no_such_module_anywhere'" in result.stderr
    assert "while starting; stopping" in result.stderr and "replacing it" not in result.stderr


def test_a_replica_short_of_a_worker_gets_no_calls_until_it_is_whole_again():
    """Workers and replicas together: one worker of a two-worker replica dies; the balancing client's
    health check sees the replica NOT_SERVING and sends every call to the other until the parent has
    replaced the worker."""
    import asyncio

    from sandbox_service.client import AsyncSandboxClient

    from .test_replicas import execute

    short, whole = start_replicas(1, "--pool-size", "1", "--workers", "2") + start_replicas(1, "--pool-size", "1")
    try:
        async def scenario():
            async with AsyncSandboxClient(f"{short.address},{whole.address}") as client:
                before = {replica.rsplit(":", 1)[1] for _, replica in [await execute(client, "1") for _ in range(10)]}
                workers_of(short)[0].send_signal(signal.SIGKILL)
                await asyncio.sleep(0.5)  # the Watch stream (or the reconnection) carries NOT_SERVING
                during = [await execute(client, "1") for _ in range(10)]
                deadline = time.monotonic() + 120
                while health(short.address) != SERVING:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)
                after = {replica.rsplit(":", 1)[1] for _, replica in [await execute(client, "1") for _ in range(10)]}
                return before, during, after

        before, during, after = asyncio.run(scenario())
    finally:
        stop_all([short, whole])
    ports = {str(short.port), str(whole.port)}
    assert before == ports
    assert [(code, replica.rsplit(":", 1)[1]) for code, replica in during] == [("OK", str(whole.port))] * 10
    assert after == ports


def test_workers_do_not_outlive_a_killed_parent(two_workers):
    """A SIGKILLed supervisor cannot stop its workers; the end of their stdin tells them to drain and go,
    so no orphan keeps the port."""
    workers = workers_of(two_workers)
    everything = [p for w in workers for p in [w, *w.children(recursive=True)]]
    two_workers.proc.send_signal(signal.SIGKILL)
    two_workers.proc.wait()
    _, alive = psutil.wait_procs(everything, timeout=30)
    for proc in alive:  # not left behind when this fails
        proc.kill()
    assert not alive, alive
