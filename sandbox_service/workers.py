"""`--workers N`: N server processes on one address, started and supervised by one parent.

One asyncio process dispatches every call of a plain server, so past a core or two a box's cores sit
idle. Here each worker is a whole `python -m sandbox_service` (its own gRPC server, event loop and zygote
pool) and binds the same port with SO_REUSEPORT, the way grpcio's multiprocessing example does it: the
kernel spreads new connections over the workers, and a connection, with every call and session stream on
it, stays on the worker that accepted it. Workers are started with exec, not fork (gRPC does not survive
a fork), and the parent never serves gRPC itself.

Health. A client's health check lands on whichever worker its connection reached, so every worker must
give the same answer: the parent tells them all (one line on their stdin, SERVING or NOT_SERVING) whether
all N are up, and a worker answers NOT_SERVING until told otherwise. When one dies, its siblings answer
NOT_SERVING until the parent's replacement is warm, so balancers and Kubernetes' readiness probe hold new
work off a box running short of a worker.

Metrics. prometheus-client's multiprocess mode: each worker writes its metrics to files in a private
folder and the parent serves their sum on the one metrics port, plus its own gauges (workers up,
replacements). One scrape target per box, however many workers; one port per worker would make every
scrape config know N.

The line protocol between parent and worker: the worker prints READY on stdout once it serves; the parent
writes SERVING / NOT_SERVING to its stdin; end of stdin (the parent is gone) makes the worker drain and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence

log = logging.getLogger("sandbox.workers")

READY = "READY"
STARTUP_TIMEOUT_S = 180.0
FAST_DEATH_S = 10.0  # a worker that dies sooner than this after starting is crash-looping: back off
MAX_BACKOFF_S = 30.0


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (a container's cpuset), not the box's
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_workers(value: str | int, cores: int | None = None) -> int:
    """`--workers`: a count, or `auto` (one per usable core). Below 1 is an error; more than the cores,
    a warning (they run, sharing cores, each with its own zygote pool)."""
    cores = cores or usable_cores()
    if str(value).strip().lower() == "auto":
        return cores
    try:
        count = int(value)
    except ValueError:
        raise SystemExit(f"--workers must be a whole number or 'auto', not {value!r}") from None
    if count < 1:
        raise SystemExit(f"--workers must be at least 1, not {count}")
    if count > cores:
        log.warning("--workers %d on %d usable cores: workers will share cores (and each holds its own "
                    "zygote pool), which adds memory and latency, not throughput", count, cores)
    return count


class Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False
        self.started_at = 0.0
        self.fast_deaths = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class Supervisor:
    """Start N workers, keep them running, tell them whether all are up, drain them all on SIGTERM."""

    def __init__(self, count: int, worker_args: Sequence[str], *, metrics_port: int = 0,
                 metrics_address: str = "127.0.0.1", grace_s: float = 10.0,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.workers = [Worker(i) for i in range(count)]
        self.worker_args = list(worker_args)
        self.metrics_port = metrics_port
        self.metrics_address = metrics_address
        self.grace_s = grace_s
        self.startup_timeout_s = startup_timeout_s
        self.stopping = asyncio.Event()
        self.metrics_dir = tempfile.mkdtemp(prefix="aimo-sandbox-metrics-")
        self._all_up: bool | None = None
        self.started = False  # all up once: from then on a dead worker is replaced, before it stops the whole
        self._watchers: set[asyncio.Task] = set()

    # --- metrics -------------------------------------------------------------------------------------
    def _serve_metrics(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.metrics_dir)
        Gauge("sandbox_workers", "Worker processes configured", registry=registry).set(len(self.workers))
        Gauge("sandbox_workers_up", "Worker processes up and serving", registry=registry).set_function(
            lambda: sum(w.ready and w.alive() for w in self.workers))
        self._replaced = Counter("sandbox_workers_replaced_total", "Workers that died and were replaced",
                                 registry=registry)
        if self.metrics_port:
            start_http_server(self.metrics_port, addr=self.metrics_address, registry=registry)

    # --- workers -------------------------------------------------------------------------------------
    async def _spawn(self, worker: Worker) -> None:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}
        argv = [sys.executable, "-m", "sandbox_service", *self.worker_args,
                "--workers", "1", "--worker-index", str(worker.index), "--metrics-port", "0"]
        worker.ready = False
        worker.started_at = time.monotonic()
        worker.proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
        log.info("worker %d started (pid %d)", worker.index, worker.pid)
        task = asyncio.get_running_loop().create_task(self._watch(worker, worker.proc))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _watch(self, worker: Worker, proc: asyncio.subprocess.Process) -> None:
        """Read the worker's READY, then wait for its end; a death outside shutdown gets a replacement."""
        assert proc.stdout is not None
        async for line in proc.stdout:
            if line.decode().strip() == READY and proc is worker.proc:
                worker.ready = True
                log.info("worker %d (pid %d) serving", worker.index, proc.pid)
                await self._broadcast()
        rc = await proc.wait()
        if proc is not worker.proc or self.stopping.is_set() or not self.started:
            return
        worker.ready = False
        self._mark_dead(proc.pid)
        lived = time.monotonic() - worker.started_at
        log.error("worker %d (pid %d) exited with %s after %.1fs; replacing it", worker.index, proc.pid, rc, lived)
        await self._broadcast()
        worker.fast_deaths = worker.fast_deaths + 1 if lived < FAST_DEATH_S else 0
        if worker.fast_deaths:
            delay = min(MAX_BACKOFF_S, 0.5 * 2 ** (worker.fast_deaths - 1))
            log.warning("worker %d died %d time(s) within %.0fs of starting; next start in %.1fs",
                        worker.index, worker.fast_deaths, FAST_DEATH_S, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
        if not self.stopping.is_set():
            self._replaced.inc()
            await self._spawn(worker)

    def _mark_dead(self, pid: int) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.metrics_dir)  # its live gauges stop counting

    async def _broadcast(self) -> None:
        """Tell every live worker whether all are up; they answer health checks with it."""
        all_up = all(w.ready and w.alive() for w in self.workers) and not self.stopping.is_set()
        word = ("SERVING" if all_up else "NOT_SERVING") + "\n"
        for worker in self.workers:
            if worker.alive() and worker.ready and worker.proc.stdin is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    worker.proc.stdin.write(word.encode())
                    await worker.proc.stdin.drain()
        if all_up != self._all_up:
            log.info("all %d workers up: %s", len(self.workers), all_up)
            self._all_up = all_up

    # --- the whole -----------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        try:
            self._serve_metrics()
            for worker in self.workers:
                await self._spawn(worker)
            failure = await self._started()
            if failure:
                log.error("%s; stopping", failure)
                return 1
            self.started = True
            await self.stopping.wait()
            log.info("shutting down %d workers (grace %.1fs)", len(self.workers), self.grace_s)
            return 0
        finally:
            self.stopping.set()
            await self._stop_all()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    async def _started(self) -> str:
        """'' once every worker is up; else why not (one died at start, or the deadline passed)."""
        deadline = time.monotonic() + self.startup_timeout_s
        while not all(w.ready for w in self.workers):
            for worker in self.workers:
                if not worker.alive():
                    return f"worker {worker.index} exited with {worker.proc.returncode} while starting"
            if self.stopping.is_set():
                return ""
            if time.monotonic() > deadline:
                return f"workers not all up after {self.startup_timeout_s:.0f}s"
            await asyncio.sleep(0.05)
        return ""

    async def _stop_all(self) -> None:
        """SIGTERM to each worker (each drains its calls within the grace period), SIGKILL what outlives it."""
        live = [w.proc for w in self.workers if w.alive()]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        if not live:
            return
        _, pending = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in live], timeout=self.grace_s + 20)
        for proc in live:
            if proc.returncode is None:
                log.error("worker pid %d did not stop in time; killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in pending:
            task.cancel()


async def serve_worker(server) -> None:
    """A supervised worker's life: serve, say READY, follow the parent's health word, drain on SIGTERM
    or when the parent goes away (end of stdin)."""
    await server.start()
    print(READY, flush=True)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def follow_parent() -> None:
        async for line in reader:
            word = line.decode().strip()
            if word in ("SERVING", "NOT_SERVING"):
                await server.set_serving(word == "SERVING")
        log.warning("the supervisor is gone; draining")
        stopping.set()

    follower = loop.create_task(follow_parent())
    await stopping.wait()
    follower.cancel()
    log.info("worker shutting down (grace %.1fs)", server.grace_s)
    await server.stop()
