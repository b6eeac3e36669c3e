"""The loop through an OpenAI-compatible server: `vllm serve` (the CPU build) on loopback, started here.

Same checks as the in-process engine: eight concurrent samples run code mid-generation in their own
sessions of a real sandbox server, continue from the spliced output with the server's prefix cache
hit, and vote the right answer; early stop closes the remaining streams, and the server aborts them.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from inference.openai_engine import OpenAIEngine
from inference.solver import Solver
from sandbox_service.client import AsyncSandboxClient
from sandbox_service.local import AsyncLocalSandbox
from sandbox_service.spawn import free_port
from tests.inference.conftest import MODEL
from tests.inference.loop_checks import BLOCK, CONFIG, EARLY_STOP, check_loop, fresh

SERVED_NAME = "tiny-tir"
# pytest-timeout counts the module's fixture in the first test that needs it: each test's limit is the
# server's start wait plus its own work, so that a server that never comes up fails with its log (the
# wait below), not with pytest's kill at a limit the wait could never reach.
START_TIMEOUT_S = 300
TEST_S = 240
pytestmark = pytest.mark.timeout(START_TIMEOUT_S + TEST_S)


@pytest.fixture(scope="module")
def vllm_server():
    port = free_port()
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(MODEL),
         "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
         "--max-model-len", "1024", "--max-num-seqs", "16", "--dtype", "bfloat16", "--enforce-eager",
         "--block-size", str(BLOCK), "--enable-prompt-tokens-details"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"},
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read()[-4000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve did not come up in {START_TIMEOUT_S} s")
            time.sleep(1)
        yield base
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def requests_in_flight(base: str) -> float:
    """Running plus waiting requests, from the server's own Prometheus metrics."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    values = re.findall(r"^vllm:num_requests_(?:running|waiting)\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    assert values, "the server exposes no request gauges"
    return sum(float(v) for v in values)


def engine_for(base: str) -> OpenAIEngine:
    return OpenAIEngine(f"{base}/v1", SERVED_NAME, max_model_len=1024)


def test_eight_samples_through_the_server_and_the_grpc_sandbox(vllm_server, tiny_dialect, nsjail_server):
    async def run():
        engine = engine_for(vllm_server)
        try:
            async with AsyncSandboxClient(nsjail_server.address) as sandbox:
                # The server is shared with other tests (the front doors keep sessions of their own open):
                # what this solver opened must all be closed again.
                before = (await sandbox.info()).sessions_open
                solver = Solver(engine, tiny_dialect, sandbox, CONFIG)
                problems = fresh(1, 1) + fresh(2, 1)
                results = [(await solver.solve(p.text), p) for p in problems]
                return results, (await sandbox.info()).sessions_open - before
        finally:
            await engine.close()

    results, sessions_open = asyncio.run(run())
    for result, problem in results:
        check_loop(result, problem)
    assert any(s.tool_calls >= 2 and s.turns[1].status == "OK" for s in results[1][0].samples)
    assert sessions_open == 0


def test_early_stop_closes_the_streams_and_the_server_aborts(vllm_server, tiny_dialect):
    async def run():
        engine = engine_for(vllm_server)
        try:
            async with AsyncLocalSandbox(pool_size=1) as sandbox:
                solver = Solver(engine, tiny_dialect, sandbox, EARLY_STOP)
                return await solver.solve(fresh(2, 4)[-1].text), sandbox.pool.sessions_open
        finally:
            await engine.close()

    result, sessions_open = asyncio.run(run())
    assert sessions_open == 0
    assert result.early_stopped and result.answered
    assert sum(s.finish == "aborted" for s in result.samples) >= 1
    deadline = time.monotonic() + 10
    while requests_in_flight(vllm_server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert requests_in_flight(vllm_server) == 0
