"""The docker isolation mode: the container options everywhere; real zygote containers where an engine answers."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace

import pytest

from sandbox_service import docker_isolation as di
from sandbox_service.isolation import SANDBOX_ENV
from tests.conftest import skip_unless_required

SETTINGS = di.DockerSettings(image="aimo-sandbox:test", mem_limit="2g", pids_limit=256)


def opts(**changes) -> dict:
    settings = replace(SETTINGS, **changes)
    return di.container_options("aimo-zygote-0-abc", settings, tmpfs_mb=128, uid_base=200_001)


def test_container_options():
    o = opts()
    assert o["image"] == "aimo-sandbox:test"
    assert o["command"] == ["/opt/aimo-sandbox/python/bin/python3", "-I", "/sandbox/zygote.py"]
    assert o["network_mode"] == "none"
    assert o["read_only"] is True
    assert o["tmpfs"] == {"/tmp": "rw,noexec,nosuid,nodev,size=128m,mode=0711"}
    assert o["mem_limit"] == o["memswap_limit"] == "2g"
    assert o["pids_limit"] == 256
    assert o["cap_drop"] == ["ALL"]
    assert sorted(o["cap_add"]) == ["CHOWN", "KILL", "SETGID", "SETUID"]
    assert o["security_opt"] == ["no-new-privileges"]  # no seccomp= entry: the engine's default profile
    assert o["stdin_open"] is True and o["auto_remove"] is True
    assert o["ipc_mode"] == "none"
    assert o["user"] == "0:0"
    assert o["environment"] == SANDBOX_ENV and o["environment"] is not SANDBOX_ENV
    assert "nano_cpus" not in o
    assert opts(cpus=1.5)["nano_cpus"] == 1_500_000_000


def test_options_are_valid_sdk_arguments():
    """Every key is a keyword the Docker SDK's containers.run / create accepts."""
    docker = pytest.importorskip("docker", reason="the Docker SDK is in requirements/lint.txt")
    from docker.models.containers import RUN_CREATE_KWARGS, RUN_HOST_CONFIG_KWARGS

    known = set(RUN_CREATE_KWARGS) | set(RUN_HOST_CONFIG_KWARGS) | {"image", "command", "detach", "remove"}
    assert set(opts(cpus=1)) <= known, set(opts(cpus=1)) - known
    assert docker.__version__


def test_run_argv():
    argv = di.run_argv(opts(cpus=2), "/usr/bin/docker")
    assert argv[:2] == ["/usr/bin/docker", "run"]
    assert argv[-4:] == ["aimo-sandbox:test", "/opt/aimo-sandbox/python/bin/python3", "-I", "/sandbox/zygote.py"]
    flags = argv[2:-4]
    pairs = {(flags[i], flags[i + 1]) for i in range(len(flags) - 1)}
    for single in ("--interactive", "--rm", "--read-only"):
        assert single in flags
    for pair in [("--network", "none"), ("--ipc", "none"), ("--memory", "2g"), ("--memory-swap", "2g"),
                 ("--pids-limit", "256"), ("--cap-drop", "ALL"), ("--cap-add", "SETUID"), ("--cap-add", "KILL"),
                 ("--security-opt", "no-new-privileges"), ("--user", "0:0"), ("--workdir", "/tmp"),
                 ("--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=128m,mode=0711"), ("--cpus", "2"),
                 ("--name", "aimo-zygote-0-abc"), ("--env", "PYTHONHASHSEED=0"), ("--label", f"{di.LABEL}=1")]:
        assert pair in pairs, pair
    assert "--tty" not in flags and "-t" not in flags  # a TTY would mangle the binary frames
    assert not any("seccomp" in f or "privileged" in f for f in flags)


def test_run_argv_refuses_options_it_cannot_spell():
    with pytest.raises(ValueError, match="no docker run flag"):
        di.run_argv({**opts(), "privileged": True})


