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


@pytest.fixture(scope="session")
def fragile_targets():
    started: dict[str, Target] = {}
    yield started
    for target in started.values():
        _retire(target)


def _retire(target: Target) -> None:
    target.stop()
    target.reap()  # what an uncontained attack left on the host after its server


@pytest.fixture(params=MODES)
def fragile(request, fragile_targets) -> Target:
    """A server in this mode for an attack that may break it (issue 29): reused after an attack that was
    contained (`check_contained` passed) or left it intact, else stopped, its leftovers reaped, restarted."""
    mode = request.param
    target = fragile_targets.get(mode)
    if target is None or not (target.contained or target.intact()):
        if target is not None:
            _retire(target)
            del fragile_targets[mode]
        try:
            fragile_targets[mode] = target = Target.start(mode)
        except (RuntimeError, TimeoutError) as exc:
            if mode == "nsjail" and not nsjail_required():
                pytest.skip(f"nsjail mode unavailable here: {str(exc)[-400:]}")
            raise
    target.contained = False  # until this attack's check_contained passes
    target.old_folders = set()
    target.old_folders = {line.split(" is left over")[0] for line in target.folder_problems()}
    return target
