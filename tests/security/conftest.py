"""One real server per isolation mode for the whole security package, each with its victim session."""

from __future__ import annotations

import pytest

from tests.conftest import nsjail_required

from .harness import Target

MODES = ("nsjail", "rlimit")


@pytest.fixture(scope="session")
def targets():
    started: dict[str, Target] = {}
    yield started
    for target in started.values():
        target.stop()


@pytest.fixture(params=MODES)
def target(request, targets) -> Target:
    """The server in this mode, started on first use; nsjail skips (CI: fails) where it cannot run."""
    mode = request.param
    if mode not in targets:
        try:
            targets[mode] = Target.start(mode)
        except (RuntimeError, TimeoutError) as exc:
            if mode == "nsjail" and not nsjail_required():
                pytest.skip(f"nsjail mode unavailable here: {str(exc)[-400:]}")
            raise
    return targets[mode]