def test_probe_without_an_engine_says_why(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(RuntimeError, match="Docker"):
        di.probe_engine("aimo-sandbox:test")


def test_launch_without_an_engine_fails_before_claiming_anything(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    claimed = []
    monkeypatch.setattr(di, "claim_uid_block", lambda i: claimed.append(i) or (0, -1))
    with pytest.raises((RuntimeError, FileNotFoundError)):
        di.docker_launch(0, SETTINGS, 64)
    assert claimed == []


def test_cleanup_removes_the_container(monkeypatch):
    started = []
    monkeypatch.setattr(di.subprocess, "Popen", lambda argv, **kw: started.append(argv))
    launch = di.DockerLaunch(argv=["docker"], env={}, scratch="/tmp", uid_base=1, uid_count=1,
                             container="aimo-zygote-1-x", docker="/usr/bin/docker")
    launch.cleanup()
    launch.cleanup()  # idempotent: the second does nothing
    assert started == [["/usr/bin/docker", "rm", "--force", "aimo-zygote-1-x"]]


# -- with a Docker engine and the sandbox image ------------------------------------------------------------


@pytest.fixture(scope="module")
def engine_settings():
    settings = di.DockerSettings()
    try:
        di.probe_engine(settings.image)
    except RuntimeError as exc:
        # Not run in CI yet (tried on this machine kind): Debian's docker.io engine starts and a local
        # bookworm base with a 3.12 can be made (debootstrap 2.5 min), but the sandbox image's base
        # (python:3.12-slim) is on Docker Hub, out of reach, and pip inside the build fails TLS
        # verification (the machines reach PyPI through a certificate the image does not trust): issue 23.
        # Loud here, and a failure under AIMO_REQUIRE_DOCKER=1 once CI can build the image.
        skip_unless_required("AIMO_REQUIRE_DOCKER",
                             f"docker isolation tests need a Docker engine with the sandbox image: {exc}")
    return settings


async def start_zygote(settings: di.DockerSettings):
    from sandbox_service.limits import DEFAULT_LIMITS
    from sandbox_service.pool import DEFAULT_PRELOAD, DEFAULT_PRELUDE
    from sandbox_service.zygote_process import ZygoteProcess

    launch = di.docker_launch(0, settings, 64)
    config = {"preload": list(DEFAULT_PRELOAD), "prelude": DEFAULT_PRELUDE, "scratch": launch.scratch,
              "uid_base": launch.uid_base, "uid_count": launch.uid_count, "spares": 1,
              "default_limits": DEFAULT_LIMITS.for_zygote(), "env": SANDBOX_ENV}
    zygote = ZygoteProcess(0, launch, config)
    try:
        await zygote.start()
    except BaseException:
        launch.cleanup()
        raise
    return zygote, launch


def run_cell(zygote, code: str) -> dict:
    from sandbox_service.limits import DEFAULT_LIMITS

    message = {"op": "exec", "code": code, "limits": DEFAULT_LIMITS.for_zygote(), "seed": 0, "display": "pretty",
               "max_output_bytes": DEFAULT_LIMITS.max_output_bytes, "cell_index": 1}
    return zygote.call(message, 20_000)


def test_zygote_in_a_container(engine_settings):
    async def scenario():
        zygote, launch = await start_zygote(engine_settings)
        try:
            assert zygote.info.get("privileged") is True  # sessions get their own uids
            ok = await run_cell(zygote, "print(sympy.factorint(2**32 + 1))")
            assert ok["status"] == "OK", ok
            assert "641" in ok["stdout"]
            net = await run_cell(zygote, "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)")
            assert net["status"] == "ERROR", net
            ro = await run_cell(zygote, "open('/etc/x', 'w')")
            assert ro["status"] == "ERROR", ro
            shm = await run_cell(zygote, "import os\nprint(os.path.exists('/dev/shm'))")
            assert shm["stdout"].strip() == "False", shm
        finally:
            zygote.kill("test over", expected=True)
            await zygote.wait_closed()
        return launch

    launch = asyncio.run(scenario())
    for _ in range(50):  # cleanup removes the container in the background
        alive = subprocess.run(["docker", "ps", "-aq", "-f", f"name={launch.argv[launch.argv.index('--name') + 1]}"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        if not alive:
            break
        asyncio.run(asyncio.sleep(0.2))
    assert not alive, "the zygote's container outlived it"
