"""python -m sandbox_service.frontdoors.http: SandboxFusion's POST /run_code and NeMo-Skills' POST /execute
in front of the sandbox, so verl or NeMo-Skills change one URL.

    verl:        sandbox_fusion_url: http://HOST:PORT/run_code
    NeMo-Skills: NEMO_SKILLS_SANDBOX_HOST=HOST NEMO_SKILLS_SANDBOX_PORT=PORT
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from .backend import add_backend_arguments, backend_from_args
from .http_server import HttpFrontDoor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox_service.frontdoors.http", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_backend_arguments(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="SandboxFusion's default port")
    p.add_argument("--max-in-flight", type=int, default=256, help="requests at once; beyond, 503 + Retry-After")
    p.add_argument("--max-sessions", type=int, default=1024, help="X-Session-ID sessions; beyond, 503")
    p.add_argument("--session-idle-s", type=float, default=1800.0, help="close a session idle this long")
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    import uvicorn

    backend = await backend_from_args(args)
    door = HttpFrontDoor(backend, max_in_flight=args.max_in_flight, max_sessions=args.max_sessions,
                         session_idle_s=args.session_idle_s)
    reaper = asyncio.create_task(door.reap_idle_sessions())
    try:
        config = uvicorn.Config(door.app, host=args.host, port=args.port, log_level=args.log_level.lower(),
                                timeout_graceful_shutdown=5)
        await uvicorn.Server(config).serve()
    finally:
        reaper.cancel()
        await door.close()
        await backend.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
