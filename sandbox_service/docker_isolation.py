"""The `docker` isolation mode: each zygote in a container of the sandbox image, for hosts where nsjail
cannot run (macOS and Windows laptops with Docker Desktop, locked-down Linux).

The zygote protocol is length-prefixed frames over stdin/stdout, so a zygote is started as
`docker run -i --rm ... IMAGE python -I /sandbox/zygote.py`: the `docker` CLI carries stdin and stdout
to the container unchanged (no TTY, so no framing of its own), and `ZygoteProcess` drives it exactly as
it drives nsjail. The Docker SDK (the `docker` package) is used where a round trip is wanted and a
stream is not: to check that an engine answers and that the image is there before any zygote starts.

The container around a zygote: no network, a read-only root, a private size-capped tmpfs as the only
writable place, no /dev/shm (IPC mode none), memory and process caps, every capability dropped but the
four the zygote uses to give each session its own uid and to kill runaway cells (the same four nsjail
keeps), no-new-privileges, and the engine's default seccomp profile. Sessions run as their own uids
from a block this server claims on its host, as in the other modes.

`container_options` is a pure function (unit-tested everywhere); `run_argv` turns its result into the
`docker run` command line; `docker_launch` is what the pool calls.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field

from .isolation import JAIL_INSIDE_DIR, SANDBOX_ENV, SESSION_UIDS, UID_BLOCK, UID_ORIGIN, Launch, claim_uid_block

DEFAULT_IMAGE = "aimo-sandbox:latest"
IMAGE_PYTHON = "/opt/aimo-sandbox/python/bin/python3"  # the jail interpreter, as the Dockerfile installs it
ZYGOTE_CAPS = ("SETUID", "SETGID", "KILL", "CHOWN")  # what nsjail keeps for the zygote, too
LABEL = "io.aimo.sandbox.zygote"  # on every zygote container, so strays can be found: docker ps -f label=...
PROBE_TIMEOUT_S = 5
# The `docker` CLI needs these from our environment to find its engine; the zygote gets none of them.
CLI_ENV = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH",
           "DOCKER_TLS_VERIFY", "XDG_RUNTIME_DIR", "SSH_AUTH_SOCK")


@dataclass(frozen=True)
class DockerSettings:
    image: str = field(default_factory=lambda: os.environ.get("AIMO_SANDBOX_DOCKER_IMAGE", DEFAULT_IMAGE))
    python: str = IMAGE_PYTHON
    mem_limit: str = "4g"  # the whole zygote: all its sessions together (each session has its own rlimits)
    pids_limit: int = 1024
    cpus: float = 0.0  # 0: no CPU quota
    docker: str = "docker"  # the CLI


def container_options(name: str, settings: DockerSettings, tmpfs_mb: int, uid_base: int) -> dict:
    """The container around one zygote, as keyword arguments of the SDK's `containers.run`."""
    options = {
        "image": settings.image,
        "command": [settings.python, "-I", f"{JAIL_INSIDE_DIR}/zygote.py"],
        "name": name,
        "hostname": "sandbox",
        "user": "0:0",  # root in the container, with only ZYGOTE_CAPS: it switches each session to its own uid
        "environment": dict(SANDBOX_ENV),
        "working_dir": "/tmp",
        "network_mode": "none",
        "ipc_mode": "none",  # a private IPC namespace and no /dev/shm, a writable place nsjail does not give either
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={tmpfs_mb}m,mode=0711"},
        "mem_limit": settings.mem_limit,
        "memswap_limit": settings.mem_limit,  # equal: no swap on top
        "pids_limit": settings.pids_limit,
        "cap_drop": ["ALL"],
        "cap_add": list(ZYGOTE_CAPS),
        "security_opt": ["no-new-privileges"],  # and no seccomp option: the engine's default profile applies
        "stdin_open": True,  # the frame protocol comes in on stdin
        "auto_remove": True,
        "labels": {LABEL: "1", f"{LABEL}.uid-base": str(uid_base)},
    }
    if settings.cpus > 0:
        options["nano_cpus"] = int(settings.cpus * 1e9)
    return options


