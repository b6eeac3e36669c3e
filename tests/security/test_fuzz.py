"""Fuzzing both sides of the sandbox with hypothesis.

From the gRPC side, a live nsjail server: random limits, random Unicode and byte-ish code, random
interleavings of session messages and cancellations, in concurrent batches.

Every request must be answered (a result, or INVALID_ARGUMENT / RESOURCE_EXHAUSTED for what the
server refuses: never UNKNOWN, INTERNAL, UNAVAILABLE or a hang) and the server must never crash.
AIMO_FUZZ_REQUESTS sets how many requests (CI: 2,000; the documented run: 10,000, see SECURITY.md).

From the worker side (below), what a session's own processes write to their sockets: 10,000
conversations into a real zygote's loop in this process, and a smaller live run (see there).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pickle
import select
import selectors
import signal
import socket
import struct
import tempfile
import time
import zlib

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimo.sandbox.v1 import sandbox_pb2 as pb
from aimo.sandbox.v1 import sandbox_pb2_grpc as pb_grpc
from sandbox_service.bridge import LoopThread
from sandbox_service.limits import MAX_LIMITS
from tests.conftest import nsjail_server_process

REQUESTS = int(os.environ.get("AIMO_FUZZ_REQUESTS", "2000"))
AVERAGE_BATCH = 6  # requests per example, on average (see `batches`)
REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
RECOVERY_S = 60  # for every zygote to be back after the storm
RPC_TIMEOUT_S = 30  # far above any limit drawn below: hitting it means a request went unanswered

# Code: mostly junk (parse errors), some byte-ish text, some real snippets with junk inside them. No endless
# loops: the default timeout (10 s) would make the run slow, and test_attacks covers them.
unicode_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
byteish = st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
snippets = st.sampled_from([
    "print({})", "x = {}\nx", "repr({})", "len({})", "'{}'.encode()", "import sys\nsys.stdout.buffer.write({})",
    "raise ValueError({})", "print('{}' * 100000)", "[{}] * 10**6", "1/0 # {}", "import time; time.sleep(0.2) # {}",
])
code = st.one_of(
    unicode_text, byteish,
    st.tuples(snippets, st.one_of(unicode_text, byteish).map(repr)).map(lambda t: t[0].replace("{}", t[1])),
)
# Limits: any subset, values from zero (refused) past the maxima (refused), biased small so cells end fast.
limit_values = {
    "timeout_ms": st.integers(0, 1000) | st.just(MAX_LIMITS.timeout_ms + 1),
    "memory_bytes": st.integers(0, 1 << 30) | st.just(MAX_LIMITS.memory_bytes + 1),
    "cpu_seconds": st.integers(0, 3),
    "max_processes": st.integers(0, 300),
    "max_file_bytes": st.integers(0, 1 << 20),
    "max_output_bytes": st.integers(0, 1 << 16) | st.just(MAX_LIMITS.max_output_bytes + 1),
}
limits = st.fixed_dictionaries({}, optional=limit_values).map(lambda d: pb.Limits(**d))
execute = st.builds(lambda c, lim, d: ("execute", pb.ExecuteRequest(code=c, limits=lim, display=d)),
                    code, limits, st.sampled_from([0, 1, 2]))
session_message = st.one_of(
    st.builds(lambda c, t: pb.SessionRequest(cell=pb.Cell(code=c, timeout_ms=t)), code,
              st.none() | st.integers(0, 1000)),
    st.builds(lambda lim: pb.SessionRequest(open=pb.SessionOpen(limits=lim)), limits),  # first, or refused later
    st.just(pb.SessionRequest()),  # neither open nor cell: refused
)
# A session: its messages, and after how many answers the client cancels (None: it half-closes).
session = st.builds(lambda msgs, cut: ("session", msgs, cut), st.lists(session_message, min_size=1, max_size=6),
                    st.none() | st.integers(0, 5))
batches = st.lists(st.one_of(execute, execute, session), min_size=1, max_size=2 * AVERAGE_BATCH - 1)


class Fuzzer:
    def __init__(self, address: str) -> None:
        self.thread = LoopThread("fuzz")
        self.channel = self.thread.run(_channel(address))
        self.stub = pb_grpc.SandboxStub(self.channel)
        self.requests = 0
        self.answered = 0
        self.refused = 0

    async def execute(self, request: pb.ExecuteRequest) -> None:
        self.requests += 1
        try:
            reply = await self.stub.Execute(request, timeout=RPC_TIMEOUT_S)
            assert reply.status != pb.STATUS_UNSPECIFIED
        except grpc.aio.AioRpcError as exc:
            assert exc.code() in REFUSALS, f"{exc.code()}: {exc.details()} for {request!r:.300}"
            self.refused += 1
        self.answered += 1

    async def session(self, messages: list[pb.SessionRequest], cut: int | None) -> None:
        """Send the messages one by one, reading each cell's answer; stop at the first refusal."""
        call = self.stub.Session(timeout=RPC_TIMEOUT_S)
        cells = 0
        waiting = False  # a request was sent and its verdict (a result or the stream's status) is due
        try:
            for message in messages:
                if cut is not None and cells >= cut:
                    call.cancel()  # the client goes away mid-stream
                    return
                try:
                    await call.write(message)
                except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
                    # The server had already ended the stream (it refused an earlier open): this message
                    # never reached it, and grpc's client core then reports its own INTERNAL "from Core"
                    # instead of the server's status.
                    code, details = await call.code(), await call.details()
                    assert code in REFUSALS or (code == grpc.StatusCode.INTERNAL and "from Core" in details), details
                    return
                kind = message.WhichOneof("kind")
                if kind == "open" and message is messages[0]:
                    continue  # no answer of its own; a refusal shows on the next message
                self.requests += 1
                waiting = True
                cells += kind == "cell"
                reply = await call.read()
                if reply is grpc.aio.EOF:  # refused: the stream's status says why
                    break
                assert kind == "cell", "only cells are answered with a result"
                self.answered += 1
                waiting = False
            else:
                await call.done_writing()
                assert await call.read() is grpc.aio.EOF
                return
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
            pass  # the stream ended under us: its status says why, checked below
        code = await call.code()
        assert code in REFUSALS, f"{code}: {await call.details()}"
        self.refused += 1
        self.answered += waiting

    def run_batch(self, batch: list) -> None:
        async def all_of_them():
            await asyncio.gather(*(self.execute(item[1]) if item[0] == "execute" else self.session(*item[1:])
                                   for item in batch))

        self.thread.run(all_of_them())

    def close(self) -> None:
        self.thread.run(self.channel.close())
        self.thread.stop()


