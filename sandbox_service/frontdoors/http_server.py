"""HTTP drop-ins for two sandboxes RL and evaluation pipelines already call, so their users change one URL:

- SandboxFusion's `POST /run_code` (verl's `sandbox_fusion_url`), Python only: request and response fields
  as the `sandbox-fusion` client (0.3.7) sends and reads them; a cell runs as a script would (no display
  of the last expression), stateless.
- NeMo-Skills' `POST /execute` (`generated_code`, `timeout`, `language`, ...), with a stateful session per
  `X-Session-ID` for `language: ipython`, and its `DELETE /sessions/{id}`, `GET /sessions`, `GET /health`.

Every request gets exactly one answer: a result (200), a refusal naming the field (400/413/422), or, when
full, 429 (the sandbox's queue) or 503 (this front door's in-flight cap, the session cap) with
`Retry-After`. Nothing waits in an unbounded queue. A client that disconnects mid-cell stops its cell.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from contextlib import suppress
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from ..client import SandboxError
from ..result import ExecResult
from .backend import Backend, Gate, Overloaded, Session, is_overload

MAX_BODY_BYTES = 1 << 20  # the sandbox takes 128 KiB of code; this bounds what is read to find that out
RETRY_AFTER_S = 1
NEMO_LANGUAGES_STATELESS = ("python", "python3", "pypy3")


class ClientGone(Exception):
    """The caller disconnected before its cell finished; the cell was stopped."""


# --- SandboxFusion ---------------------------------------------------------------------------------------

class RunCodeRequest(BaseModel):
    """`sandbox_fusion.RunCodeRequest`, plus `memory_limit_MB`, which verl's SandboxFusion tool adds."""

    model_config = ConfigDict(extra="ignore")
    code: str
    language: str
    compile_timeout: float = 10
    run_timeout: float = 10
    stdin: str | None = None
    files: dict[str, str | None] = {}
    fetch_files: list[str] = []
    memory_limit_MB: int | None = None  # the wire's spelling


def _return_code(result: ExecResult) -> int | None:
    """What `python script.py` would have exited with."""
    if result.status == "OK":
        return 0
    if result.status in ("ERROR", "MEMORY_EXCEEDED"):
        return 1
    if result.status == "TIMEOUT":
        return None
    code = re.search(r"exit code (-?\d+)", result.message)
    if code:
        return int(code.group(1))
    name = re.search(r"\b(SIG[A-Z]+)\b", result.message)
    if name and name.group(1) in signal.Signals.__members__:
        return -signal.Signals[name.group(1)].value
    return -signal.SIGKILL.value


def _stderr_with_error(result: ExecResult) -> str:
    stderr = result.stderr
    if result.error and result.error.get("traceback"):
        stderr += result.error["traceback"]
    elif result.error:
        stderr += f"{result.error.get('type')}: {result.error.get('message')}\n"
    if result.status in ("MEMORY_EXCEEDED", "OUTPUT_LIMIT_EXCEEDED", "CRASHED") and result.message:
        stderr += f"[{result.status}] {result.message}\n"
    return stderr


def run_code_response(result: ExecResult) -> dict[str, Any]:
    """`sandbox_fusion.RunCodeResponse`: one run, no compile step, no files."""
    run_status = "TimeLimitExceeded" if result.status == "TIMEOUT" else "Finished"
    return {
        "status": "Success" if result.status == "OK" else "Failed",
        "message": result.message,
        "compile_result": None,
        "run_result": {"status": run_status, "execution_time": result.wall_ms / 1000,
                       "cpu_time": result.cpu_ms / 1000, "return_code": _return_code(result),
                       "stdout": result.stdout, "stderr": _stderr_with_error(result)},
        "executor_pod_name": None,
        "files": {},
    }


def with_stdin(code: str, stdin: str | None) -> str:
    """The script with `stdin` as its standard input (the sandbox has none). Tracebacks count one more line."""
    if not stdin:
        return code
    return f"import io as _io, sys as _sys; _sys.stdin = _io.StringIO({stdin!r}); del _io, _sys\n{code}"


