"""The HTTP drop-ins in front of a real nsjail sandbox: SandboxFusion's `/run_code` through the
`sandbox-fusion` client (sync and async, as verl calls it), NeMo-Skills' `/execute` in its wire format.

NeMo-Skills is not on PyPI, so its client cannot be installed here: `nemo_skills_execute` sends exactly what
`nemo_skills.code_execution.sandbox.LocalSandbox` sends (`_prepare_request`'s body, the `X-Session-ID`
header, `timeout + 5` on the client side) and reads the answer as it does.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import requests

from .conftest import wait_for_metric

pytestmark = pytest.mark.nsjail

sandbox_fusion = pytest.importorskip("sandbox_fusion")


def test_sandbox_fusion_client_runs_python(http_door):
    from sandbox_fusion import RunCodeRequest, RunStatus, run_code

    ok = run_code(RunCodeRequest(code="import sympy\nprint(sympy.factor('x**2-1'))", language="python"),
                  endpoint=http_door.url, max_attempts=1)
    assert ok.status == RunStatus.Success and ok.run_result.return_code == 0
    assert ok.run_result.stdout == "(x - 1)*(x + 1)\n" and ok.run_result.stderr == ""
    assert 0 < ok.run_result.execution_time < 10

    failed = run_code(RunCodeRequest(code="print('before')\n1/0", language="python"), endpoint=http_door.url,
                      max_attempts=1)
    assert failed.status == RunStatus.Failed and failed.run_result.return_code == 1
    assert failed.run_result.stdout == "before\n" and "ZeroDivisionError" in failed.run_result.stderr

    script = run_code(RunCodeRequest(code="41 + 1", language="python"), endpoint=http_door.url, max_attempts=1)
    assert script.run_result.stdout == ""  # a script shows no expression value, as python script.py


def test_sandbox_fusion_stdin_timeout_and_summary(http_door):
    from sandbox_fusion import RunCodeRequest, SummaryMapping, run_code, summary_run_code_result

    echoed = run_code(RunCodeRequest(code="print(sum(map(int, input().split())))", language="python",
                                     stdin="3 4 5\n"), endpoint=http_door.url, max_attempts=1)
    assert echoed.run_result.stdout == "12\n"
    slow = run_code(RunCodeRequest(code="while True:\n    pass", language="python", run_timeout=0.5),
                    endpoint=http_door.url, max_attempts=1)
    assert slow.run_result.status == "TimeLimitExceeded"
    mapping = SummaryMapping(RunTimeout="timeout", RunFailed="failed")
    assert summary_run_code_result(slow, mapping) == "timeout"
    assert summary_run_code_result(echoed, mapping) == "Success"


def test_sandbox_fusion_async_client_concurrently(http_door):
    from sandbox_fusion import RunCodeRequest
    from sandbox_fusion.async_client import run_code

    async def go():
        return await asyncio.gather(*(run_code(RunCodeRequest(code=f"print({i} ** 2)", language="python"),
                                               endpoint=http_door.url, max_attempts=1) for i in range(16)))

    answers = asyncio.run(go())
    assert [a.run_result.stdout for a in answers] == [f"{i * i}\n" for i in range(16)]


def test_verl_payload_with_memory_limit(http_door):
    """verl's SandboxFusion tool posts its own dict (with memory_limit_MB) through requests."""
    payload = {"compile_timeout": 10, "run_timeout": 10, "code": "x = bytearray(400 << 20)\nprint('big')",
               "stdin": "", "memory_limit_MB": 256, "language": "python", "files": {}, "fetch_files": []}
    reply = requests.post(f"{http_door.url}/run_code", json=payload, timeout=30)
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "Failed" and "MemoryError" in body["run_result"]["stderr"]
    payload.update(code="x = bytearray(100 << 20)\nprint('fits')")
    assert requests.post(f"{http_door.url}/run_code", json=payload, timeout=30).json()["run_result"]["stdout"] == \
        "fits\n"