async def _channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address)


@pytest.fixture(scope="module")
def fuzz_server():
    with nsjail_server_process("--log-level", "WARNING") as server:
        yield server


def test_fuzzed_requests_are_all_answered_and_the_server_survives(fuzz_server):
    fuzzer = Fuzzer(fuzz_server.address)

    # Seeded in CI, so that a failure there is one a rerun reproduces; random everywhere else.
    @settings(max_examples=max(1, REQUESTS // AVERAGE_BATCH * 2), deadline=None, database=None,
              derandomize=bool(os.environ.get("CI")),
              suppress_health_check=list(HealthCheck))
    @given(batches)
    def fuzz(batch):
        if fuzzer.requests >= REQUESTS:
            return
        fuzzer.run_batch(batch)
        assert fuzz_server.proc.poll() is None, f"the server crashed:\n{fuzz_server.output()}"

    try:
        fuzz()
        assert fuzzer.requests >= REQUESTS, f"only {fuzzer.requests} requests made"
        assert fuzzer.answered == fuzzer.requests, (fuzzer.answered, fuzzer.requests)
        assert fuzz_server.proc.poll() is None
        print(f"\nfuzz: {fuzzer.requests} requests, {fuzzer.answered} answered, {fuzzer.refused} refused")
    finally:
        fuzzer.close()
    from sandbox_service import SandboxClient

    with SandboxClient(fuzz_server.address) as client:
        # The last batch may have killed zygotes or left cancelled sessions closing: the pool must recover
        # (every zygote back, no session left open) and then run a plain cell.
        deadline = time.monotonic() + RECOVERY_S
        while (info := client.info()).zygotes_ready < info.pool_size or info.sessions_open:
            assert time.monotonic() < deadline, f"the pool did not recover in {RECOVERY_S} s: {info}"
            time.sleep(0.2)
        result = client.execute("print(6 * 7)")
        assert result.stdout == "42\n", result


# --------------------------------------------------------------------------------------------------
# The other side of the boundary: what a session's own processes send to the zygote. A cell runs in the
# worker and can write any bytes to the sockets it inherits; the zygote must end that session alone
# (and answer its caller once) whatever they are, and only ever relay frames the server's schema takes.

WORKER_CASES = int(os.environ.get("AIMO_WORKER_FUZZ_CASES", "10000"))
LIVE_CASES = int(os.environ.get("AIMO_WORKER_FUZZ_LIVE", "60"))

json_leaf = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
             | st.text(max_size=40) | st.sampled_from(["OK", "ERROR", "CRASHED", "\ud800", "r1"]))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
