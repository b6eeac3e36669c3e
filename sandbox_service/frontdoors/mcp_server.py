"""The sandbox as an MCP server: a stateful `python` tool (the one gpt-oss calls) bound to the MCP
session, a stateless `python_stateless`, `reset_session`, and `cleanup_session` (vLLM calls it when its
request ends).

Names follow vLLM's tool-server client (`vllm/entrypoints/mcp/tool_server.py`, `.../responses/context.py`):
it keys the namespace by the server's name, so the server is named "python"; it calls the tool "python"
with `{"code": ...}` and reads `content[0].text`; it opens one MCP session per Responses request and calls
`cleanup_session` at its end. Every tool carries `_meta.include_in_prompt = False`, so vLLM renders the
namespace from the server's instructions alone, as gpt-oss was trained to see its python tool.

Protocol era: a python session lives as long as an MCP connection, and the 2026-07-28 protocol has none
(every request stands alone). So this server speaks the 2025 handshake era only: a request carrying the
2026 envelope is refused with INVALID_REQUEST, and a `mode="auto"` client (the OpenAI Agents SDK's, for
one) falls back to `initialize`. Without this the Agents SDK negotiated the 2026 era and every `python`
call ran in a fresh interpreter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.runner import serve_loop
from mcp.server.sse import SseServerTransport
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST, PROTOCOL_VERSION_META_KEY, CallToolResult, TextContent, ToolAnnotations
from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from ..client import SandboxError
from .backend import Backend, Gate, Overloaded, Session, is_overload
from .notebook import CellOutcome, notebook_text, outcome

SERVER_NAME = "python"  # vLLM's namespace for gpt-oss's built-in python tool
SESSION_KEY = "aimo.sandbox.session"
HIDDEN = {"include_in_prompt": False}

INSTRUCTIONS = """\
Use this tool to execute Python code in your chain of thought. The code is not shown to the user.
When you send a message containing Python code to python, it runs in a stateful Jupyter-like session \
that lasts for this conversation: variables, imports and functions defined in one call are there in the \
next. python answers with what the cell printed and the value of its last expression, or with the \
error's traceback. Each call has a time limit ({timeout_s:g} s by default) and a memory limit; a cell \
that fails or times out leaves the state as it was before it. sympy, numpy and mpmath are installed; \
there is no internet access."""

CODE = Annotated[str, Field(description="Python source of one cell")]
TIMEOUT = Annotated[int | None, Field(description="this call's wall-clock limit in ms (capped by the server)")]


def _connection(ctx: Context):
    """The MCP connection this call arrived on (one stdio process, one SSE stream, one streamable-HTTP
    session): its `state` holds our session and its `exit_stack` closes it when the connection ends.
    mcp 2.3 documents both for exactly this, but its tool `Context` does not expose the connection yet,
    so we reach it through the request's session; the tests that close a connection fail if this moves."""
    return ctx.request_context.session._connection


async def refuse_the_connectionless_era(ctx, call_next):
    """Middleware: a request in the 2026-07-28 envelope gets INVALID_REQUEST, so the client falls back to
    the handshake (see the module's docstring)."""
    meta = ctx.params.get("_meta") if isinstance(ctx.params, Mapping) else None
    if ctx.request_id is not None and ctx.method != "initialize" and isinstance(meta, Mapping) \
            and PROTOCOL_VERSION_META_KEY in meta:
        raise MCPError(code=INVALID_REQUEST, message="this server speaks the 2025 handshake protocol era only: "
                       "its python sessions last as long as a connection; connect with initialize")
    return await call_next(ctx)