def run_argv(options: dict, docker: str = "docker") -> list[str]:
    """`docker run` with exactly the settings of `options` (the SDK's names). Unknown keys are refused, so
    the two spellings cannot drift apart."""
    options = dict(options)
    argv = [docker, "run"]
    if options.pop("stdin_open"):
        argv.append("--interactive")
    if options.pop("auto_remove"):
        argv.append("--rm")
    if options.pop("read_only"):
        argv.append("--read-only")
    flags = {"name": "--name", "hostname": "--hostname", "user": "--user", "working_dir": "--workdir",
             "network_mode": "--network", "ipc_mode": "--ipc", "mem_limit": "--memory",
             "memswap_limit": "--memory-swap", "pids_limit": "--pids-limit"}
    for key, flag in flags.items():
        argv += [flag, str(options.pop(key))]
    if "nano_cpus" in options:
        argv += ["--cpus", f"{options.pop('nano_cpus') / 1e9:g}"]
    for cap in options.pop("cap_drop"):
        argv += ["--cap-drop", cap]
    for cap in options.pop("cap_add"):
        argv += ["--cap-add", cap]
    for opt in options.pop("security_opt"):
        argv += ["--security-opt", opt]
    for path, mount_options in options.pop("tmpfs").items():
        argv += ["--tmpfs", f"{path}:{mount_options}"]
    for key, value in options.pop("environment").items():
        argv += ["--env", f"{key}={value}"]
    for key, value in options.pop("labels").items():
        argv += ["--label", f"{key}={value}"]
    image, command = options.pop("image"), options.pop("command")
    if options:
        raise ValueError(f"container options with no docker run flag: {sorted(options)}")
    return [*argv, image, *command]


def probe_engine(image: str) -> str:
    """Check that a Docker engine answers and holds `image`; return a line about it, or raise with the reason."""
    try:
        import docker
    except ImportError:
        raise RuntimeError("the docker isolation mode needs the Docker SDK: pip install docker") from None
    try:
        client = docker.from_env(timeout=PROBE_TIMEOUT_S)
    except docker.errors.DockerException as exc:
        raise RuntimeError(f"no Docker engine answers: {exc}") from None
    try:
        client.ping()
        version = client.version().get("Version", "?")
        try:
            found = client.images.get(image)
        except docker.errors.ImageNotFound:
            raise RuntimeError(f"image {image} is not on the Docker engine (docker compose build sandbox, "
                               f"or docker build --target sandbox -t {image} .)") from None
    except docker.errors.DockerException as exc:
        raise RuntimeError(f"the Docker engine did not answer: {exc}") from None
    finally:
        client.close()
    return f"Docker engine {version}, image {image} ({found.short_id})"


class DockerLaunch(Launch):
    """A zygote in a container: cleanup also removes the container, which outlives a killed `docker run`."""

    def __init__(self, *args, container: str, docker: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.container = container
        self.docker = docker

    def cleanup(self) -> None:
        if self.container:
            name, self.container = self.container, ""
            # Killing the `docker run` client (SIGKILL to its process group) leaves the container running,
            # so remove it here. Not waited for: cleanup runs on the event loop.
            try:
                subprocess.Popen([self.docker, "rm", "--force", name], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_cli_env(),
                                 start_new_session=True)
            except OSError:
                pass
        super().cleanup()


def _cli_env() -> dict[str, str]:
    return {k: os.environ[k] for k in CLI_ENV if k in os.environ}


def docker_launch(index: int, settings: DockerSettings, tmpfs_mb: int) -> DockerLaunch:
    docker_cli = shutil.which(settings.docker)
    if docker_cli is None:
        raise FileNotFoundError(f"no {settings.docker!r} command on PATH (the docker isolation mode drives the CLI)")
    probe_engine(settings.image)
    block, lock = claim_uid_block(index)
    uid_base = UID_ORIGIN + block * UID_BLOCK + 1
    name = f"aimo-zygote-{index}-{uuid.uuid4().hex[:12]}"
    options = container_options(name, settings, tmpfs_mb, uid_base)
    return DockerLaunch(
        argv=run_argv(options, docker_cli),
        env=_cli_env(),
        scratch="/tmp",
        uid_base=uid_base,
        uid_count=SESSION_UIDS,
        uid_lock=lock,
        container=name,
        docker=docker_cli,
    )


DOCKER_DETAIL = (
    "docker: each zygote in its own container of the sandbox image; no network, read-only root, private "
    "size-capped /tmp, no /dev/shm, memory and process caps, all capabilities dropped but setuid/setgid/kill/"
    "chown, no-new-privileges, the engine's default seccomp profile; each session its own uid with rlimits."
)
