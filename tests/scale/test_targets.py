"""Targets naming several replicas: parsed and checked up front; a dead or unresolvable entry is a logged
warning and its calls fail with a status, never a silent hang."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from sandbox_service import SandboxError
from sandbox_service.client import AsyncSandboxClient
from sandbox_service.spawn import free_port
from sandbox_service.targets import channel_options, normalize_target

from .conftest import start_replicas, stop_all


@pytest.mark.parametrize(("given", "target"), [
    ("127.0.0.1:50071", "127.0.0.1:50071"),
    ("sandbox:50071", "sandbox:50071"),
    ("127.0.0.1:50071,127.0.0.1:50072", "ipv4:127.0.0.1:50071,127.0.0.1:50072"),
    (" 10.0.0.1:1, 10.0.0.2:2 ", "ipv4:10.0.0.1:1,10.0.0.2:2"),
    ("ipv4:127.0.0.1:50071,127.0.0.1:50072", "ipv4:127.0.0.1:50071,127.0.0.1:50072"),
    ("[::1]:50071,[::1]:50072", "ipv6:[::1]:50071,[::1]:50072"),
    ("dns:///sandbox:50071", "dns:///sandbox:50071"),
    ("dns://8.8.8.8/sandbox:50071", "dns://8.8.8.8/sandbox:50071"),
])
def test_targets_normalize(given, target):
    assert normalize_target(given) == target


@pytest.mark.parametrize(("given", "says"), [
    ("", "empty"),
    ("sandbox-a:50071,sandbox-b:50071", "not an IP address"),
    ("127.0.0.1:50071,", "empty entry"),
    ("127.0.0.1:50071,127.0.0.1", "not host:port"),
    ("127.0.0.1:50071,127.0.0.1:99999", "not host:port"),
    ("ipv4:[::1]:50071", "not an ipv4 address"),
    ("127.0.0.1:1,[::1]:2", "mixes IPv4 and IPv6"),
    ("dns:///sandbox", "give the port"),
])
def test_malformed_targets_are_refused_up_front(given, says):
    with pytest.raises(ValueError, match=says):
        AsyncSandboxClient(given)


def test_the_service_config_asks_for_round_robin_health_checks_and_retries_of_stateless_calls():
    config = json.loads(dict(channel_options())["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": "aimo.sandbox.v1.Sandbox"}
    (method,) = config["methodConfig"]
    assert {n["method"] for n in method["name"]} == {"Execute", "GetInfo"}  # never Session: its state is local
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


@pytest.mark.nsjail
def test_a_dead_entry_is_a_warning_and_the_live_replicas_take_every_call(caplog):
    (live,) = start_replicas(1)
    dead = f"127.0.0.1:{free_port()}"
    try:
        async def scenario():
            async with AsyncSandboxClient(f"{live.address},{dead}") as client:
                return [(await client.execute("6 * 7")).display for _ in range(10)]

        with caplog.at_level(logging.WARNING, logger="sandbox.client"):
            displays = asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        stop_all([live])
    assert displays == ["42"] * 10
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(dead in w and "UNAVAILABLE" in w for w in warnings), warnings
    assert not any(live.address in w.split("replica ")[-1] for w in warnings), warnings


def test_an_unresolvable_name_is_a_warning_and_an_unavailable_error_not_a_hang(caplog):
    async def scenario():
        async with AsyncSandboxClient("dns:///no-such-sandbox.invalid:50071") as client:
            with pytest.raises(SandboxError) as error:
                await client.execute("1")
            return error.value

    with caplog.at_level(logging.WARNING, logger="sandbox.client"):
        error = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert error.code == "UNAVAILABLE"
    assert any("does not resolve" in r.getMessage() for r in caplog.records)


def test_every_replica_dead_is_an_unavailable_error_not_a_hang(caplog):
    target = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"

    async def scenario():
        async with AsyncSandboxClient(target) as client:
            with pytest.raises(SandboxError) as error:
                await client.execute("1")
            return error.value

    with caplog.at_level(logging.WARNING, logger="sandbox.client"):
        error = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert error.code == "UNAVAILABLE"
    assert any("no replica answers SERVING" in r.getMessage() for r in caplog.records)
