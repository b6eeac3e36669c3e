"""Fuzzing a live nsjail server with hypothesis: random limits, random Unicode and byte-ish code, random
interleavings of session messages and cancellations, in concurrent batches.

Every request must be answered (a result, or INVALID_ARGUMENT / RESOURCE_EXHAUSTED for what the
server refuses: never UNKNOWN, INTERNAL, UNAVAILABLE or a hang) and the server must never crash.
AIMO_FUZZ_REQUESTS sets how many requests (CI: 2,000; the documented run: 10,000, see SECURITY.md).
"""

from __future__ import annotations

import asyncio
import os
import time

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
