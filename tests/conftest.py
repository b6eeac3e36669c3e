"""Shared fixtures: a real sandbox server on loopback (nsjail mode) and an in-process rlimit sandbox."""

from __future__ import annotations

import contextlib
import os

import pytest

from sandbox_service.spawn import ServerProcess


def nsjail_required() -> bool:
    """CI sets this: there, a missing nsjail is a failure, not a skip."""
    return os.environ.get("AIMO_REQUIRE_NSJAIL") == "1"


LOUD_SKIP = "set {flag}=1 to make this a failure"


def skip_unless_required(flag: str, reason: str) -> None:
    """Where `flag` is 1 (CI sets the ones it can run), fail with the reason; else skip, loudly: every such
    skip is listed again at the end of the run (see pytest_terminal_summary), never only as an 's'."""
    if os.environ.get(flag) == "1":
        pytest.fail(f"{flag}=1, but {reason}")
    pytest.skip(f"{reason} ({LOUD_SKIP.format(flag=flag)})")


def pytest_terminal_summary(terminalreporter) -> None:
    loud = [r for r in terminalreporter.stats.get("skipped", []) if "to make this a failure" in str(r.longrepr)]
    if loud:
        terminalreporter.section(f"NOT RUN: {len(loud)} tests skipped that a flag can require", sep="!",
                                 red=True, bold=True)
        for report in loud:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            terminalreporter.write_line(f"{report.nodeid}: {reason}", red=True)


@contextlib.contextmanager
def nsjail_server_process(*extra: str):
    """A real server in nsjail mode; skipped with the reason where nsjail cannot run (failed in CI)."""
    server = ServerProcess("--isolation", "nsjail", "--pool-size", "2", *extra)
    try:
        server.wait_serving()
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        if nsjail_required():
            raise
        pytest.skip(f"nsjail mode unavailable here: {str(exc)[-600:]}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nsjail_server():
    with nsjail_server_process() as server:
        yield server


@pytest.fixture(scope="session")
def grpc_client(nsjail_server):
    from sandbox_service import SandboxClient

    with SandboxClient(nsjail_server.address) as client:
        yield client


@pytest.fixture(scope="session")
def local_sandbox():
    from sandbox_service import LocalSandbox

    with LocalSandbox(isolation="rlimit", pool_size=2) as sandbox:
        yield sandbox


@pytest.fixture(params=["nsjail", "rlimit"])
def sandbox(request):
    """The same behavioural tests through both modes: gRPC to a real nsjail server, and LocalSandbox."""
    if request.param == "nsjail":
        client = request.getfixturevalue("grpc_client")
    else:
        client = request.getfixturevalue("local_sandbox")
    client.mode = request.param
    return client
