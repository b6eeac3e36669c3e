"""vLLM's own MCP tool-server client (the class `vllm serve --tool-server HOST:PORT` builds) against the SSE
endpoint, driving the python tool exactly as a gpt-oss Responses request does: vLLM's HarmonyContext opens
the request's tool session, routes the model's messages to `python` to it, and cleans up at the end. Only
the model is missing: its messages to the python recipient are written here."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from .conftest import wait_for_metric

pytestmark = pytest.mark.nsjail

vllm_tool_server = pytest.importorskip("vllm.entrypoints.mcp.tool_server")


def model_says(code: str):
    """The message gpt-oss emits when it calls its built-in python tool."""
    from openai_harmony import Message, Role

    return Message.from_role_and_content(Role.ASSISTANT, code).with_channel("analysis").with_recipient("python")


async def one_request(url: str, request_id: str, cells: list[str]) -> list[str]:
    from vllm.entrypoints.openai.responses.context import HarmonyContext
    from vllm.parser.harmony import HarmonyParser

    tool_server = vllm_tool_server.MCPToolServer()
    await tool_server.add_tool_server(url.removeprefix("http://"))
    context = HarmonyContext(messages=[], available_tools=["python"], function_tool_names=frozenset(),
                             response_parser=HarmonyParser(None))
    answers = []
    async with AsyncExitStack() as exit_stack:  # as serving.py holds it for one Responses request
        await context.init_tool_sessions(tool_server, exit_stack, request_id, {})
        for code in cells:
            context.messages.append(model_says(code))
            assert context.need_builtin_tool_call()
            (reply,) = await context.call_tool()
            assert reply.author.name == "python" and reply.recipient == "assistant"
            answers.append(reply.content[0].text)
            context.messages.append(reply)
    return answers


def test_vllm_registers_the_python_namespace(mcp_door):
    async def go():
        tool_server = vllm_tool_server.MCPToolServer()
        await tool_server.add_tool_server(mcp_door.url.removeprefix("http://"))
        return tool_server

    tool_server = asyncio.run(go())
    assert tool_server.has_tool("python")  # so a request with {"type": "code_interpreter"} gets it
    namespace = tool_server.get_tool_description("python")
    assert namespace.name == "python" and "stateful" in namespace.description
    assert namespace.tools == []  # every tool is include_in_prompt=False: gpt-oss sees the namespace text only


def test_a_gpt_oss_request_keeps_state_and_requests_are_isolated(mcp_door, nsjail_server):
    baseline = wait_for_metric(nsjail_server, "sandbox_sessions_open", 0)

    async def go():
        return await asyncio.gather(
            one_request(mcp_door.url, "resp_a", ["n = 10", "import sympy\nsympy.factorint(n**6 - 1)", "print(n)"]),
            one_request(mcp_door.url, "resp_b", ["n", "1/0"]),
        )

    first, second = asyncio.run(go())
    assert first[1] == "{3: 3, 7: 1, 11: 1, 13: 1, 37: 1}" and first[2] == "10"
    assert "NameError" in second[0]  # request b never sees request a's n
    assert "ZeroDivisionError" in second[1]
    # cleanup_session (and the end of each SSE session) closed both sandbox sessions.
    assert wait_for_metric(nsjail_server, "sandbox_sessions_open", baseline) == baseline
