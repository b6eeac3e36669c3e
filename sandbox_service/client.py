"""Clients for the sandbox service: `AsyncSandboxClient` (asyncio) and `SandboxClient` (blocking).

    with SandboxClient("127.0.0.1:50071") as sandbox:
        print(sandbox.execute("print(2**100)").stdout)
        with sandbox.session(seed=1) as s:
            s.run("x = 41")
            print(s.run("x + 1").display)   # 42

The target may name several replicas (see `targets.py`): `ipv4:10.0.0.1:50071,10.0.0.2:50071`,
`10.0.0.1:50071,10.0.0.2:50071`, or `dns:///sandbox:50071` (every address the name resolves to). gRPC's
own `round_robin` balancer spreads calls over them and its health checker keeps calls off a replica
that answers NOT_SERVING or is gone. A session is one stream, so it stays on the replica that took it.
"""

from __future__ import annotations

import asyncio

import grpc

from aimo.sandbox.v1 import sandbox_pb2 as pb
from aimo.sandbox.v1 import sandbox_pb2_grpc as pb_grpc

from .bridge import SyncSandbox
from .convert import DISPLAY_VALUES, result_from_message
from .limits import MAX_LIMITS
from .result import ExecResult
from .targets import channel_options, normalize_target, warn_about_dead_replicas

MARGIN_S = 5.0  # beyond a cell's own limit, before the client gives up on the server


class SandboxError(RuntimeError):
    """The call was refused or failed; `code` is the gRPC status name (e.g. "INVALID_ARGUMENT")."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.details = message


def _call_timeout(limits: dict, fallback_ms: int | None = None) -> float:
    timeout_ms = limits.get("timeout_ms") or fallback_ms or MAX_LIMITS.timeout_ms
    return timeout_ms / 1000 + MARGIN_S


def _error(exc: grpc.aio.AioRpcError) -> SandboxError:
    return SandboxError(exc.code().name, exc.details() or "")


class AsyncSandboxClient:
    def __init__(self, address: str = "127.0.0.1:50071", channel: grpc.aio.Channel | None = None) -> None:
        self.target = normalize_target(address)  # a malformed target is a ValueError here, not a hang later
        self.channel = channel or grpc.aio.insecure_channel(self.target, options=channel_options())
        self.stub = pb_grpc.SandboxStub(self.channel)

    async def start(self) -> None:
        """Log a warning for each replica of the target that is down or does not resolve (calls still
        go to the others; a call with none left fails UNAVAILABLE)."""
        await warn_about_dead_replicas(self.target)

    async def execute(self, code: str, *, seed: int | None = None, display: str = "pretty", **limits) -> ExecResult:
        request = pb.ExecuteRequest(code=code, limits=pb.Limits(**limits), seed=seed,
                                    display=DISPLAY_VALUES[display])
        try:
            reply = await self.stub.Execute(request, timeout=_call_timeout(limits))
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        return result_from_message(reply)

    def session(self, *, seed: int | None = None, **limits) -> AsyncClientSession:
        return AsyncClientSession(self.stub, seed, limits)

    async def info(self) -> pb.SandboxInfo:
        return await self.stub.GetInfo(pb.GetInfoRequest(), timeout=10)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncSandboxClient:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class AsyncClientSession:
    """One stateful interpreter on the server, alive as long as this stream."""

    def __init__(self, stub: pb_grpc.SandboxStub, seed: int | None, limits: dict) -> None:
        self._stub = stub
        self._seed = seed
        self._limits = limits
        self._call = None

    async def __aenter__(self) -> AsyncClientSession:
        self._call = self._stub.Session()
        if self._seed is not None or self._limits:
            await self._send(pb.SessionRequest(open=pb.SessionOpen(limits=pb.Limits(**self._limits), seed=self._seed)))
        return self

    async def replica(self) -> str:
        """Which server process holds this session (its `sandbox-replica` header: host/pid)."""
        if self._call is None:
            await self.__aenter__()
        try:
            metadata = await self._call.initial_metadata()
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        return dict(metadata or ()).get("sandbox-replica", "")

    async def _send(self, request: pb.SessionRequest) -> None:
        try:
            await self._call.write(request)
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        except (asyncio.InvalidStateError, grpc.aio.UsageError) as exc:  # the stream ended; its status says why
            raise await self._ended() from exc

    async def _ended(self) -> SandboxError:
        code = await self._call.code()
        return SandboxError(code.name, await self._call.details() or "the session stream ended")

    async def run(self, code: str, *, timeout_ms: int | None = None, max_output_bytes: int | None = None,
                  display: str = "pretty") -> ExecResult:
        if self._call is None:
            await self.__aenter__()
        cell = pb.Cell(code=code, timeout_ms=timeout_ms, max_output_bytes=max_output_bytes,
                       display=DISPLAY_VALUES[display])
        await self._send(pb.SessionRequest(cell=cell))
        try:
            # asyncio.timeout, not wait_for, which on Python 3.11 can swallow the caller's cancellation.
            async with asyncio.timeout(_call_timeout({"timeout_ms": timeout_ms}, self._limits.get("timeout_ms"))):
                reply = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        except TimeoutError:
            self._call.cancel()
            raise SandboxError("DEADLINE_EXCEEDED", "no answer from the sandbox in time") from None
        if reply is grpc.aio.EOF:
            raise await self._ended()
        return result_from_message(reply)

    async def close(self) -> None:
        if self._call is not None and not self._call.done():
            self._call.cancel()  # the server kills the session's processes when its stream ends

    async def __aexit__(self, *exc) -> None:
        await self.close()


class SandboxClient(SyncSandbox):
    """Blocking client: the same calls as `AsyncSandboxClient`, without `await`."""

    def __init__(self, address: str = "127.0.0.1:50071") -> None:
        super().__init__(lambda: AsyncSandboxClient(address), name="sandbox-client")

    def info(self) -> pb.SandboxInfo:
        return self._thread.run(self.aio.info())