pids = st.integers(-3, 2**70) | st.just(1) | json_value
result_fields = {
    "stdout": st.text(max_size=200) | json_value, "stderr": st.text(max_size=200), "display": st.text(max_size=50),
    "message": st.text(max_size=50), "stdout_truncated": st.booleans() | json_value, "stderr_truncated": st.booleans(),
    "wall_ms": st.floats() | st.integers(-5, 2**70), "cpu_ms": st.floats(0, 100), "peak_memory_bytes": pids,
    "error": st.none() | st.fixed_dictionaries({"type": st.text(max_size=20), "message": st.text(max_size=20),
                                                "traceback": st.text(max_size=20) | json_value}) | json_value,
    "state_rolled_back": st.booleans(), "cell_index": st.integers(),
}
results = st.fixed_dictionaries({"status": st.sampled_from(["OK", "ERROR", "MEMORY_EXCEEDED", "OUTPUT_LIMIT_EXCEEDED",
                                                            "TIMEOUT", "CRASHED", "nope"]) | json_value},
                                optional=result_fields)
cell_frames = st.one_of(
    st.fixed_dictionaries({"rid": st.sampled_from(["r1", "r0", "r2"]) | json_value, "result": results | json_value}),
    st.builds(lambda r: {"rid": "r1", "result": r}, results),
    json_value,
)
events = st.one_of(
    st.fixed_dictionaries({"event": st.just("worker"), "pid": pids, "holder": pids}),
    st.fixed_dictionaries({"event": st.just("worker_died"), "pid": pids,
                           "status": st.integers(-2, 2**70) | json_value}),
    st.fixed_dictionaries({"event": st.just("failed"), "error": st.text(max_size=2000) | json_value}),
    st.dictionaries(st.sampled_from(["event", "pid", "holder", "status", "error", "x"]), json_value, max_size=4),
)


def _frame(value: object, ascii_only: bool) -> bytes:
    body = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")
    return struct.pack(">I", len(body)) + body


hostile_bytes = st.one_of(
    st.binary(max_size=300),  # anything at all, headers included
    st.builds(lambda n, tail: struct.pack(">I", n) + tail, st.integers(0, 2**32 - 1), st.binary(max_size=64)),
    st.just(struct.pack(">I", 200_003) + b"[" * 100_000 + b"1" + b"]" * 100_000),  # deeper than any recursion limit
    st.builds(lambda b: struct.pack(">I", len(b)) + b, st.binary(max_size=64)),  # a frame of non-JSON, non-UTF-8
    st.builds(lambda n: _frame({"rid": "r1", "result": {"status": "OK", "stdout": "é" * n}}, False),
              st.integers(0, 1 << 17)),
)
# One message: which socket, and what goes on it.
chunk = st.one_of(
    st.tuples(st.just("cell"), st.builds(_frame, cell_frames, st.booleans())),
    st.tuples(st.just("ctl"), st.builds(_frame, events, st.booleans())),
    st.tuples(st.sampled_from(["cell", "ctl"]), hostile_bytes),
)
# A flood of tiny frames, as in the issue (one session raised everyone's p50 from 4 ms to 250 ms).
flood = st.builds(lambda n: [("ctl", _frame({"event": "failed", "error": "x"}, True) * n)], st.integers(17, 4000))
conversations = st.one_of(st.lists(chunk, min_size=1, max_size=6), flood)


