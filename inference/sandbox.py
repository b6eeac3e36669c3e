"""The sandbox interface the loop needs: one session per sample, its cells run in order, state kept.

Two implementations, in `sandbox_service`: `AsyncSandboxClient` (the gRPC service, nsjail) and
`AsyncLocalSandbox` (in-process pool, the Kaggle path). A session that cannot be opened or that dies
raises `sandbox_service.SandboxError`; a cell's own failure is a result, not an exception.
"""

from __future__ import annotations

from typing import Protocol

from sandbox_service.result import ExecResult


class SandboxSession(Protocol):
    async def __aenter__(self) -> SandboxSession: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def run(self, code: str, *, timeout_ms: int | None = None) -> ExecResult:
        """Run one cell in the session's interpreter (what earlier cells defined is still there)."""
        ...


class Sandbox(Protocol):
    def session(self, *, seed: int | None = None) -> SandboxSession:
        """A fresh session (its interpreter's random state seeded with `seed`); enter it to open it."""
        ...