# --- NeMo-Skills -----------------------------------------------------------------------------------------

class ExecuteRequest(BaseModel):
    """What `nemo_skills.code_execution.sandbox.LocalSandbox._prepare_request` sends."""

    model_config = ConfigDict(extra="ignore")
    generated_code: str
    timeout: float
    language: str = "ipython"
    std_input: str = ""
    max_output_characters: int = 1000
    traceback_verbosity: str = "Plain"


def _cut(text: str, limit: int) -> str:
    return text[:limit] + "<output cut>" if len(text) > limit else text


def execute_response(result: ExecResult, request: ExecuteRequest, new_session: bool) -> dict[str, Any]:
    """NeMo-Skills' local sandbox answer: process_status completed/error/timeout, stdout, stderr."""
    stateful = request.language == "ipython"
    if result.status == "TIMEOUT":
        status = "timeout"
        stderr = result.stderr + f"Execution timed out after {request.timeout:g} seconds\n"
    else:
        # Its stateless runner reports any finished process as completed; its ipython one an exception as error.
        status = "completed" if result.status == "OK" or not stateful else "error"
        stderr = _stderr_with_error(result)
    stdout = result.output if stateful else result.stdout
    limit = max(request.max_output_characters, 0)
    body = {"process_status": status, "stdout": _cut(stdout, limit), "stderr": _cut(stderr, limit)}
    if stateful:
        body["new_session_created"] = new_session
    return body


def nemo_error(status_code: int, message: str, headers: dict | None = None) -> JSONResponse:
    """A refusal in NeMo-Skills' shape, so its client shows the message instead of failing to parse."""
    return JSONResponse({"process_status": "error", "stdout": "", "stderr": message + "\n", "error": message},
                        status_code=status_code, headers=headers)


# --- the app ----------------------------------------------------------------------------------------------