class ZygoteUnderFuzz:
    """A real `Zygote` (its loop's session handling, not a copy) fed by the far ends of a session's sockets.

    Its sessions have no uid and no leader process, so the kills it decides on reach no process here."""

    def __init__(self) -> None:
        from sandbox_service.inside import zygote as zygote_module

        self.module = zygote_module
        self.out = tempfile.TemporaryFile()  # what the zygote says to "the server"
        saved_wakeup, saved_chld = signal.set_wakeup_fd(-1), signal.getsignal(signal.SIGCHLD)
        try:
            cfg = {"uid_count": 0, "uid_base": 0, "spares": 0, "default_limits": {}}
            self.server_in, self._server_in_w = os.pipe()  # "the server" says nothing
            self.zygote = zygote_module.Zygote(cfg, self.server_in, self.out.fileno())
        finally:
            signal.set_wakeup_fd(saved_wakeup)
            signal.signal(signal.SIGCHLD, saved_chld)

    def converse(self, messages: list[tuple[str, bytes]], pending: bool) -> tuple[list, object]:
        zygote, module = self.zygote, self.module
        z_cell, s_cell = socket.socketpair()
        z_ctl, s_ctl = socket.socketpair()
        session = module.Session("fuzz", None, z_cell, z_ctl, {})
        for sock, kind in ((z_cell, "cell"), (z_ctl, "ctl")):
            sock.setblocking(False)
            zygote.by_fd[sock.fileno()] = (session, kind)
            zygote.sel.register(sock.fileno(), selectors.EVENT_READ)
        zygote.sessions["fuzz"] = session
        if pending:
            zygote.run(session, {"rid": "r1", "timeout_ms": 1000, "code": "1", "display": "pretty",
                                 "max_output_bytes": 1000, "cell_index": 1})
        for sock in (s_cell, s_ctl):
            sock.setblocking(False)
        for kind, data in messages:
            sock, fd = (s_cell, z_cell.fileno()) if kind == "cell" else (s_ctl, z_ctl.fileno())
            view = memoryview(data)
            while view and not session.closed:
                try:
                    view = view[sock.send(view[: 1 << 16]):]
                except BlockingIOError:
                    pass
                zygote.read_session(fd)
            while not session.closed and fd in zygote.by_fd and _readable(fd):
                zygote.read_session(fd)
        violated = session.closed
        if not session.closed:
            zygote.close(session)
        s_cell.close()
        s_ctl.close()
        self.out.seek(0)
        said = self.out.read()
        self.out.seek(0)
        self.out.truncate()
        return _frames(said), violated


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def _frames(data: bytes) -> list:
    from sandbox_service.zygote_process import check_zygote_frame

    frames, view = [], memoryview(data)
    while view:
        (size,) = struct.unpack(">I", view[:4])
        frames.append(check_zygote_frame(json.loads(bytes(view[4:4 + size]))))  # raises if off the schema
        view = view[4 + size:]
    return frames


@pytest.fixture(scope="module")
def zygote_under_fuzz():
    return ZygoteUnderFuzz()


