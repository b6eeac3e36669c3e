"""The sandbox in the protocols other agents already speak: MCP (stdio, streamable HTTP, and SSE for
vLLM's `--tool-server`), SandboxFusion's `POST /run_code` and NeMo-Skills' `POST /execute`.

Each front door forwards to one `Backend`: a sandbox server over gRPC, or an in-process `LocalSandbox`.

    python -m sandbox_service.frontdoors.mcp --sandbox 127.0.0.1:50071 --transport sse --port 8765
    python -m sandbox_service.frontdoors.http --sandbox 127.0.0.1:50071 --port 8080
"""
