"""The sandbox behind a front door: a gRPC sandbox server or an in-process `LocalSandbox`, with the
limits a caller may ask for capped by the sandbox's maxima, and stateful sessions that survive their
caller's cancellation only by being closed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, fields, replace

from ..client import AsyncSandboxClient, SandboxError
from ..limits import MAX_LIMITS, InvalidRequest, Limits, check_code
from ..result import ExecResult

DEFAULT_SANDBOX = "127.0.0.1:50071"


class Overloaded(RuntimeError):
    """Too many calls at once for this front door; the caller should retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def is_overload(exc: SandboxError) -> bool:
    """The sandbox refused for capacity (a full queue, too many sessions): worth a retry later."""
    return exc.code in ("RESOURCE_EXHAUSTED", "UNAVAILABLE")


class Gate:
    """At most `limit` calls in flight; the next one is refused at once (no queue that could hang)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def __enter__(self) -> Gate:
        if self.in_flight >= self.limit:
            raise Overloaded(f"{self.limit} calls already in flight")
        self.in_flight += 1
        return self

    def __exit__(self, *exc) -> None:
        self.in_flight -= 1


def capped(requested: dict[str, int | None], maxima: Limits) -> dict[str, int]:
    """The limits a caller set (unset and non-positive ones dropped), each lowered to the maximum."""
    out = {}
    for name, value in requested.items():
        if value is not None and value > 0:
            out[name] = min(int(value), getattr(maxima, name))
    return out


@dataclass
class Backend:
    """One sandbox (gRPC client or LocalSandbox) and the maxima a front door caps requests to."""

    sandbox: object  # AsyncSandboxClient or AsyncLocalSandbox: the same execute()/session() calls
    max_limits: Limits
    description: str

    @classmethod
    async def connect(cls, target: str = DEFAULT_SANDBOX, wait_s: float = 60.0) -> Backend:
        """A sandbox server over gRPC; its maxima come from its GetInfo (waits for it to answer)."""
        client = AsyncSandboxClient(target)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                info = await client.info()
                break
            except Exception:
                if time.monotonic() > deadline:
                    await client.close()
                    raise
                await asyncio.sleep(0.5)
        maxima = replace(MAX_LIMITS, **{f.name: getattr(info.max_limits, f.name) for f in fields(Limits)
                                        if info.max_limits.HasField(f.name)})
        return cls(client, maxima, f"sandbox server at {target} ({info.isolation})")

    @classmethod
    async def local(cls, **pool_overrides) -> Backend:
        from ..local import AsyncLocalSandbox

        sandbox = await AsyncLocalSandbox(**pool_overrides).start()
        return cls(sandbox, sandbox.pool.settings.max_limits, f"in-process sandbox ({sandbox.isolation})")

    async def execute(self, code: str, *, seed: int | None = None, display: str = "pretty",
                      **limits: int | None) -> ExecResult:
        return await self.sandbox.execute(code, seed=seed, display=display, **capped(limits, self.max_limits))

    def session(self, **limits: int | None) -> Session:
        return Session(self, capped(limits, self.max_limits))

    async def close(self) -> None:
        await self.sandbox.close()


class Session:
    """A stateful interpreter opened on first use. Cells run one at a time, in order. A cell whose caller
    goes away (a cancelled request, a closed connection) closes the interpreter with it, so that cell is
    stopped and no late answer can be taken for the next cell's; the next cell starts a fresh one and says so.
    """

    def __init__(self, backend: Backend, limits: dict[str, int]) -> None:
        self.backend = backend
        self.limits = limits
        self._inner = None
        self._lock = asyncio.Lock()
        self.restarts = 0  # interpreters opened after the first
        self.cells = 0
        self.last_used = time.monotonic()

    @property
    def open(self) -> bool:
        return self._inner is not None

    async def run(self, code: str, *, timeout_ms: int | None = None,
                  display: str = "pretty") -> tuple[ExecResult, bool]:
        """The cell's result, and whether this cell started a new interpreter (the state before it is gone)."""
        try:
            # Checked here: the sandbox would end the whole session's stream over one bad cell.
            check_code(code)
        except InvalidRequest as exc:
            raise SandboxError("INVALID_ARGUMENT", f"cell.{exc}") from None
        async with self._lock:
            self.last_used = time.monotonic()
            fresh = self._inner is None
            if fresh:
                if self.cells:
                    self.restarts += 1
                inner = self.backend.sandbox.session(**self.limits)
                await inner.__aenter__()
                self._inner = inner
            per_cell = capped({"timeout_ms": timeout_ms}, self.backend.max_limits)
            try:
                result = await self._inner.run(code, display=display, **per_cell)
            except BaseException:
                await self._discard()
                raise
            self.cells += 1
            if result.status == "REJECTED":  # the interpreter was lost; the next cell gets a new one
                await self._discard()
            self.last_used = time.monotonic()
            return result, fresh

    async def reset(self) -> None:
        """Forget every variable: the next cell runs in a new interpreter."""
        async with self._lock:
            await self._discard()
            self.cells = 0

    async def _discard(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            await asyncio.shield(inner.close())

    async def close(self) -> None:
        await self._discard()


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--sandbox", default=DEFAULT_SANDBOX, metavar="HOST:PORT",
                       help="the sandbox server (gRPC) to forward to (default %(default)s)")
    group.add_argument("--local", choices=["rlimit", "nsjail", "docker", "auto"],
                       help="run the sandbox in this process instead, in this isolation mode")
    parser.add_argument("--pool-size", type=int, default=2, help="with --local: warm zygotes")


async def backend_from_args(args: argparse.Namespace) -> Backend:
    if args.local:
        return await Backend.local(isolation=args.local, pool_size=args.pool_size)
    return await Backend.connect(args.sandbox)
