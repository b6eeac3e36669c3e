"""Helpers for the container tests: compose.yaml read with its variables at their defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value):
    """Compose's ${VAR:-default} with nothing set: the defaults, as `docker compose config` would give."""
    if isinstance(value, str):
        return VAR.sub(lambda m: m.group(2) or "", value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def load_compose(path: Path = ROOT / "compose.yaml") -> dict:
    yaml = pytest.importorskip("yaml", reason="pyyaml is in requirements/lint.txt")
    return interpolate(yaml.safe_load(path.read_text()))


@pytest.fixture(scope="session")
def compose() -> dict:
    return load_compose()


def lint_tool(name: str) -> str:
    path = ROOT / ".venv" / "bin" / name
    if not path.exists():
        pytest.skip(f"{name} is not installed: scripts/check-containers.sh installs requirements/lint.txt")
    return str(path)
