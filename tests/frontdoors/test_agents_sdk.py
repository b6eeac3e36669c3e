"""An agent framework's MCP clients end to end: the OpenAI Agents SDK's `MCPServerStdio`, `MCPServerSse`
and `MCPServerStreamableHttp`, the tools as its Agent sees them (FunctionTools) invoked the way its runner
invokes them. No model: the tool calls a model would make are made here."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from sandbox_service.spawn import ROOT

pytestmark = pytest.mark.nsjail

agents = pytest.importorskip("agents")


def sdk_server(kind: str, sandbox_address: str, door):
    from agents.mcp import MCPServerSse, MCPServerStdio, MCPServerStreamableHttp

    if kind == "stdio":
        return MCPServerStdio(params={"command": sys.executable, "cwd": str(ROOT), "args": [
            "-m", "sandbox_service.frontdoors.mcp", "--sandbox", sandbox_address]}, client_session_timeout_seconds=30)
    if kind == "sse":
        return MCPServerSse(params={"url": f"{door.url}/sse"}, client_session_timeout_seconds=30)
    return MCPServerStreamableHttp(params={"url": f"{door.url}/mcp"}, client_session_timeout_seconds=30)


@pytest.mark.parametrize("kind", ["stdio", "sse", "streamable-http"])
def test_an_agent_uses_the_sandbox_tools(kind, nsjail_server, mcp_door):
    from agents import Agent, RunContextWrapper
    from agents.tool_context import ToolContext

    async def go():
        async with sdk_server(kind, nsjail_server.address, mcp_door) as server:
            agent = Agent(name="solver", instructions="Use python.", mcp_servers=[server])
            tools = {tool.name: tool for tool in await agent.get_mcp_tools(RunContextWrapper(None))}
            python = tools["python"]
            answers = []
            for i, code in enumerate(["x = 6", "x * 7", "import sympy\nsympy.isprime(2**61 - 1)"]):
                arguments = json.dumps({"code": code})
                call = ToolContext(context=None, tool_name="python", tool_call_id=f"call_{i}",
                                   tool_arguments=arguments)
                answers.append(await python.on_invoke_tool(call, arguments))
            return set(tools), answers

    names, answers = asyncio.run(go())
    assert names == {"python", "python_stateless", "reset_session", "cleanup_session"}
    assert [a["text"] if isinstance(a, dict) else a for a in answers[1:]] == ["42", "True"]
