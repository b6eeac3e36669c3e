"""The sandbox in the protocols other agents already speak: MCP (stdio, streamable HTTP, and SSE for
vLLM's `--tool-server`), SandboxFusion's `POST /run_code` and NeMo-Skills' `POST /execute`.

Each front door forwards to one `Backend`: a sandbox server over gRPC, or an in-process `LocalSandbox`.

    python -m sandbox_service.frontdoors.mcp --sandbox 127.0.0.1:50071 --transport sse --port 8765
    python -m sandbox_service.frontdoors.http --sandbox 127.0.0.1:50071 --port 8080
"""

DOORS = ("mcp", "http")


def serve_door(door: str, argv: list[str] | None = None) -> None:
    """`aimo sandbox mcp|http ARGS`: run one front door until stopped."""
    if door == "mcp":
        from .mcp import main
    elif door == "http":
        from .http import main
    else:
        raise ValueError(f"front door must be one of {DOORS}, not {door!r}")
    main(argv)
