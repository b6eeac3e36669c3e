"""The MCP front door through the `mcp` client library, over stdio, streamable HTTP and SSE, in front of
a real sandbox server in nsjail mode."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import MCP_TRANSPORTS, mcp_client, wait_for_metric

pytestmark = pytest.mark.nsjail


@pytest.fixture(params=MCP_TRANSPORTS)
def connect(request, nsjail_server):
    door = None if request.param == "stdio" else request.getfixturevalue("mcp_door")
    return lambda **kw: mcp_client(request.param, nsjail_server.address, door, **kw)


def text(result) -> str:
    assert len(result.content) == 1 and result.content[0].type == "text"
    return result.content[0].text


def test_lists_the_tools_gpt_oss_and_agents_call(connect):
    async def go():
        async with connect() as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            return session.initialize_result, tools

    init, tools = asyncio.run(go())
    assert init.server_info.name == "python"  # vLLM's namespace for gpt-oss's python tool
    assert "stateful" in init.instructions
    assert set(tools) == {"python", "python_stateless", "reset_session", "cleanup_session"}
    assert tools["python"].input_schema["required"] == ["code"]
    assert "timeout_ms" in tools["python_stateless"].input_schema["properties"]
    assert tools["python"].output_schema["properties"]["status"]["type"] == "string"
    assert all(tool.meta == {"include_in_prompt": False} for tool in tools.values())


def test_stateless_run_shows_output_and_forgets(connect):
    async def go():
        async with connect() as session:
            first = await session.call_tool("python_stateless", {"code": "x = 7\nprint(2**100)\nx * 6"})
            second = await session.call_tool("python_stateless", {"code": "x"})
            # limits over the sandbox's maxima are lowered to them, not refused
            greedy = await session.call_tool("python_stateless", {"code": "print(1)", "timeout_ms": 10**9,
                                                                  "memory_bytes": 10**15})
            return first, second, greedy

    first, second, greedy = asyncio.run(go())
    assert not greedy.is_error and greedy.structured_content["status"] == "OK"
    assert text(first) == "1267650600228229401496703205376\n42"
    assert first.structured_content["status"] == "OK" and first.structured_content["display"] == "42"
    assert first.structured_content["stdout"] == "1267650600228229401496703205376\n"
    assert not first.is_error
    assert second.structured_content["status"] == "ERROR"
    assert second.structured_content["error"]["type"] == "NameError" and "NameError" in text(second)


def test_session_keeps_state_across_calls(connect):
    async def go():
        async with connect() as session:
            results = [await session.call_tool("python", {"code": code}) for code in
                       ("x = 41\ndef inc(v):\n    return v + 1", "inc(x)", "import sympy\nsympy.factor(x**2 - 1)")]
            stateless = await session.call_tool("python_stateless", {"code": "x"})
            return results, stateless

    (define, use, factor), stateless = asyncio.run(go())
    assert define.structured_content["new_session"] and define.structured_content["cell_index"] == 1
    assert text(use) == "42" and use.structured_content["display"] == "42"
    assert use.structured_content["cell_index"] == 2 and not use.structured_content["new_session"]
    assert text(factor) == "1680"  # x is an int: 41**2 - 1
    assert stateless.structured_content["error"]["type"] == "NameError"  # the session is not shared


def test_timeout_stops_the_cell_and_rolls_back(connect):
    async def go():
        async with connect() as session:
            await session.call_tool("python", {"code": "counter = 1"})
            slow = await session.call_tool("python", {"code": "counter = 2\nwhile True:\n    pass",
                                                      "timeout_ms": 300})
            after = await session.call_tool("python", {"code": "counter"})
            return slow, after

    slow, after = asyncio.run(go())
    assert slow.structured_content["status"] == "TIMEOUT" and slow.structured_content["state_rolled_back"]
    assert slow.structured_content["wall_ms"] < 2000
    assert "[TIMEOUT" in text(slow) and "undone" in text(slow)
    assert text(after) == "1"


def test_a_crashed_cell_is_rolled_back(connect):
    async def go():
        async with connect() as session:
            await session.call_tool("python", {"code": "kept = 'here'"})
            crash = await session.call_tool("python", {"code": "kept = 'gone'\nimport os\nos._exit(7)"})
            after = await session.call_tool("python", {"code": "kept"})
            return crash, after

    crash, after = asyncio.run(go())
    assert crash.structured_content["status"] == "CRASHED" and crash.structured_content["state_rolled_back"]
    assert text(after) == "'here'"


def test_reset_session_forgets_everything(connect):
    async def go():
        async with connect() as session:
            await session.call_tool("python", {"code": "secret = 1"})
            reset = await session.call_tool("reset_session", {})
            after = await session.call_tool("python", {"code": "secret"})
            return reset, after

    reset, after = asyncio.run(go())
    assert not reset.is_error
    assert after.structured_content["error"]["type"] == "NameError" and after.structured_content["new_session"]
    assert after.structured_content["cell_index"] == 1


def test_two_mcp_sessions_are_isolated(connect):
    async def go():
        async with connect() as a, connect() as b:
            await asyncio.gather(a.call_tool("python", {"code": "who = 'a'"}),
                                 b.call_tool("python", {"code": "who = 'b'"}))
            return await asyncio.gather(a.call_tool("python", {"code": "who"}),
                                        b.call_tool("python", {"code": "who"}))

    seen_by_a, seen_by_b = asyncio.run(go())
    assert (text(seen_by_a), text(seen_by_b)) == ("'a'", "'b'")


def test_the_session_closes_with_the_mcp_session(connect, nsjail_server):
    baseline = wait_for_metric(nsjail_server, "sandbox_sessions_open", 0)

    async def go():
        async with connect() as session:
            await session.call_tool("python", {"code": "x = 1"})
            return wait_for_metric(nsjail_server, "sandbox_sessions_open", baseline + 1)

    assert asyncio.run(go()) == baseline + 1
    assert wait_for_metric(nsjail_server, "sandbox_sessions_open", baseline) == baseline
