"""Client targets naming one or several sandbox replicas, and the service config that balances over them.

Balancing, health checking and retries are gRPC's own (C-core's, shared by `grpc` and `grpc.aio`), set
through the channel's service config rather than written here:

- `round_robin`: each new call goes to the next READY replica (the default, `pick_first`, would send
  everything to one, and it ignores health checking);
- `healthCheckConfig` (gRFC A17): every connection watches `grpc.health.v1.Health/Watch` for the Sandbox
  service, and a replica answering NOT_SERVING (draining, or a worker down) leaves the rotation until it
  answers SERVING again;
- `retryPolicy` on the stateless calls (gRFC A6): an Execute or GetInfo that ends UNAVAILABLE is tried
  again on another replica, but only while it is uncommitted, i.e. before the server sent response
  headers. The server sends them as soon as it takes an Execute, so a cell that began running on a
  replica that then died is never silently run again: its caller gets UNAVAILABLE. Sessions are not
  retried: their state lives on one replica and dies with it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .inside.protocol import GRPC_MAX_MESSAGE

log = logging.getLogger("sandbox.client")

SERVICE = "aimo.sandbox.v1.Sandbox"
MAX_MESSAGE = GRPC_MAX_MESSAGE  # the server's limit too: every answer fits (inside/protocol.py)
PROBE_TIMEOUT_S = 2.0

RETRY_POLICY = {
    "maxAttempts": 4,  # one replica down of three: the second attempt lands on a live one
    "initialBackoff": "0.05s",
    "maxBackoff": "0.5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def service_config() -> dict:
    """No `retryThrottling`: a replica dying with many calls in flight would spend the token bucket on
    calls that cannot be retried anyway (they had started) and then refuse the retries that can."""
    return {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": SERVICE},
        "methodConfig": [{
            "name": [{"service": SERVICE, "method": "Execute"}, {"service": SERVICE, "method": "GetInfo"}],
            "retryPolicy": RETRY_POLICY,
        }],
    }


def channel_options() -> list[tuple[str, object]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.service_config", json.dumps(service_config())),
        # Ours, not a DNS TXT record's: a resolver-supplied config would replace this one.
        ("grpc.service_config_disable_resolution", 1),
        ("grpc.enable_retries", 1),
    ]


def _split_host_port(entry: str, target: str) -> tuple[str, int]:
    entry = entry.strip()
    if entry.startswith("["):  # [v6]:port
        host, sep, port = entry[1:].partition("]:")
    else:
        host, sep, port = entry.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sandbox target {target!r}: {entry!r} is not host:port")
    return host, int(port)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_replicas(target: str) -> list[tuple[str, int]] | None:
    """The (ip, port) pairs of a static list target (`ipv4:`/`ipv6:` or plain `a:p,b:p`), else None."""
    scheme, _, rest = target.partition(":")
    if scheme in ("ipv4", "ipv6"):
        entries = rest.split(",")
    elif "," in target and "://" not in target:
        entries = target.split(",")
    else:
        return None
    if any(not e.strip() for e in entries):
        raise ValueError(f"sandbox target {target!r}: an empty entry in the list")
    pairs = [_split_host_port(e, target) for e in entries]
    for host, _port in pairs:
        ip = _ip(host)
        if ip is None:
            raise ValueError(
                f"sandbox target {target!r}: {host!r} is not an IP address. A list must name addresses; "
                "for a name with several addresses give one dns:///NAME:PORT target")
        if scheme in ("ipv4", "ipv6") and ip.version != int(scheme[-1]):
            raise ValueError(f"sandbox target {target!r}: {host} is not an {scheme} address")
    if len({_ip(h).version for h, _ in pairs}) > 1:
        raise ValueError(f"sandbox target {target!r}: mixes IPv4 and IPv6 addresses (gRPC takes one family a list)")
    return pairs


def normalize_target(address: str) -> str:
    """A gRPC target for `address`, checked: a plain list of addresses becomes an `ipv4:`/`ipv6:` one."""
    target = address.strip()
    if not target:
        raise ValueError("sandbox target is empty")
    if target.startswith("dns:"):
        _dns_host_port(target)
        return target
    pairs = parse_replicas(target)
    if pairs is None:
        return target
    version = _ip(pairs[0][0]).version
    entries = [f"{h}:{p}" if version == 4 else f"[{h}]:{p}" for h, p in pairs]
    return f"ipv{version}:" + ",".join(entries)


def _dns_host_port(target: str) -> tuple[str, int, str]:
    """(host, port, authority: the DNS server named in the target, or '')."""
    name, authority = target[len("dns:"):], ""
    if name.startswith("//"):
        authority, _, name = name[2:].partition("/")
    host, sep, port = name.rpartition(":")
    if not sep or not host or not port.isdigit():
        # C-core would quietly use port 443: say so instead.
        raise ValueError(f"sandbox target {target!r}: give the port, e.g. dns:///sandbox:50071")
    return host, int(port), authority


async def _resolve(target: str) -> list[tuple[str, int]] | None:
    """The replicas' addresses; [] when the name does not resolve; None when this process cannot tell
    (a target naming its own DNS server, which only gRPC's resolver asks)."""
    if target.startswith("dns:"):
        host, port, authority = _dns_host_port(target)
        if authority:
            return None
        try:
            infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            log.warning("sandbox target %s: %s does not resolve (%s); calls fail UNAVAILABLE until it does",
                        target, host, exc)
            return []
        return sorted({(info[4][0], port) for info in infos})
    return parse_replicas(target) or []


async def _healthy(host: str, port: int) -> str | None:
    """None when the replica answers SERVING, else what it answered."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE), timeout=PROBE_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return None


async def warn_about_dead_replicas(target: str) -> list[str]:
    """Probe each replica of a list or DNS target once; log (and return) a warning per one that is down.

    Only a warning: the balancer keeps trying the dead ones and uses them when they come back. A single
    `host:port` target is left to the calls themselves, which fail UNAVAILABLE when it is down."""
    if not target.startswith("dns:") and parse_replicas(target) is None:
        return []
    replicas = await _resolve(target)
    if replicas is None:
        return []
    if not replicas:
        return [f"{target}: no address"]
    answers = await asyncio.gather(*(_healthy(h, p) for h, p in replicas))
    warnings = [f"{h}:{p} {why}" for (h, p), why in zip(replicas, answers, strict=True) if why is not None]
    for warning in warnings:
        log.warning("sandbox target %s: replica %s; calls go to the others", target, warning)
    if len(warnings) == len(replicas):
        log.warning("sandbox target %s: no replica answers SERVING; calls fail UNAVAILABLE until one does", target)
    return warnings
