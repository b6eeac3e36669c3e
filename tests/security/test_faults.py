"""Faults injected on purpose: a zygote or the server SIGKILLed mid-cell, SIGTERM with cells in flight,
and a pool whose warm-up cannot work. Each test starts its own small server (nsjail mode where it can)."""

from __future__ import annotations

import signal
import threading
import time

import psutil
import pytest

from sandbox_service import SandboxClient, SandboxError
from sandbox_service.spawn import ServerProcess
from tests.conftest import nsjail_required

from .harness import _children


def start(*args: str) -> ServerProcess:
    server = ServerProcess("--pool-size", "1", "--grace", "5", *args)
    try:
        server.wait_serving()
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        if "--isolation" in args and "nsjail" in args and not nsjail_required():
            pytest.skip(f"nsjail mode unavailable here: {str(exc)[-400:]}")
        raise
    return server


def zygote_of(server: ServerProcess) -> psutil.Process:
    for proc in _children(psutil.Process(server.proc.pid)):
        try:
            if "zygote.py" in " ".join(proc.cmdline()) and "zygote.py" not in " ".join(proc.parent().cmdline()):
                return proc
        except (psutil.Error, AttributeError):
            continue
    raise AssertionError("no zygote")


def run_in_thread(fn) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target() -> None:
        started = time.perf_counter()
        try:
            box["result"] = fn()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            box["error"] = exc
        box["seconds"] = time.perf_counter() - started

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


@pytest.mark.parametrize("mode", ["nsjail", "rlimit"])
def test_zygote_killed_mid_cell_gives_a_clear_error_and_is_replaced(mode):
    server = start("--isolation", mode)
    try:
        with SandboxClient(server.address) as client:
            thread, box = run_in_thread(lambda: client.execute("import time\ntime.sleep(30)", timeout_ms=60_000))
            time.sleep(0.5)
            zygote = zygote_of(server)
            killed_at = time.perf_counter()
            zygote.send_signal(signal.SIGKILL)  # the fault, on purpose
            thread.join(30)
            answered_after = time.perf_counter() - killed_at
            assert box["result"].status == "CRASHED", box
            assert "died" in box["result"].message
            # Answered on the death, not at the cell's 30 s end or its 60 s limit; generous for a loaded box.
            assert answered_after < 20, answered_after
            deadline = time.monotonic() + 60
            while client.info().zygotes_ready < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert client.info().zygotes_ready == 1
            assert client.execute("print(7 * 6)").stdout == "42\n"
            assert zygote_of(server).pid != zygote.pid
    finally:
        server.stop()


def test_server_killed_gives_unavailable_promptly_and_a_restart_serves():
    server = start("--isolation", "rlimit")
    address = server.address
    client = SandboxClient(address)
    try:
        assert client.execute("print(1)").ok
        thread, box = run_in_thread(lambda: client.execute("import time\ntime.sleep(30)", timeout_ms=60_000))
        time.sleep(0.5)
        tree = [p.pid for p in _children(psutil.Process(server.proc.pid))]
        killed_at = time.perf_counter()
        server.proc.send_signal(signal.SIGKILL)  # the fault, on purpose
        thread.join(30)
        assert time.perf_counter() - killed_at < 20  # on the kill, not at the cell's 30 s end
        assert isinstance(box.get("error"), SandboxError) and box["error"].code == "UNAVAILABLE", box
        started = time.perf_counter()
        with pytest.raises(SandboxError) as info:
            client.execute("print(1)")
        assert info.value.code == "UNAVAILABLE" and time.perf_counter() - started < 20  # refused, not queued
        # Everything the server started goes with it: zygotes see their pipe close, sessions their socket.
        deadline = time.monotonic() + 30
        while alive(tree):
            assert time.monotonic() < deadline, f"processes outlived the server: {alive(tree)}"
            time.sleep(0.1)
        server.stop()
        server = ServerProcess("--isolation", "rlimit", "--pool-size", "1", "--address", address)  # last wins
        server.address = address
        server.wait_serving()
        deadline = time.monotonic() + 60  # gRPC's reconnect backoff grows; generous on a loaded box
        while True:  # the same client, as a caller would keep it: its channel reconnects
            try:
                assert client.execute("print('back')").stdout == "back\n"
                break
            except SandboxError:
                assert time.monotonic() < deadline, "the old client never reached the restarted server"
                time.sleep(0.3)
    finally:
        client.close()
        server.stop()


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            continue
    return out


def test_sigterm_lets_cells_finish_and_refuses_new_calls():
    server = start("--isolation", "rlimit")
    try:
        with SandboxClient(server.address) as client:
            thread, box = run_in_thread(
                lambda: client.execute("import time\ntime.sleep(1.5)\nprint('finished')", timeout_ms=10_000)
            )
            time.sleep(0.3)
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            with pytest.raises(SandboxError) as info:
                client.execute("print(1)")
            assert info.value.code == "UNAVAILABLE"
            thread.join(10)
            assert box.get("result") is not None and box["result"].stdout == "finished\n", box
            assert server.proc.wait(10) == 0
    finally:
        server.stop()


@pytest.mark.parametrize("flag", ["--nsjail", "--jail-python"])
def test_nsjail_mode_refuses_to_start_without_a_working_jail(flag):
    server = ServerProcess("--isolation", "nsjail", "--pool-size", "1", flag, "/nonexistent")
    try:
        code = server.proc.wait(60)
        assert code != 0
        out = server.output()
        assert "refusing to start in nsjail mode" in out and "/nonexistent" in out, out
    finally:
        server.stop()


@pytest.mark.parametrize("flag", ["--nsjail", "--jail-python"])
def test_auto_mode_falls_back_to_rlimit_and_says_why(flag):
    server = start("--isolation", "auto", flag, "/nonexistent")
    try:
        with SandboxClient(server.address) as client:
            info = client.info()
            assert info.isolation == "rlimit"
            assert "auto fallback" in info.isolation_detail and "/nonexistent" in info.isolation_detail
            assert client.execute("print(1)").stdout == "1\n"
    finally:
        server.stop()
