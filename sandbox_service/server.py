"""The gRPC face of the pool: Execute, Session, GetInfo, plus health, reflection and metrics.

Every call gets exactly one answer: a result, or a status code that says what was wrong.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import asdict

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from aimo.sandbox.v1 import sandbox_pb2 as pb
from aimo.sandbox.v1 import sandbox_pb2_grpc as pb_grpc

from . import __version__, metrics
from .convert import display_name, limits_message, requested_limits, result_message
from .inside.protocol import GRPC_MAX_MESSAGE
from .limits import InvalidRequest, check_code, resolve
from .pool import Pool, PoolExhausted, PoolSettings

log = logging.getLogger("sandbox.server")
SERVICE = pb.DESCRIPTOR.services_by_name["Sandbox"].full_name
MAX_MESSAGE = GRPC_MAX_MESSAGE  # every answer fits: results are trimmed to protocol.ANSWER_BUDGET (2 MiB)


class Undecodable:
    """A request protobuf could not parse (a string field that is not UTF-8): refused as INVALID_ARGUMENT."""

    def __init__(self, error: str) -> None:
        self.error = error


def _lenient(message_type):
    """A deserializer that hands a broken request to the handler instead of failing the call with UNKNOWN."""

    def parse(data: bytes):
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            return Undecodable(str(exc) or "not a valid message")

    return parse


UNDECODABLE = "the request is not valid protobuf (is the code valid UTF-8?)"


def add_servicer(servicer: pb_grpc.SandboxServicer, server: grpc.aio.Server) -> None:
    """`add_SandboxServicer_to_server`, with requests parsed by `_lenient`."""
    handlers = {
        "Execute": grpc.unary_unary_rpc_method_handler(
            servicer.Execute, request_deserializer=_lenient(pb.ExecuteRequest),
            response_serializer=pb.ExecuteResult.SerializeToString),
        "Session": grpc.stream_stream_rpc_method_handler(
            servicer.Session, request_deserializer=_lenient(pb.SessionRequest),
            response_serializer=pb.ExecuteResult.SerializeToString),
        "GetInfo": grpc.unary_unary_rpc_method_handler(
            servicer.GetInfo, request_deserializer=_lenient(pb.GetInfoRequest),
            response_serializer=pb.SandboxInfo.SerializeToString),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


class SandboxServicer(pb_grpc.SandboxServicer):
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.defaults = pool.settings.default_limits
        self.maxima = pool.settings.max_limits
        # Sent as response headers when a call is taken: which process answered (host/pid:port), and
        # (gRFC A6) the point after which a client's retry policy no longer retries the call elsewhere.
        self.replica: tuple[tuple[str, str], ...] = (("sandbox-replica", f"{socket.gethostname()}/{os.getpid()}"),)

    async def Execute(self, request: pb.ExecuteRequest, context: grpc.aio.ServicerContext) -> pb.ExecuteResult:
        started = time.perf_counter()
        if isinstance(request, Undecodable):
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE)
        await context.send_initial_metadata(self.replica)
        try:
            check_code(request.code)
            limits = resolve(requested_limits(request.limits), self.defaults, self.maxima)
            display = display_name(request.display)
        except InvalidRequest as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        seed = request.seed if request.HasField("seed") else 0
        return await _counted("Execute", self.pool.execute(request.code, limits, seed, display), context, started)

    async def Session(self, requests, context: grpc.aio.ServicerContext):
        session = None
        await context.send_initial_metadata(self.replica)
        try:
            async for request in requests:
                if isinstance(request, Undecodable):
                    await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE)
                kind = request.WhichOneof("kind")
                if kind == "open":
                    if session is not None:
                        await _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                                     "open: allowed only as the first message of a session")
                    session = await self._open(request.open, context)
                elif kind == "cell":
                    if session is None:
                        session = await self._open(pb.SessionOpen(), context)
                    yield await self._cell(session, request.cell, context)
                else:
                    await _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                                 "SessionRequest: neither open nor cell is set (an unknown message?)")
        finally:
            if session is not None:  # the stream ended, failed or was cancelled: the session dies with it
                session.close()
                metrics.SESSIONS_OPEN.set(self.pool.sessions_open)

    async def _open(self, request: pb.SessionOpen, context):
        try:
            limits = resolve(requested_limits(request.limits), self.defaults, self.maxima)
        except InvalidRequest as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            session = self.pool.open_session(limits, request.seed if request.HasField("seed") else 0)
        except PoolExhausted as exc:
            await _abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        metrics.SESSIONS_OPEN.set(self.pool.sessions_open)
        return session

    async def _cell(self, session, cell: pb.Cell, context) -> pb.ExecuteResult:
        started = time.perf_counter()
        try:
            check_code(cell.code)
            per_cell = {k: getattr(cell, k) for k in ("timeout_ms", "max_output_bytes") if cell.HasField(k)}
            limits = resolve(per_cell, session.limits, self.maxima)
            display = display_name(cell.display)
        except InvalidRequest as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"cell.{exc}")
        run = session.run(cell.code, limits.timeout_ms, limits.max_output_bytes, display)
        return await _counted("Session", run, context, started)

    async def GetInfo(self, request: pb.GetInfoRequest, context) -> pb.SandboxInfo:
        pool = self.pool
        ready = pool.ready
        first = ready[0].info if ready else {}
        return pb.SandboxInfo(
            isolation=pool.isolation,
            isolation_detail=pool.isolation_detail,
            server_version=__version__,
            python_version=first.get("python", ""),
            module_versions=first.get("versions", {}),
            preloaded_modules=list(pool.settings.preload),
            prelude=pool.settings.prelude,
            default_limits=limits_message(self.defaults),
            max_limits=limits_message(self.maxima),
            pool_size=pool.settings.pool_size,
            zygotes_ready=len(ready),
            sessions_open=pool.sessions_open,
            max_sessions=pool.settings.max_sessions,
        )


async def _counted(method: str, run, context, started: float) -> pb.ExecuteResult:
    """Await one cell, keeping the metrics; a full pool answers RESOURCE_EXHAUSTED."""
    metrics.CELLS_RUNNING.inc()
    try:
        result = await run
    except PoolExhausted as exc:
        await _abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
    finally:
        metrics.CELLS_RUNNING.dec()
    metrics.record(method, result, time.perf_counter() - started)
    return result_message(result)


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    metrics.REJECTED.labels(code.name).inc()
    await context.abort(code, message)


class SandboxServer:
    """The pool plus a gRPC server on `address`; `start()`, then `stop()` (or SIGTERM via `serve()`)."""

    def __init__(self, settings: PoolSettings, address: str, grace_s: float = 10.0, *,
                 reuse_port: bool = False, serving: bool = True, max_connection_age_s: float = 0) -> None:
        """`reuse_port`: share the port with sibling worker processes (SO_REUSEPORT; off, a second server
        on a taken port fails to bind instead of quietly sharing it). `serving`: announce SERVING once
        started; a supervised worker waits for its parent's word instead (`set_serving`).
        `max_connection_age_s`: close each client connection after this long (0: never), letting its
        streams finish, so that balancing clients re-resolve and find replicas added since."""
        self.pool = Pool(settings)
        self.address = address
        self.grace_s = grace_s
        self.reuse_port = reuse_port
        self.serving = serving
        self.max_connection_age_s = max_connection_age_s
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        await self.pool.start()
        options = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE),
                   ("grpc.so_reuseport", int(self.reuse_port))]
        if self.max_connection_age_s:
            options.append(("grpc.max_connection_age_ms", int(self.max_connection_age_s * 1000)))
        self.server = grpc.aio.server(options=options)
        servicer = SandboxServicer(self.pool)
        add_servicer(servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        try:
            self.port = self.server.add_insecure_port(self.address)
        except RuntimeError:  # grpcio raises where it used to return 0
            self.port = 0
        if self.port == 0:
            await self.pool.stop()
            raise OSError(f"could not bind {self.address} (taken by another process, or not this host's address)")
        servicer.replica = (("sandbox-replica", f"{socket.gethostname()}/{os.getpid()}:{self.port}"),)
        await self.server.start()
        await self.set_serving(self.serving)
        metrics.track_zygotes_ready(lambda: len(self.pool.ready))
        log.info("serving on %s (port %d), isolation %s", self.address, self.port, self.pool.isolation)

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE):
            await self.health.set(name, status)

    async def stop(self) -> None:
        """Refuse new calls, let the ones in flight finish within the grace period, then stop the pool."""
        await self.health.enter_graceful_shutdown()
        if self.server is not None:
            await self.server.stop(self.grace_s)
        await self.pool.stop()

    async def serve(self) -> None:
        await self.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        log.info("shutting down (grace %.1fs)", self.grace_s)
        await self.stop()


def settings_summary(settings: PoolSettings) -> str:
    fields = asdict(settings)
    fields.pop("prelude")
    return ", ".join(f"{k}={v}" for k, v in fields.items())


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(stream=sys.stderr, level=level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
