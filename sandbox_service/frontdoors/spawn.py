"""Start a front door (`python -m sandbox_service.frontdoors.mcp|http`) in a subprocess on a free loopback
port, for tests, benchmarks and demos."""

from __future__ import annotations

import socket
import sys
import time

from ..spawn import LoggedProcess, free_port


class FrontDoorProcess(LoggedProcess):
    """`python -m sandbox_service.frontdoors.<door> --port P ...`; `url` is its base URL once `wait_ready`."""

    STOP_GRACE_S = 15.0

    def __init__(self, door: str, *args: str, env: dict | None = None, command=None) -> None:
        """`command(port)`, when given, is the whole command line to run instead (e.g. through `aimo`)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        extra = ["--transport", "http"] if door == "mcp" else []
        argv = command(self.port) if command else \
            [sys.executable, "-m", f"sandbox_service.frontdoors.{door}", *extra, "--port", str(self.port), *args]
        super().__init__(argv, env)

    def wait_ready(self, timeout: float = 60) -> FrontDoorProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"front door exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"front door not listening after {timeout}s:\n{self.output()}")
