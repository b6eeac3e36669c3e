"""The container files' static checks (no Docker engine needed), and proof that they can fail."""

from __future__ import annotations

import subprocess

from tests.docker.conftest import ROOT, lint_tool


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, **kwargs)


def test_check_containers_script_passes():
    """hadolint, the compose schema and the install scripts' syntax, exactly as CI runs them."""
    done = run("bash", "scripts/check-containers.sh")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "check-containers: all passed" in done.stdout


def test_hadolint_fails_on_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n")
    done = run(lint_tool("hadolint"), "--config", "docker/hadolint.yaml", str(bad))
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # :latest
    assert "DL3008" in done.stdout  # unpinned apt package


def test_compose_schema_rejects_a_bad_file(tmp_path):
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  web:\n    image: x\n    cap_add: SYS_ADMIN\n    restart_policy: always\n")
    done = run(lint_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(bad))
    assert done.returncode != 0, done.stdout


def test_install_scripts_are_executable():
    for script in ("docker/install-sandbox.sh", "docker/install-solver.sh", "scripts/install-jail-python.sh",
                   "scripts/check-containers.sh"):
        assert (ROOT / script).stat().st_mode & 0o111, script
