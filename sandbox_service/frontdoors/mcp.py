"""python -m sandbox_service.frontdoors.mcp: the sandbox as an MCP server.

    --transport stdio   for agents that spawn their tools (Agents SDK MCPServerStdio, Claude Desktop...)
    --transport http    streamable HTTP at /mcp and SSE at /sse; `vllm serve --tool-server HOST:PORT` uses /sse
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from .backend import add_backend_arguments, backend_from_args
from .mcp_server import MCPFrontDoor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox_service.frontdoors.mcp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_backend_arguments(p)
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1", help="http: interface to listen on")
    p.add_argument("--port", type=int, default=8765, help="http: port to listen on")
    p.add_argument("--max-in-flight", type=int, default=256, help="calls at once; beyond, a 'busy' tool error")
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    backend = await backend_from_args(args)
    try:
        door = MCPFrontDoor(backend, max_in_flight=args.max_in_flight)
        if args.transport == "stdio":
            await door.run_stdio()
            return
        import uvicorn

        config = uvicorn.Config(door.http_app(args.host), host=args.host, port=args.port,
                                log_level=args.log_level.lower(), timeout_graceful_shutdown=5)
        await uvicorn.Server(config).serve()
    finally:
        await backend.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # stdout is the protocol on stdio: every log line goes to stderr.
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