class HttpFrontDoor:
    def __init__(self, backend: Backend, *, max_in_flight: int = 256, max_sessions: int = 1024,
                 session_idle_s: float = 1800.0) -> None:
        self.backend = backend
        self.gate = Gate(max_in_flight)
        self.max_sessions = max_sessions
        self.session_idle_s = session_idle_s
        self.sessions: dict[str, Session] = {}
        self.app = self._build()

    async def reap_idle_sessions(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.session_idle_s))
            cutoff = time.monotonic() - self.session_idle_s
            for sid, session in list(self.sessions.items()):
                if session.last_used < cutoff and not session._lock.locked():
                    self.sessions.pop(sid, None)
                    await session.close()

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()
        self.sessions.clear()

    def _build(self) -> FastAPI:
        app = FastAPI(title="aimo sandbox: SandboxFusion and NeMo-Skills drop-ins", docs_url=None, redoc_url=None)

        @app.middleware("http")
        async def bounded_body(request: Request, call_next):
            length = request.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413)
            return await call_next(request)

        @app.exception_handler(RequestValidationError)
        async def invalid(request: Request, exc: RequestValidationError):
            problems = "; ".join(_problem(e) for e in exc.errors())
            if request.url.path == "/execute":
                return nemo_error(400, f"bad request: {problems}")
            return JSONResponse({"detail": problems}, status_code=422)  # as SandboxFusion's FastAPI answers

        @app.get("/health")
        async def health():
            return {"status": "healthy", "backend": self.backend.description, "sessions": len(self.sessions),
                    "in_flight": self.gate.in_flight, "max_in_flight": self.gate.limit}

        @app.post("/run_code")
        async def run_code(body: RunCodeRequest, request: Request):
            if body.language not in ("python", "python3"):
                return JSONResponse({"detail": f"language {body.language!r}: this sandbox runs python only"},
                                    status_code=400)
            if body.files or body.fetch_files:
                return JSONResponse({"detail": "files and fetch_files are not supported"}, status_code=400)
            limits = {"timeout_ms": round(body.run_timeout * 1000),
                      "memory_bytes": body.memory_limit_MB << 20 if body.memory_limit_MB else None}
            call = self.backend.execute(with_stdin(body.code, body.stdin), display="none", **limits)
            outcome = await self._answer(request, call, fusion_error)
            return outcome if isinstance(outcome, Response) else run_code_response(outcome)

        @app.post("/execute")
        async def execute(body: ExecuteRequest, request: Request):
            timeout_ms = round(body.timeout * 1000)
            if body.language in NEMO_LANGUAGES_STATELESS:
                call = self.backend.execute(with_stdin(body.generated_code, body.std_input), display="none",
                                            timeout_ms=timeout_ms)
                outcome = await self._answer(request, call, nemo_error)
                return outcome if isinstance(outcome, Response) else execute_response(outcome, body, False)
            if body.language != "ipython":
                return nemo_error(400, f"language {body.language!r}: this sandbox runs python and ipython only")
            sid = request.headers.get("x-session-id")
            if not sid:
                return nemo_error(400, "X-Session-ID header required for ipython sessions")
            session = self.sessions.get(sid)
            if session is None:
                if len(self.sessions) >= self.max_sessions:
                    return nemo_error(503, f"{self.max_sessions} sessions open; retry later",
                                      {"Retry-After": str(RETRY_AFTER_S)})
                session = self.sessions[sid] = self.backend.session()
            outcome = await self._answer(request, session.run(body.generated_code, timeout_ms=timeout_ms), nemo_error)
            if isinstance(outcome, Response):
                return outcome
            result, fresh = outcome
            return execute_response(result, body, fresh)

        @app.get("/sessions")
        async def list_sessions():
            return {"sessions": {sid: {"backend": "aimo-sandbox", "alive": s.open, "cells": s.cells}
                                 for sid, s in self.sessions.items()}, "backend": "aimo-sandbox"}

        @app.delete("/sessions/{sid}")
        async def delete_session(sid: str):
            session = self.sessions.pop(sid, None)
            if session is None:
                return JSONResponse({"error": f"session {sid} not found"}, status_code=404)
            await session.close()
            return {"message": f"session {sid} deleted"}

        return app

    async def _answer(self, request: Request, call, refusal):
        """The call's result, or the one refusal (a Response) its caller gets instead."""
        busy = {"Retry-After": str(RETRY_AFTER_S)}
        started = False
        try:
            with self.gate:
                started = True
                return await stop_if_disconnected(request, call)
        except Overloaded as exc:
            return refusal(503, f"busy: {exc}; retry after {RETRY_AFTER_S} s", busy)
        except SandboxError as exc:
            if is_overload(exc):
                return refusal(429 if exc.code == "RESOURCE_EXHAUSTED" else 503, f"busy: {exc.details}", busy)
            return refusal(400 if exc.code == "INVALID_ARGUMENT" else 502, exc.details or exc.code)
        except ClientGone:
            return Response(status_code=499)  # nobody reads it; the cell was stopped
        finally:
            if not started:
                call.close()  # the gate refused: never awaited


def _problem(error: dict) -> str:
    if error.get("type") == "json_invalid":
        return f"malformed JSON: {error.get('ctx', {}).get('error', error['msg'])}"
    return f"{'.'.join(str(p) for p in error['loc'][1:]) or 'body'}: {error['msg']}"


def fusion_error(status_code: int, message: str, headers: dict | None = None) -> JSONResponse:
    """A refusal in RunCodeResponse's shape (the sandbox-fusion client retries any non-200)."""
    return JSONResponse({"status": "SandboxError", "message": message, "compile_result": None,
                         "run_result": None, "executor_pod_name": None, "files": {}},
                        status_code=status_code, headers=headers)


async def stop_if_disconnected(request: Request, call):
    """Await `call` unless the client disconnects first; then cancel it (which stops the cell) and raise."""
    work = asyncio.ensure_future(call)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is stopping: so does the cell
        work.cancel()
        raise
    finally:
        watcher.cancel()
    if work.done():
        return work.result()
    work.cancel()
    with suppress(asyncio.CancelledError):
        await work
    raise ClientGone