def test_sandbox_fusion_client_sees_unsupported_language_as_an_error(http_door):
    from sandbox_fusion import RunCodeRequest, run_code

    with pytest.raises(Exception, match=r"responded with code 400.*python only"):
        run_code(RunCodeRequest(code="console.log(1)", language="nodejs"), endpoint=http_door.url, max_attempts=1)


def nemo_skills_execute(url: str, code: str, *, session_id: str | None, language: str = "ipython",
                        timeout: float = 10.0, max_output_characters: int = 1000) -> tuple[int, dict]:
    """One request exactly as NeMo-Skills' LocalSandbox sends it (see the module's docstring)."""
    body = {"generated_code": code, "std_input": "", "timeout": timeout, "language": language,
            "max_output_characters": max_output_characters, "traceback_verbosity": "Plain"}
    headers = {"Content-Type": "application/json"}
    if session_id is not None:
        headers["X-Session-ID"] = session_id
    reply = httpx.post(f"{url}/execute", json=body, headers=headers, timeout=timeout + 5.0)
    return reply.status_code, reply.json()


def test_nemo_skills_sessions_keep_state_per_session_id(http_door):
    url = http_door.url
    status, first = nemo_skills_execute(url, "x = 41\nx", session_id="rollout-1")
    assert status == 200 and first == {"process_status": "completed", "stdout": "41\n", "stderr": "",
                                       "new_session_created": True}
    _, second = nemo_skills_execute(url, "print(x + 1)", session_id="rollout-1")
    assert second["stdout"] == "42\n" and second["new_session_created"] is False
    _, other = nemo_skills_execute(url, "x", session_id="rollout-2")
    assert other["process_status"] == "error" and "NameError" in other["stderr"] and other["new_session_created"]
    _, error = nemo_skills_execute(url, "x = 0\n1/0", session_id="rollout-1")
    assert error["process_status"] == "error" and "ZeroDivisionError" in error["stderr"]
    assert nemo_skills_execute(url, "x", session_id="rollout-1")[1]["stdout"] == "0\n"  # as IPython keeps it


def test_nemo_skills_timeout_keeps_the_session(http_door):
    url = http_door.url
    nemo_skills_execute(url, "kept = 'yes'", session_id="slow")
    _, slow = nemo_skills_execute(url, "kept = 'no'\nwhile True:\n    pass", session_id="slow", timeout=0.5)
    assert slow["process_status"] == "timeout" and "timed out after 0.5 seconds" in slow["stderr"]
    _, after = nemo_skills_execute(url, "kept", session_id="slow")
    assert after["stdout"] == "'yes'\n" and after["new_session_created"] is False  # rolled back, not lost


def test_nemo_skills_stateless_python_and_output_cut(http_door):
    url = http_door.url
    _, run = nemo_skills_execute(url, "print('a' * 50)", session_id=None, language="python",
                                 max_output_characters=10)
    assert run == {"process_status": "completed", "stdout": "aaaaaaaaaa<output cut>", "stderr": ""}


def test_nemo_skills_session_list_and_delete(http_door, nsjail_server):
    url = http_door.url
    baseline = wait_for_metric(nsjail_server, "sandbox_sessions_open", len(httpx.get(f"{url}/sessions").json()
                                                                           ["sessions"]))
    nemo_skills_execute(url, "v = 1", session_id="to-delete")
    assert "to-delete" in httpx.get(f"{url}/sessions").json()["sessions"]
    assert httpx.delete(f"{url}/sessions/to-delete", headers={"X-Session-ID": "to-delete"}).status_code == 200
    assert wait_for_metric(nsjail_server, "sandbox_sessions_open", baseline) == baseline
    assert httpx.delete(f"{url}/sessions/to-delete").status_code == 404  # NeMo-Skills' client takes 404 as gone
    _, fresh = nemo_skills_execute(url, "v", session_id="to-delete")
    assert fresh["new_session_created"] and "NameError" in fresh["stderr"]
    assert httpx.get(f"{url}/health").json()["status"] == "healthy"
