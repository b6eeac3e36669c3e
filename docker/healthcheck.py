"""The sandbox image's HEALTHCHECK: ask the service's gRPC health service whether it is SERVING.

    python docker/healthcheck.py [HOST:PORT]     exit 0: serving; 1: anything else (with the reason on stderr)

The address defaults to $AIMO_SANDBOX_ADDRESS with a wildcard host (0.0.0.0, [::]) replaced by loopback,
so it probes the port the service was told to listen on. Uses only grpcio and grpcio-health-checking,
which the service itself needs: no downloaded probe binary.
"""

from __future__ import annotations

import os
import sys

SERVICES = ("", "aimo.sandbox.v1.Sandbox")  # the server as a whole, and the sandbox service itself
TIMEOUT_S = float(os.environ.get("AIMO_HEALTHCHECK_TIMEOUT_S", "3"))


def probe_address(address: str) -> str:
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::", "*"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def check(address: str, timeout_s: float = TIMEOUT_S) -> str:
    """'' when every service answers SERVING, else the reason."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in SERVICES:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
            except grpc.RpcError as exc:
                return f"{address} service {service!r}: {exc.code().name} {exc.details()}"
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                return f"{address} service {service!r}: {status}"
    return ""


def main(argv: list[str]) -> int:
    address = probe_address(argv[0] if argv else os.environ.get("AIMO_SANDBOX_ADDRESS", "127.0.0.1:50071"))
    reason = check(address)
    if reason:
        print(f"unhealthy: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
