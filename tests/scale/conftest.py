"""Replicas: several real sandbox servers on loopback, each its own process (nsjail mode)."""

from __future__ import annotations

import os
import signal
import urllib.request

import grpc
import pytest

from aimo.sandbox.v1 import sandbox_pb2 as pb
from sandbox_service.client import AsyncSandboxClient
from sandbox_service.spawn import ServerProcess
from tests.conftest import nsjail_required


def start_replicas(n: int, *extra: str) -> list[ServerProcess]:
    """n nsjail servers, started together; skipped with the reason where nsjail cannot run (failed in CI)."""
    return wait_or_skip([ServerProcess("--isolation", "nsjail", "--pool-size", "2", *extra) for _ in range(n)])


def wait_or_skip(servers: list[ServerProcess]) -> list[ServerProcess]:
    try:
        for server in servers:
            server.wait_serving()
    except (RuntimeError, TimeoutError) as exc:
        stop_all(servers)
        if nsjail_required():
            raise
        pytest.skip(f"nsjail mode unavailable here: {str(exc)[-600:]}")
    return servers


def stop_all(servers: list[ServerProcess]) -> None:
    for server in servers:
        server.stop()


def sigkill(server: ServerProcess) -> None:
    """The whole replica at once, the way a container or a pod dies: server and zygotes, no goodbye."""
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()


@pytest.fixture
def three_replicas():
    servers = start_replicas(3)
    try:
        yield servers
    finally:
        stop_all(servers)


def calls_answered(server) -> float:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('sandbox_calls_total{method="Execute"'))


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
