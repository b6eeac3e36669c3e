"""Blocking versions of the async sandboxes: one private event loop thread runs their coroutines.

So there is one implementation of each client (async), and the blocking one cannot drift from it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)


class SyncSession:
    """A blocking session over an async one; a context manager."""

    def __init__(self, thread: LoopThread, session) -> None:
        self._thread = thread
        self._session = session

    def run(self, code: str, **options):
        return self._thread.run(self._session.run(code, **options))

    def close(self) -> None:
        self._thread.run(self._session.close())

    def __enter__(self) -> SyncSession:
        self._thread.run(self._session.__aenter__())
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SyncSandbox:
    """A blocking sandbox over an async one built (and used) on a private loop thread."""

    def __init__(self, make_async, name: str) -> None:
        self._thread = LoopThread(name)
        self.aio = self._thread.run(_build(make_async))

    def execute(self, code: str, **options):
        return self._thread.run(self.aio.execute(code, **options))

    def session(self, **options) -> SyncSession:
        return SyncSession(self._thread, self.aio.session(**options))

    def close(self) -> None:
        try:
            self._thread.run(self.aio.close())
        finally:
            self._thread.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


async def _build(make_async):
    sandbox = make_async()
    start = getattr(sandbox, "start", None)
    if start is not None:
        await start()
    return sandbox
