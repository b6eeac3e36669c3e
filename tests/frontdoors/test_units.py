"""The front doors' pure parts: limit capping, the notebook text, SandboxFusion's return codes."""

from __future__ import annotations

from sandbox_service.frontdoors.backend import capped
from sandbox_service.frontdoors.http_server import _return_code, run_code_response, with_stdin
from sandbox_service.frontdoors.notebook import NO_OUTPUT, notebook_text
from sandbox_service.limits import MAX_LIMITS
from sandbox_service.result import ExecResult


def test_limits_are_capped_not_refused_and_unset_ones_dropped():
    asked = {"timeout_ms": 10**9, "memory_bytes": 1 << 20, "max_output_bytes": None, "cpu_seconds": 0}
    assert capped(asked, MAX_LIMITS) == {"timeout_ms": MAX_LIMITS.timeout_ms, "memory_bytes": 1 << 20}


def test_notebook_text_orders_output_value_error_and_notes():
    result = ExecResult(status="TIMEOUT", stdout="partial\n", display="", stderr="warn\n", message="after 1 s",
                        state_rolled_back=True)
    assert notebook_text(result).splitlines() == [
        "partial", "warn", "[TIMEOUT: the cell ran past its time limit and was stopped; after 1 s]",
        "[the cell's changes to the session were undone: variables are as before it]"]
    assert notebook_text(ExecResult(status="OK", stdout="1\n", display="2")) == "1\n2"
    assert notebook_text(ExecResult(status="OK")) == NO_OUTPUT
    error = {"type": "NameError", "message": "x", "traceback": "Traceback ...\nNameError: x\n"}
    assert notebook_text(ExecResult(status="ERROR", error=error)) == "Traceback ...\nNameError: x"
    assert notebook_text(ExecResult(status="OK", display="1"), new_session=True, restarted=True).startswith(
        "[a new interpreter")


def test_run_code_return_codes_as_a_script_would_exit():
    assert _return_code(ExecResult(status="OK")) == 0
    assert _return_code(ExecResult(status="ERROR")) == 1
    assert _return_code(ExecResult(status="TIMEOUT")) is None
    assert _return_code(ExecResult(status="CRASHED", message="the interpreter exited (exit code 7)")) == 7
    assert _return_code(ExecResult(status="CRASHED", message="killed by SIGSEGV")) == -11
    body = run_code_response(ExecResult(status="TIMEOUT", wall_ms=1500.0))
    assert body["status"] == "Failed" and body["run_result"]["status"] == "TimeLimitExceeded"
    assert body["run_result"]["execution_time"] == 1.5


def test_stdin_becomes_the_scripts_standard_input():
    namespace: dict = {}
    exec(with_stdin("line = input()", "hello\n"), namespace)
    assert namespace["line"] == "hello"
    assert with_stdin("print(1)", None) == "print(1)"
