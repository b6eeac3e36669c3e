"""Bad input at every front door: each gets a clear protocol-level error for its caller, a cell whose caller
disconnects is stopped, and the sandbox and every other caller carry on (a bystander session keeps its state
through all of it)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from sandbox_service.frontdoors.spawn import FrontDoorProcess
from sandbox_service.limits import MAX_CODE_BYTES

from .conftest import mcp_client, sandbox_metric, wait_for_metric

pytestmark = pytest.mark.nsjail

TOO_BIG = "x = 1\n" * (MAX_CODE_BYTES // 6 + 10)
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def bystander(http_door):
    """A NeMo-Skills session with state, checked after the bad input: it must be untouched."""
    sid = f"bystander-{time.monotonic_ns()}"
    reply = httpx.post(f"{http_door.url}/execute", json={"generated_code": "kept = 42", "timeout": 10},
                       headers={"X-Session-ID": sid}, timeout=30)
    assert reply.status_code == 200
    yield
    after = httpx.post(f"{http_door.url}/execute", json={"generated_code": "kept", "timeout": 10},
                       headers={"X-Session-ID": sid}, timeout=30).json()
    assert after["stdout"] == "42\n" and not after["new_session_created"], after
    httpx.delete(f"{http_door.url}/sessions/{sid}")


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
def test_mcp_tool_errors_name_the_problem(transport, nsjail_server, mcp_door, bystander):
    async def go():
        async with mcp_client(transport, nsjail_server.address, mcp_door) as session:
            await session.call_tool("python", {"code": "mine = 'safe'"})
            unknown = await session.call_tool("no_such_tool", {"code": "1"})
            missing = await session.call_tool("python", {})
            wrong_type = await session.call_tool("python", {"code": "1", "timeout_ms": "soon"})
            too_big = await session.call_tool("python", {"code": TOO_BIG})
            empty = await session.call_tool("python_stateless", {"code": "   "})
            still = await session.call_tool("python", {"code": "mine"})
            return unknown, missing, wrong_type, too_big, empty, still

    unknown, missing, wrong_type, too_big, empty, still = asyncio.run(go())
    assert unknown.is_error and "Unknown tool: no_such_tool" in unknown.content[0].text
    assert missing.is_error and "code" in missing.content[0].text and "required" in missing.content[0].text
    assert wrong_type.is_error and "timeout_ms" in wrong_type.content[0].text
    assert too_big.is_error and f"exceeds the maximum {MAX_CODE_BYTES}" in too_big.content[0].text
    assert empty.is_error and "code: empty" in empty.content[0].text
    assert not still.is_error and still.content[0].text == "'safe'"  # the session survived all of it


def test_mcp_malformed_json_and_unknown_session(mcp_door, bystander):
    reply = httpx.post(f"{mcp_door.url}/mcp", content=b"{not json", headers=MCP_HEADERS)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == -32700  # JSON-RPC parse error
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    reply = httpx.post(f"{mcp_door.url}/mcp", json=initialize, headers={**MCP_HEADERS, "mcp-session-id": "bogus"})
    assert reply.status_code == 404  # an unknown or expired MCP session, as the spec says
    with httpx.stream("GET", f"{mcp_door.url}/sse", timeout=10) as events:
        lines = events.iter_lines()
        endpoint = next(line for line in lines if line.startswith("data:")).removeprefix("data:").strip()
        reply = httpx.post(f"{mcp_door.url}{endpoint}", content=b"{not json",
                           headers={"Content-Type": "application/json"})
        assert reply.status_code == 400
        reply = httpx.post(f"{mcp_door.url}/messages/?session_id=00000000000000000000000000000000",
                           json=initialize)
        assert reply.status_code == 404


def test_an_mcp_client_that_disconnects_mid_cell_stops_it(nsjail_server, mcp_door, bystander):
    running = wait_for_metric(nsjail_server, "sandbox_cells_running", 0)
    sessions = wait_for_metric(nsjail_server, "sandbox_sessions_open", 1)  # the bystander's

    async def go():
        async def caller(tool: str):
            async with mcp_client("sse", nsjail_server.address, mcp_door) as session:
                await session.call_tool(tool, {"code": "import time\ntime.sleep(60)"})

        tasks = [asyncio.create_task(caller("python")), asyncio.create_task(caller("python_stateless"))]
        deadline = time.monotonic() + 20
        while sandbox_metric(nsjail_server, "sandbox_cells_running") < running + 2:
            assert time.monotonic() < deadline, "the cells never started"
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()  # the client goes away: its SSE stream closes
        await asyncio.gather(*tasks, return_exceptions=True)

    started = time.monotonic()
    asyncio.run(go())
    assert wait_for_metric(nsjail_server, "sandbox_cells_running", running) == running
    assert wait_for_metric(nsjail_server, "sandbox_sessions_open", sessions) == sessions
    assert time.monotonic() - started < 30  # stopped, not run to the end of their 60 s


def test_http_bad_requests_get_clear_errors(http_door, bystander):
    url = http_door.url
    reply = httpx.post(f"{url}/run_code", content=b"{not json", headers={"Content-Type": "application/json"})
    assert reply.status_code == 422 and "malformed JSON" in reply.json()["detail"]
    reply = httpx.post(f"{url}/execute", content=b"{not json", headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.json()["process_status"] == "error"
    assert "malformed JSON" in reply.json()["stderr"]
    reply = httpx.post(f"{url}/run_code", json={"language": "python"})
    assert reply.status_code == 422 and "code: Field required" in reply.json()["detail"]
    reply = httpx.post(f"{url}/execute", json={"generated_code": "1"}, headers={"X-Session-ID": "s"})
    assert reply.status_code == 400 and "timeout: Field required" in reply.json()["stderr"]
    reply = httpx.post(f"{url}/run_code", json={"code": TOO_BIG, "language": "python"})
    assert reply.status_code == 400 and f"exceeds the maximum {MAX_CODE_BYTES}" in reply.json()["message"]
    reply = httpx.post(f"{url}/execute", json={"generated_code": TOO_BIG, "timeout": 5},
                       headers={"X-Session-ID": "too-big"})
    assert reply.status_code == 400 and "exceeds the maximum" in reply.json()["stderr"]
    reply = httpx.post(f"{url}/run_code", content=b"x" * (2 << 20), headers={"Content-Type": "application/json"})
    assert reply.status_code == 413
    assert httpx.delete(f"{url}/sessions/never-opened").status_code == 404
    reply = httpx.post(f"{url}/execute", json={"generated_code": "1", "timeout": 5, "language": "lean4"})
    assert reply.status_code == 400 and "python and ipython only" in reply.json()["stderr"]


@pytest.mark.parametrize("endpoint", ["run_code", "execute"])
def test_an_http_client_that_disconnects_mid_cell_stops_it(endpoint, nsjail_server, http_door, bystander):
    running = wait_for_metric(nsjail_server, "sandbox_cells_running", 0)
    sessions = wait_for_metric(nsjail_server, "sandbox_sessions_open", 1)
    code = "import time\ntime.sleep(60)"
    body = {"code": code, "language": "python", "run_timeout": 120} if endpoint == "run_code" else \
        {"generated_code": code, "timeout": 120}
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes its connection
        httpx.post(f"{http_door.url}/{endpoint}", json=body, headers={"X-Session-ID": "leaver"}, timeout=2)
    assert wait_for_metric(nsjail_server, "sandbox_cells_running", running) == running
    assert wait_for_metric(nsjail_server, "sandbox_sessions_open", sessions) == sessions
    assert time.monotonic() - started < 20
    if endpoint == "execute":  # the session went with its cell; the next request says so
        reply = httpx.post(f"{http_door.url}/execute", json={"generated_code": "1", "timeout": 5},
                           headers={"X-Session-ID": "leaver"}, timeout=30).json()
        assert reply["new_session_created"]
        httpx.delete(f"{http_door.url}/sessions/leaver")


def test_overload_is_refused_at_once_with_retry_after(nsjail_server):
    door = FrontDoorProcess("http", "--sandbox", nsjail_server.address, "--max-in-flight", "1").wait_ready()
    try:
        slow = threading.Thread(target=httpx.post, args=(f"{door.url}/run_code",),
                                kwargs={"json": {"code": "import time\ntime.sleep(3)", "language": "python"},
                                        "timeout": 30})
        slow.start()
        deadline = time.monotonic() + 10
        while httpx.get(f"{door.url}/health").json()["in_flight"] < 1:
            assert time.monotonic() < deadline, "the slow call never started"
            time.sleep(0.02)
        started = time.monotonic()
        reply = httpx.post(f"{door.url}/run_code", json={"code": "print(1)", "language": "python"}, timeout=30)
        assert reply.status_code == 503 and reply.headers["Retry-After"] == "1"
        assert time.monotonic() - started < 1  # refused, not queued
        assert reply.json()["status"] == "SandboxError" and "busy" in reply.json()["message"]
        reply = httpx.post(f"{door.url}/execute", json={"generated_code": "1", "timeout": 5},
                           headers={"X-Session-ID": "s"}, timeout=30)
        assert reply.status_code == 503 and json.loads(reply.text)["process_status"] == "error"
        slow.join()
        reply = httpx.post(f"{door.url}/run_code", json={"code": "print(1)", "language": "python"}, timeout=30)
        assert reply.status_code == 200 and reply.json()["run_result"]["stdout"] == "1\n"
    finally:
        door.stop()


def test_mcp_overload_is_a_busy_tool_error_at_once(nsjail_server):
    door = FrontDoorProcess("mcp", "--sandbox", nsjail_server.address, "--max-in-flight", "1").wait_ready()

    async def go():
        async with mcp_client("streamable-http", nsjail_server.address, door) as slow, \
                mcp_client("streamable-http", nsjail_server.address, door) as other:
            long_call = asyncio.create_task(slow.call_tool("python", {"code": "import time\ntime.sleep(3)"}))
            deadline = time.monotonic() + 15
            while sandbox_metric(nsjail_server, "sandbox_cells_running") < 1:
                assert time.monotonic() < deadline, "the slow cell never started"
                await asyncio.sleep(0.05)
            started = time.monotonic()
            refused = await other.call_tool("python", {"code": "print(1)"})
            refused_after = time.monotonic() - started
            finished = await long_call
            after = await other.call_tool("python", {"code": "print(1)"})
            return refused, refused_after, finished, after

    try:
        refused, refused_after, finished, after = asyncio.run(go())
    finally:
        door.stop()
    assert refused.is_error and "busy" in refused.content[0].text and "retry" in refused.content[0].text
    assert refused_after < 1
    assert finished.structured_content["status"] == "OK" and after.content[0].text == "1"
