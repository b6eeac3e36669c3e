"""Front doors in their own processes, in front of one real sandbox server in nsjail mode."""

from __future__ import annotations

import re
import sys
import time
import urllib.request
from contextlib import asynccontextmanager

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from sandbox_service.frontdoors.spawn import FrontDoorProcess
from sandbox_service.spawn import ROOT

MCP_TRANSPORTS = ["stdio", "sse", "streamable-http"]


@pytest.fixture(scope="session")
def mcp_door(nsjail_server):
    door = FrontDoorProcess("mcp", "--sandbox", nsjail_server.address).wait_ready()
    yield door
    door.stop()


@pytest.fixture(scope="session")
def http_door(nsjail_server):
    door = FrontDoorProcess("http", "--sandbox", nsjail_server.address).wait_ready()
    yield door
    door.stop()


@asynccontextmanager
async def mcp_client(transport: str, sandbox_address: str, door: FrontDoorProcess | None, headers=None):
    """An initialized `mcp.ClientSession` to the sandbox's MCP server over `transport`."""
    if transport == "stdio":
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "sandbox_service.frontdoors.mcp", "--sandbox", sandbox_address],
            cwd=str(ROOT))
        streams = stdio_client(params)
    elif transport == "sse":
        streams = sse_client(f"{door.url}/sse", headers=headers)
    else:
        streams = streamable_http_client(f"{door.url}/mcp")
    async with streams as (read, write, *_), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def sandbox_metric(server, name: str) -> float:
    """One gauge of the sandbox server's Prometheus metrics (what is running there right now)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, f"{name} not in the sandbox's metrics"
    return float(match.group(1))


def wait_for_metric(server, name: str, want: float, timeout: float = 15) -> float:
    deadline = time.monotonic() + timeout
    while True:
        value = sandbox_metric(server, name)
        if value == want or time.monotonic() > deadline:
            return value
        time.sleep(0.1)