def local_only(host: str) -> TransportSecuritySettings | None:
    """DNS-rebinding protection on loopback, as the SDK's own apps set it."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])


class MCPFrontDoor:
    """The tools over one `Backend`; `server` is the MCP server to run on any transport."""

    def __init__(self, backend: Backend, *, max_in_flight: int = 256, default_timeout_ms: int = 10_000) -> None:
        self.backend = backend
        self.gate = Gate(max_in_flight)
        self.sessions_opened = 0
        self.server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS.format(timeout_s=default_timeout_ms / 1000),
                                version="1", middleware=[refuse_the_connectionless_era],
                                log_level="WARNING")
        self._register()

    def session_of(self, ctx: Context) -> Session:
        connection = _connection(ctx)
        session = connection.state.get(SESSION_KEY)
        if session is None:
            session = self.backend.session()
            connection.state[SESSION_KEY] = session
            connection.exit_stack.push_async_callback(session.close)
            self.sessions_opened += 1
        return session

    async def _guarded(self, call):
        started = False
        try:
            with self.gate:
                started = True
                return await call
        except Overloaded as exc:
            raise ToolError(f"busy: {exc}; retry in {exc.retry_after_s} s") from None
        except SandboxError as exc:
            if is_overload(exc):
                raise ToolError(f"busy: {exc.details}; retry in 1 s") from None
            raise ToolError(exc.details or exc.code) from None
        finally:
            if not started:
                call.close()  # the gate refused: never awaited

    def _register(self) -> None:
        server = self.server

        @server.tool(name="python", title="Python (stateful session)", meta=HIDDEN,
                     description="Run a cell in this conversation's Python session: state persists across "
                                 "calls until reset_session or the end of the MCP session. Returns what the "
                                 "cell printed, the value of its last expression and any traceback.",
                     annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                                 open_world_hint=False))
        async def python(code: CODE, ctx: Context, timeout_ms: TIMEOUT = None) -> Annotated[CallToolResult,
                                                                                          CellOutcome]:
            session = self.session_of(ctx)
            result, fresh = await self._guarded(session.run(code, timeout_ms=timeout_ms))
            return _tool_result(result, fresh, restarted=fresh and session.restarts > 0)

        @server.tool(name="python_stateless", title="Python (fresh interpreter)", meta=HIDDEN,
                     description="Run code in a fresh interpreter that is discarded afterwards (nothing persists). "
                                 "Optional limits are capped by the server's maxima.",
                     annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True,
                                                 open_world_hint=False))
        async def python_stateless(
            code: CODE,
            timeout_ms: TIMEOUT = None,
            memory_bytes: Annotated[int | None, Field(description="address-space limit in bytes")] = None,
            max_output_bytes: Annotated[int | None, Field(description="bytes kept of stdout and of stderr")] = None,
            seed: Annotated[int | None, Field(description="seeds random and numpy; default 0")] = None,
        ) -> Annotated[CallToolResult, CellOutcome]:
            result = await self._guarded(self.backend.execute(
                code, seed=seed, timeout_ms=timeout_ms, memory_bytes=memory_bytes,
                max_output_bytes=max_output_bytes))
            return _tool_result(result)

        @server.tool(name="reset_session", title="Reset the Python session", meta=HIDDEN,
                     description="Forget every variable of this conversation's Python session; the next python "
                                 "call starts from a fresh interpreter.")
        async def reset_session(ctx: Context) -> str:
            await self.session_of(ctx).reset()
            return "the session was reset: the next cell starts from a fresh interpreter"

        @server.tool(name="cleanup_session", title="Close the Python session", meta=HIDDEN,
                     description="Close this conversation's Python session now (it also closes when the MCP "
                                 "session ends).")
        async def cleanup_session(ctx: Context) -> str:
            await self.session_of(ctx).reset()
            return "the session was closed"

    async def _serve(self, read, write) -> None:
        """One connection in the handshake era only. `MCPServer.run*` would serve the 2026 era too; mcp 2.3
        has no public switch for that, so this drives its low-level server with the SDK's own loop."""
        lowlevel = self.server._lowlevel_server
        async with lowlevel.lifespan(lowlevel) as state:
            await serve_loop(lowlevel, read, write, lifespan_state=state,
                             init_options=lowlevel.create_initialization_options())

    async def run_stdio(self) -> None:
        async with stdio_server() as (read, write):
            await self._serve(read, write)

    def http_app(self, host: str = "127.0.0.1") -> Starlette:
        """Both HTTP transports on one app: streamable HTTP at /mcp, and SSE at /sse (messages at /messages/)."""
        sse = SseServerTransport("/messages/", security_settings=local_only(host))

        async def handle_sse(request: Request) -> Response:
            async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
                await self._serve(read, write)
            return Response()

        # Plain JSON answers to each POST: a tool call has nothing to stream, and an SSE stream per call
        # cost more than the cell (bench/frontdoors.py).
        streamable = self.server.streamable_http_app(host=host, json_response=True)
        routes = [Route("/sse", handle_sse, methods=["GET"]), Mount("/messages/", app=sse.handle_post_message),
                  *streamable.routes]
        return Starlette(routes=routes, lifespan=streamable.router.lifespan_context)


def _tool_result(result, new_session: bool = False, restarted: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=notebook_text(result, new_session, restarted))],
                          structured_content=dict(outcome(result, new_session)))
