"""The build context `.dockerignore` leaves: everything the Dockerfile copies, nothing heavy or private.

Matched with the Docker SDK's own implementation of the engine's ignore rules, not a copy of them."""

from __future__ import annotations

import re

from docker.utils.build import exclude_paths

from .conftest import ROOT


def copied_sources() -> list[str]:
    """Every host path a `COPY` without `--from` names (the last word is the destination)."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w.rstrip("/") for w in words[1:-1] if not w.startswith("--")]
    return sources


def context() -> set[str]:
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    return exclude_paths(str(ROOT), patterns)


def test_every_copy_source_is_in_the_build_context():
    sent = context()
    sources = copied_sources()
    assert len(sources) >= 10, sources  # the parse found the Dockerfile's COPY lines
    missing = [s for s in sources if not any(p == s or p.startswith(s + "/") for p in sent)]
    assert not missing, f"excluded by .dockerignore but copied by the Dockerfile: {missing}"


def test_the_context_carries_no_environment_history_or_results():
    heavy = re.compile(r"^(\.venv|\.git|runs|\.hypothesis|\.pytest_cache|\.ruff_cache)(/|$)|__pycache__")
    leaked = sorted(p for p in context() if heavy.search(p))
    assert not leaked, leaked[:10]
