"""Replicas: several real sandbox servers on loopback, each its own process (nsjail mode)."""

from __future__ import annotations

import os
import signal

import pytest

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
