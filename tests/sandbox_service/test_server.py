"""The gRPC service itself: info, health, reflection, metrics, stream protocol, capacity, cancellation."""

from __future__ import annotations

import threading
import time
import urllib.request
import uuid

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from aimo.sandbox.v1 import sandbox_pb2 as pb
from aimo.sandbox.v1 import sandbox_pb2_grpc as pb_grpc
from sandbox_service import SandboxClient, SandboxError
from sandbox_service.spawn import ServerProcess


@pytest.fixture(scope="module")
def stub(nsjail_server):
    with grpc.insecure_channel(nsjail_server.address) as channel:
        yield pb_grpc.SandboxStub(channel)


def test_info_reports_nsjail_and_what_is_preloaded(grpc_client):
    info = grpc_client.info()
    assert info.isolation == "nsjail"
    assert "namespaces" in info.isolation_detail
    assert {"sympy", "mpmath", "numpy"} <= set(info.preloaded_modules)
    assert info.module_versions["sympy"] and info.python_version.startswith("3.")
    assert info.default_limits.timeout_ms == 10_000 and info.max_limits.timeout_ms >= info.default_limits.timeout_ms
    assert info.pool_size == 2 and info.zygotes_ready == 2


def test_health_answers_serving(nsjail_server):
    with grpc.insecure_channel(nsjail_server.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="aimo.sandbox.v1.Sandbox"), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(nsjail_server):
    with grpc.insecure_channel(nsjail_server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert "aimo.sandbox.v1.Sandbox" in names


def test_metrics_count_calls_by_status(nsjail_server, grpc_client):
    grpc_client.execute("1/0")
    with urllib.request.urlopen(f"http://127.0.0.1:{nsjail_server.metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert 'sandbox_calls_total{method="Execute",status="ERROR"}' in text
    assert "sandbox_call_seconds_bucket" in text and "sandbox_zygotes_ready 2.0" in text


def cell(code: str, **fields) -> pb.SessionRequest:
    return pb.SessionRequest(cell=pb.Cell(code=code, **fields))


def stream_error(stub, requests) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Session(iter(requests), timeout=30))
    return info.value


def test_session_stream_answers_cells_in_order(stub):
    replies = list(stub.Session(iter([cell("a = 1"), cell("a += 1"), cell("a")]), timeout=30))
    assert [r.cell_index for r in replies] == [1, 2, 3]
    assert replies[-1].display == "2"


def test_unknown_message_on_the_stream_is_invalid_argument(stub):
    error = stream_error(stub, [cell("x = 1"), pb.SessionRequest()])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "neither open nor cell" in error.details()


def test_open_after_a_cell_is_invalid_argument(stub):
    error = stream_error(stub, [cell("x = 1"), pb.SessionRequest(open=pb.SessionOpen())])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "open" in error.details()


def test_bad_open_limits_are_invalid_argument(stub):
    error = stream_error(stub, [pb.SessionRequest(open=pb.SessionOpen(limits=pb.Limits(max_processes=0))), cell("1")])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_processes" in error.details()


def test_bad_cell_in_a_session_is_invalid_argument(stub):
    error = stream_error(stub, [cell("x = 1"), cell("print('\x00')")])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "cell.code" in error.details()


def marker_processes(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def spawn_marked_child(marker: str) -> str:
    return ("import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # {marker}'])\n")


def wait_until_gone(marker: str, timeout: float = 30.0) -> bool:
    """Whether every process carrying `marker` is gone within `timeout` (generous: it returns as soon as
    they are, and a loaded CI machine can be slow to reap)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not marker_processes(marker):
            return True
        time.sleep(0.05)
    return False


def test_cancelling_a_session_mid_cell_leaves_no_process(stub):
    marker = f"marker-{uuid.uuid4().hex}"
    hold_open = threading.Event()

    def requests():
        yield cell(spawn_marked_child(marker) + "import time\ntime.sleep(60)")
        hold_open.wait(30)

    call = stub.Session(requests(), timeout=60)
    try:
        deadline = time.monotonic() + 30
        while not marker_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker_processes(marker), "the cell's child should be running before the cancel"
        call.cancel()
        assert wait_until_gone(marker)
    finally:
        hold_open.set()


def test_client_deadline_kills_the_running_cell(stub):
    marker = f"marker-{uuid.uuid4().hex}"
    code = spawn_marked_child(marker) + "import time\ntime.sleep(60)"
    # A client deadline (6 s) inside the cell's own limit (10 s by default), so that the deadline is what
    # ends it; the child must be running before it passes, else "gone" below would check nothing.
    call = stub.Execute.future(pb.ExecuteRequest(code=code), timeout=6)
    deadline = time.monotonic() + 5
    while not marker_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker_processes(marker), "the cell's child should be running before the deadline"
    with pytest.raises(grpc.RpcError) as info:
        call.result()
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert wait_until_gone(marker)


@pytest.fixture(scope="module")
def tiny_server():
    """A server with almost no capacity, to reach RESOURCE_EXHAUSTED on purpose."""
    server = ServerProcess("--isolation", "rlimit", "--pool-size", "1", "--max-sessions", "1",
                           "--max-running", "1", "--max-queue", "1", "--spares", "1")
    server.wait_serving()
    yield server
    server.stop()


def test_sessions_beyond_the_maximum_are_resource_exhausted(tiny_server):
    with SandboxClient(tiny_server.address) as client, client.session() as first:
        assert first.run("1").ok
        with pytest.raises(SandboxError) as info, client.session() as second:
            second.run("1")
        assert info.value.code == "RESOURCE_EXHAUSTED"
        assert first.run("2").display == "2"


def test_calls_beyond_the_queue_are_resource_exhausted(tiny_server):
    with grpc.insecure_channel(tiny_server.address) as channel:
        stub = pb_grpc.SandboxStub(channel)
        # Long enough that all four are in before the first ends, even on a loaded machine.
        slow = pb.ExecuteRequest(code="import time\ntime.sleep(4)")
        calls = [stub.Execute.future(slow, timeout=30) for _ in range(4)]
        codes = []
        for call in calls:
            try:
                call.result()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    assert codes.count(grpc.StatusCode.OK) == 2, codes  # one running, one queued
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 2, codes
