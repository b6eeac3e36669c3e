"""The sandbox in this process, no server: the same calls as the gRPC clients, over the same pool.

For Kaggle (no namespaces, no separate service): `LocalSandbox()` runs `rlimit` zygotes by default.

    with LocalSandbox(pool_size=2) as sandbox:
        with sandbox.session(seed=0) as s:
            print(s.run("print(sum(range(10**6)))").stdout)
"""

from __future__ import annotations

from dataclasses import replace

from .bridge import SyncSandbox
from .client import SandboxError
from .limits import InvalidRequest, check_code, resolve
from .pool import Pool, PoolExhausted, PoolSession, PoolSettings
from .result import ExecResult


def _checked(code: str, requested: dict, base, maxima):
    try:
        check_code(code)
        return resolve(requested, base, maxima)
    except InvalidRequest as exc:
        raise SandboxError("INVALID_ARGUMENT", str(exc)) from None


class AsyncLocalSandbox:
    def __init__(self, settings: PoolSettings | None = None, **overrides) -> None:
        settings = settings or PoolSettings(isolation="rlimit")
        self.pool = Pool(replace(settings, **overrides))

    async def start(self) -> AsyncLocalSandbox:
        await self.pool.start()
        return self

    @property
    def isolation(self) -> str:
        return self.pool.isolation

    async def execute(self, code: str, *, seed: int | None = None, display: str = "pretty", **limits) -> ExecResult:
        settings = self.pool.settings
        resolved = _checked(code, limits, settings.default_limits, settings.max_limits)
        try:
            return ExecResult.from_dict(await self.pool.execute(code, resolved, seed or 0, display))
        except PoolExhausted as exc:
            raise SandboxError("RESOURCE_EXHAUSTED", str(exc)) from None

    def session(self, *, seed: int | None = None, **limits) -> AsyncLocalSession:
        return AsyncLocalSession(self.pool, seed or 0, limits)

    async def close(self) -> None:
        await self.pool.stop()

    async def __aenter__(self) -> AsyncLocalSandbox:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()


class AsyncLocalSession:
    def __init__(self, pool: Pool, seed: int, limits: dict) -> None:
        self._pool = pool
        self._seed = seed
        self._limits = limits
        self._session: PoolSession | None = None

    async def __aenter__(self) -> AsyncLocalSession:
        settings = self._pool.settings
        try:
            limits = resolve(self._limits, settings.default_limits, settings.max_limits)
            self._session = self._pool.open_session(limits, self._seed)
        except InvalidRequest as exc:
            raise SandboxError("INVALID_ARGUMENT", str(exc)) from None
        except PoolExhausted as exc:
            raise SandboxError("RESOURCE_EXHAUSTED", str(exc)) from None
        return self

    async def run(self, code: str, *, timeout_ms: int | None = None, max_output_bytes: int | None = None,
                  display: str = "pretty") -> ExecResult:
        if self._session is None:
            await self.__aenter__()
        per_cell = {k: v for k, v in (("timeout_ms", timeout_ms), ("max_output_bytes", max_output_bytes)) if v}
        limits = _checked(code, per_cell, self._session.limits, self._pool.settings.max_limits)
        try:
            result = await self._session.run(code, limits.timeout_ms, limits.max_output_bytes, display)
        except PoolExhausted as exc:
            raise SandboxError("RESOURCE_EXHAUSTED", str(exc)) from None
        return ExecResult.from_dict(result)

    async def close(self) -> None:
        if self._session is not None:
            self._session.close()

    async def __aexit__(self, *exc) -> None:
        await self.close()


class LocalSandbox(SyncSandbox):
    """Blocking in-process sandbox; `LocalSandbox(pool_size=2, isolation="rlimit")`."""

    def __init__(self, settings: PoolSettings | None = None, **overrides) -> None:
        super().__init__(lambda: AsyncLocalSandbox(settings, **overrides), name="local-sandbox")

    @property
    def isolation(self) -> str:
        return self.aio.isolation
