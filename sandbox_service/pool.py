"""A pool of warm zygotes: picks the isolation mode, admits work, routes it, replaces the dead.

This is the whole sandbox minus the transport: the gRPC server and `LocalSandbox` both drive it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field

from . import metrics
from .docker_isolation import DOCKER_DETAIL, DockerSettings, docker_launch
from .isolation import SANDBOX_ENV, Launch, default_jail_python, nsjail_launch, rlimit_launch, rlimit_python
from .limits import DEFAULT_LIMITS, MAX_LIMITS, Limits
from .zygote_process import ZygoteError, ZygoteProcess

log = logging.getLogger("sandbox.pool")

DEFAULT_PRELOAD = ("math", "itertools", "fractions", "collections", "random", "sympy", "mpmath", "numpy")
DEFAULT_PRELUDE = """\
import math, itertools, collections, fractions, random
import sympy, sympy as sp
import numpy, numpy as np
import mpmath
from mpmath import mp  # the context, so that mp.dps = 50 does what it says
"""
ISOLATION_MODES = ("auto", "nsjail", "docker", "rlimit")
AUTO_ORDER = ("nsjail", "docker", "rlimit")  # auto: the first that starts


@dataclass
class PoolSettings:
    pool_size: int = 2
    isolation: str = "auto"
    jail_python: str = field(default_factory=default_jail_python)
    python: str = field(default_factory=rlimit_python)  # runs the zygotes in rlimit mode
    nsjail_path: str | None = None
    docker: DockerSettings = field(default_factory=DockerSettings)  # the docker mode's image and caps
    default_limits: Limits = DEFAULT_LIMITS
    max_limits: Limits = MAX_LIMITS
    max_sessions: int = 1024
    max_running: int = 64  # cells executing at once, over all zygotes
    max_queue: int = 1024  # cells waiting for a slot; beyond this, RESOURCE_EXHAUSTED
    spares: int = 2  # warm idle sessions kept per zygote for stateless calls and new sessions
    tmpfs_mb: int = 256
    preload: tuple[str, ...] = DEFAULT_PRELOAD
    prelude: str = DEFAULT_PRELUDE


class PoolExhausted(RuntimeError):
    """No capacity left: too many sessions, or too many cells waiting."""


class Pool:
    def __init__(self, settings: PoolSettings | None = None) -> None:
        self.settings = settings or PoolSettings()
        if self.settings.isolation not in ISOLATION_MODES:
            raise ValueError(f"isolation must be one of {ISOLATION_MODES}, not {self.settings.isolation!r}")
        self.isolation = ""
        self.isolation_detail = ""
        self.zygotes: list[ZygoteProcess | None] = []
        self.sessions_open = 0
        self._running = asyncio.Semaphore(self.settings.max_running)
        self._waiting = 0
        self._supervisors: list[asyncio.Task] = []
        self._closing = False
        self._sids = itertools.count(1)

    # -- start and stop -----------------------------------------------------------------------------

    async def start(self) -> None:
        requested = self.settings.isolation
        candidates = AUTO_ORDER if requested == "auto" else (requested,)
        reasons: list[str] = []
        for mode in candidates:
            try:
                first = await self._start_zygote(0, mode)
                break
            except Exception as exc:  # any failure to start means: not this mode
                if mode == candidates[-1]:
                    raise ZygoteError(f"refusing to start in {mode} mode: {mode} unavailable: {exc}") from exc
                reasons.append(f"{mode} unavailable: {exc}")
                log.warning("%s; trying %s mode", reasons[-1], candidates[candidates.index(mode) + 1])
        detail = MODE_DETAILS[mode]
        if reasons:
            detail = f"{mode} (auto fallback; {'; '.join(reasons)}). {detail}"
        elif requested == "rlimit":
            detail = f"rlimit (requested). {detail}"
        if mode == "rlimit" and not first.info.get("privileged"):
            detail += " Not root: sessions share one uid and cannot be kept from each other."
        self.isolation_detail = detail
        self.isolation = mode
        log.info("isolation: %s", self.isolation_detail)
        self.zygotes = [first] + await asyncio.gather(
            *(self._start_zygote(i, mode) for i in range(1, self.settings.pool_size))
        )
        self._supervisors = [asyncio.create_task(self._supervise(i)) for i in range(len(self.zygotes))]

    def _launch(self, index: int, mode: str) -> Launch:
        if mode == "nsjail":
            return nsjail_launch(index, self.settings.jail_python, self.settings.nsjail_path, self.settings.tmpfs_mb)
        if mode == "docker":
            return docker_launch(index, self.settings.docker, self.settings.tmpfs_mb)
        return rlimit_launch(index, self.settings.python)

    async def _start_zygote(self, index: int, mode: str) -> ZygoteProcess:
        launch = self._launch(index, mode)
        config = {
            "preload": list(self.settings.preload),
            "prelude": self.settings.prelude,
            "scratch": launch.scratch,
            "uid_base": launch.uid_base,
            "uid_count": launch.uid_count,
            "spares": self.settings.spares,
            "default_limits": self.settings.default_limits.for_zygote(),
            "env": SANDBOX_ENV,
            "session_namespaces": list(launch.session_namespaces),
        }
        zygote = ZygoteProcess(index, launch, config)
        try:
            await zygote.start()
        except BaseException:
            launch.cleanup()
            raise
        return zygote

    async def _supervise(self, index: int) -> None:
        """Replace zygote `index` whenever it dies, backing off while it keeps failing."""
        delay = 0.1
        while not self._closing:
            zygote = self.zygotes[index]
            if zygote is not None:
                await zygote.watch()
                await zygote.wait_closed()
                if self._closing:
                    return
                metrics.ZYGOTES_REPLACED.inc()
                log.warning("replacing zygote %d (%s)", index, zygote.death_reason)
                self.zygotes[index] = None
            try:
                self.zygotes[index] = await self._start_zygote(index, self.isolation)
                delay = 0.1
            except Exception as exc:  # noqa: BLE001
                log.error("zygote %d failed to start: %s; retrying in %.1fs", index, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def stop(self) -> None:
        self._closing = True
        for task in self._supervisors:
            task.cancel()
        for zygote in self.zygotes:
            if zygote is not None:
                zygote.kill("pool stopped", expected=True)
        await asyncio.gather(*(z.wait_closed() for z in self.zygotes if z is not None), return_exceptions=True)

    # -- routing ------------------------------------------------------------------------------------

    @property
    def ready(self) -> list[ZygoteProcess]:
        return [z for z in self.zygotes if z is not None and z.alive]

    def _pick(self) -> ZygoteProcess:
        ready = self.ready
        if not ready:
            raise PoolExhausted("no sandbox process is ready (all are restarting)")
        return min(ready, key=lambda z: (z.busy, len(z.sessions)))

    async def _admit(self):
        if self._waiting >= self.settings.max_queue and self._running.locked():
            raise PoolExhausted(f"{self.settings.max_queue} cells already waiting")
        self._waiting += 1
        try:
            await self._running.acquire()
        finally:
            self._waiting -= 1

    async def execute(self, code: str, limits: Limits, seed: int = 0, display: str = "pretty") -> dict:
        await self._admit()
        try:
            zygote = self._pick()
            message = {"op": "exec", "code": code, "limits": limits.for_zygote(), "seed": seed, "display": display,
                       "max_output_bytes": limits.max_output_bytes, "cell_index": 1}
            return await zygote.call(message, limits.timeout_ms)
        finally:
            self._running.release()

    def open_session(self, limits: Limits, seed: int = 0) -> PoolSession:
        if self.sessions_open >= self.settings.max_sessions:
            raise PoolExhausted(f"{self.settings.max_sessions} sessions already open")
        zygote = self._pick()
        sid = f"s{next(self._sids)}"
        zygote.open_session(sid, limits.for_zygote(), seed)
        self.sessions_open += 1
        return PoolSession(self, zygote, sid, limits)


class PoolSession:
    """One stateful interpreter, bound to the zygote that holds it."""

    def __init__(self, pool: Pool, zygote: ZygoteProcess, sid: str, limits: Limits) -> None:
        self.pool = pool
        self.zygote = zygote
        self.sid = sid
        self.limits = limits
        self.cells = 0
        self.lost = ""
        self.closed = False

    async def run(self, code: str, timeout_ms: int | None = None, max_output_bytes: int | None = None,
                  display: str = "pretty") -> dict:
        self.cells += 1
        if self.lost:
            return {"status": "REJECTED", "message": f"session lost: {self.lost}; open a new session",
                    "cell_index": self.cells}
        await self.pool._admit()
        try:
            message = {"op": "run", "sid": self.sid, "code": code, "display": display, "cell_index": self.cells,
                       "max_output_bytes": max_output_bytes or self.limits.max_output_bytes}
            result = await self.zygote.call(message, timeout_ms or self.limits.timeout_ms)
        finally:
            self.pool._running.release()
        if not self.zygote.alive:
            self.lost = f"its sandbox process died ({self.zygote.death_reason})"
        result["cell_index"] = self.cells
        return result

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.sessions_open -= 1
            self.zygote.close_session(self.sid)


NSJAIL_DETAIL = (
    "nsjail: each zygote in its own user, pid, mount, net, ipc and uts namespaces; no network; read-only "
    "interpreter, private size-capped /tmp; seccomp deny-list; each session its own uid with rlimits."
)
RLIMIT_DETAIL = (
    "Plain subprocesses with rlimits and process-group kills: limits hold, but cells see the host's "
    "filesystem and network. Use only where namespaces are unavailable (Kaggle)."
)
MODE_DETAILS = {"nsjail": NSJAIL_DETAIL, "docker": DOCKER_DETAIL, "rlimit": RLIMIT_DETAIL}