def test_worker_messages_never_harm_the_zygote(zygote_under_fuzz):
    """10,000 conversations of hostile bytes from a session's sockets into the zygote's loop: none raises
    out of it, every frame it relays passes the server's schema and fits a gRPC answer, the caller of a
    pending cell is answered at most once, and exactly once when its session broke the rules."""
    from sandbox_service.convert import result_message
    from sandbox_service.inside.protocol import GRPC_MAX_MESSAGE

    seen = {"violations": 0, "answers": 0}

    @settings(max_examples=WORKER_CASES, deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
              suppress_health_check=list(HealthCheck))
    @given(conversations, st.booleans())
    def fuzz(messages, pending):
        said, violated = zygote_under_fuzz.converse(messages, pending)
        answers = [result for rid, result, _ in said if rid == "r1"]
        assert len(answers) <= 1, answers
        for result in answers:
            assert result_message(result).ByteSize() < GRPC_MAX_MESSAGE
        if pending and violated:  # its answer came first, or CRASHED for breaking the rules
            assert len(answers) == 1, (messages[:2], said)
        seen["violations"] += violated
        seen["answers"] += len(answers)

    fuzz()
    assert not zygote_under_fuzz.zygote.sessions, "a session outlived its conversation"
    assert seen["violations"] > WORKER_CASES // 4, seen  # the strategies do reach the checks
    print(f"\nworker fuzz: {WORKER_CASES} conversations, {seen}")


def test_forged_frames_from_the_issue_end_one_session(zygote_under_fuzz):
    """Issue 29, class 2, each one: the zygote used to die of these (RecursionError, OverflowError,
    TypeError: unhashable, a 24 MiB result re-encoded past the frame limit)."""
    worker = _frame({"event": "worker", "pid": 12345, "holder": 12344}, True)
    cases = {
        "deep": [("cell", struct.pack(">I", 200_001) + b"[" * 100_000 + b"1" + b"]" * 100_000)],
        "status 2**70": [("ctl", worker),
                         ("ctl", _frame({"event": "worker_died", "pid": 12345, "status": 2**70}, True))],
        "pid list": [("ctl", _frame({"event": "worker", "pid": [1], "holder": 2}, True))],
        "24 MiB result": [("cell", _frame({"rid": "r1", "result": {"status": "OK", "stdout": "é" * (12 << 20)}},
                                          False))],
        "flood": [("ctl", _frame({"event": "failed", "error": "x"}, True) * 100_000)],
    }
    for name, messages in cases.items():
        said, violated = zygote_under_fuzz.converse(messages, pending=True)
        assert violated, name
        assert [r["status"] for rid, r, _ in said if rid == "r1"] == ["CRASHED"], (name, said)
        assert "broke the sandbox protocol" in said[-1][1]["message"], said


def test_live_hostile_frames_leave_the_zygotes_alone(fuzz_server):
    """A smaller live run: cells write hypothesis' hostile bytes to their own sockets in a real nsjail
    server; each call is answered, the zygotes are never replaced, and the server then serves normally."""
    import psutil

    from sandbox_service import SandboxClient

    def zygotes() -> set[int]:
        found = set()
        for proc in psutil.Process(fuzz_server.proc.pid).children(recursive=True):
            try:  # session processes come and go under the walk
                if "zygote.py" in " ".join(proc.cmdline()) and "zygote.py" not in " ".join(proc.parent().cmdline()):
                    found.add(proc.pid)
            except (psutil.Error, AttributeError):
                continue
        return found

    with SandboxClient(fuzz_server.address) as client:
        before = zygotes()

        @settings(max_examples=LIVE_CASES, deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
                  suppress_health_check=list(HealthCheck))
        @given(st.lists(chunk, min_size=1, max_size=4))
        def fuzz(messages):
            packed = base64.b85encode(zlib.compress(pickle.dumps(messages))).decode()  # the cell unpacks its own
            code = ("import gc, os, base64, pickle, zlib\n"
                    "proc = [o for o in gc.get_objects() if type(o).__name__ == 'SessionProcess'][0]\n"
                    f"for kind, data in pickle.loads(zlib.decompress(base64.b85decode({packed!r}))):\n"
                    "    os.write(proc.cell_fd if kind == 'cell' else proc.ctl_fd, data)\n"
                    "import time; time.sleep(0.05)\nprint('done')")
            result = client.execute(code, timeout_ms=3000)
            assert result.status in ("OK", "CRASHED", "TIMEOUT"), result
            assert fuzz_server.proc.poll() is None

        fuzz()
        assert zygotes() == before, "a zygote was replaced"
        assert client.execute("print(6 * 7)").stdout == "42\n"
