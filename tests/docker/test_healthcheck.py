"""The sandbox image's HEALTHCHECK probe (docker/healthcheck.py) against a real server on loopback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sandbox_service.spawn import ServerProcess, free_port
from tests.docker.conftest import ROOT

PROBE = str(ROOT / "docker" / "healthcheck.py")


def probe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, PROBE, *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd="/")


@pytest.fixture(scope="module")
def server():
    server = ServerProcess("--isolation", "rlimit", "--pool-size", "1")
    try:
        server.wait_serving()
    except (RuntimeError, TimeoutError):
        server.stop()
        raise
    yield server
    server.stop()


def test_probe_passes_on_a_serving_server(server):
    done = probe(server.address)
    assert done.returncode == 0, done.stderr


def test_probe_reads_the_service_address_with_a_wildcard_host(server):
    port = server.address.rsplit(":", 1)[1]
    done = probe(env={"AIMO_SANDBOX_ADDRESS": f"0.0.0.0:{port}", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr


def test_probe_fails_when_nothing_listens():
    done = probe(f"127.0.0.1:{free_port()}", env={"AIMO_HEALTHCHECK_TIMEOUT_S": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert "unhealthy" in done.stderr and "UNAVAILABLE" in done.stderr


def test_probe_address():
    sys.path.insert(0, str(ROOT / "docker"))
    try:
        from healthcheck import probe_address
    finally:
        sys.path.remove(str(ROOT / "docker"))
    assert probe_address("0.0.0.0:50071") == "127.0.0.1:50071"
    assert probe_address("[::]:50071") == "127.0.0.1:50071"
    assert probe_address("sandbox:50071") == "sandbox:50071"
