"""The channel's bounds seen from a caller: one answer budget that fits gRPC, and requests protobuf cannot parse."""

from __future__ import annotations

import grpc

from aimo.sandbox.v1 import sandbox_pb2 as pb
from sandbox_service.inside.protocol import ANSWER_BUDGET, GRPC_MAX_MESSAGE
from sandbox_service.limits import MAX_LIMITS

# Every text field of a result at once, each at the largest max_output_bytes: stdout, stderr, the displayed
# value (in a traceback's frame), the exception's message. Before the budget, this was RESOURCE_EXHAUSTED
# and the session was lost.
FILL_EVERYTHING = """\
import sys
sys.stdout.write('o' * (4 << 20))
sys.stderr.write('e' * (4 << 20))
raise ValueError('m' * (4 << 20))
"""


def test_an_answer_filling_every_field_fits_and_the_session_lives(grpc_client):
    cap = MAX_LIMITS.max_output_bytes
    with grpc_client.session(max_output_bytes=cap) as session:
        session.run("x = 41")
        result = session.run(FILL_EVERYTHING)
        assert result.status == "ERROR", result.message
        assert result.stdout_truncated and result.stderr_truncated
        size = sum(len(t.encode()) for t in (result.stdout, result.stderr, result.display, *result.error.values()))
        assert size <= ANSWER_BUDGET < GRPC_MAX_MESSAGE
        assert session.run("x + 1").display == "42"


def test_code_that_is_not_utf8_is_invalid_argument(nsjail_server):
    # protobuf refuses a string field that is not UTF-8; the server says so instead of UNKNOWN
    raw = b"\x0a\x03\xff\xfe\x31"  # ExecuteRequest.code = b"\xff\xfe1"
    with grpc.insecure_channel(nsjail_server.address) as channel:
        execute = channel.unary_unary("/aimo.sandbox.v1.Sandbox/Execute", request_serializer=lambda b: b,
                                      response_deserializer=pb.ExecuteResult.FromString)
        try:
            execute(raw, timeout=10)
            raise AssertionError("accepted")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
        session = channel.stream_stream("/aimo.sandbox.v1.Sandbox/Session", request_serializer=lambda b: b,
                                        response_deserializer=pb.ExecuteResult.FromString)
        try:
            list(session(iter([b"\x12" + bytes([len(raw)]) + raw]), timeout=10))  # SessionRequest.cell.code
            raise AssertionError("accepted")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
