"""The zygote: a warm interpreter that forks one process tree per session, inside the jail.

It reads frames from the server on stdin and answers on stdout. Per session it keeps two processes:

- the holder, a checkpoint of the session's state after its last finished cell, idle;
- the worker, forked from the holder before the next cell arrives, which runs that cell.

A cell that finishes (OK or a Python exception) is committed: the worker kills the holder and becomes
the new holder, then forks the next worker. A cell that times out, crashes or runs out of memory is
killed; the holder notices, forks a fresh worker from the state before that cell, and the session goes
on as if the cell never ran. Forking ahead keeps the fork off the next cell's critical path.

Each session runs as its own uid when the zygote may switch uids (root in a user namespace or on the
host), so a session's code can signal nothing but its own processes, `kill(-1)` sweeps exactly one
session, and RLIMIT_NPROC counts per session. Without that privilege (a plain unprivileged process, as
on Kaggle) sessions share the zygote's uid and process groups are the best sweep available.

Stdlib only at module level: the preloaded modules are named in the configuration frame.
"""

from __future__ import annotations

import collections
import ctypes
import fcntl
import gc
import importlib
import json
import os
import random
import resource
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cell as cellmod
import framing
import protocol
import reaper

LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
SESSION_NICE = 10
SWEEP_WAIT_S = 0.1  # how long a sweep waits for the processes it killed to be gone
FREEZE_CHECK_S = 0.002  # after an answer: a worker on a CPU that has not read our verdict computes on
FREEZE_GRACE_S = 0.2  # after an answer, time for a committing worker to fork its successor before the freeze
COMMITTING = ("OK", "ERROR")  # statuses whose state is kept, as Jupyter keeps it


def prctl(option: int, value: int) -> None:
    LIBC.prctl(option, value, 0, 0, 0)


# --------------------------------------------------------------------------------------------------
# Warm-up: everything imported here is shared copy-on-write by every session.


def warm_up(preload: list[str]) -> dict[str, str]:
    versions = {}
    for name in preload:
        module = importlib.import_module(name)
        versions[name] = str(getattr(module, "__version__", ""))
    if "sympy" in sys.modules:  # fill sympy's caches so the first factor() in a child is not cold
        import sympy

        x = sympy.Symbol("x")
        sympy.factor(x**12 - 1)
        sympy.solve(x**2 - 2, x)
        sympy.simplify(sympy.sin(x) ** 2 + sympy.cos(x) ** 2)
        sympy.isprime(2**61 - 1)
        sympy.Rational(3, 7) + sympy.Integer(2) ** 100
    if "numpy" in sys.modules:  # the legacy global generator is built lazily: build it once, here
        seed_generators(0)
        sys.modules["numpy"].random.random()
    if "mpmath" in sys.modules:
        import mpmath

        mpmath.mp.dps = 60
        mpmath.nstr(mpmath.pi, 50)
        mpmath.mp.dps = 15
    # Run a few cells here, so that the parser, compiler, display and traceback paths are warm in
    # every fork instead of cold in each new session.
    namespace: dict = {"__builtins__": __builtins__}
    for code in ("print(1)\n[1, 2]", "x = sum(range(10))\nx", "1/0", "{'a': [1] * 50}"):
        sink = cellmod.CappedStream(1 << 16, 1 << 20, lambda: None)
        cellmod.run_cell(code, namespace, cell_index=0, display="pretty", stdout=sink, stderr=sink)
        sink.getvalue()
    gc.collect()
    gc.freeze()  # keep the collector from touching (and so copying) the shared pages in children
    return versions


# --------------------------------------------------------------------------------------------------
# Inside a session: the holder and the worker.


class SessionProcess:
    """What a session's processes know about themselves (lives in the forked children only)."""

    def __init__(self, cfg: dict, uid: int | None, cell_fd: int, ctl_fd: int, limits: dict) -> None:
        self.cfg = cfg
        self.uid = uid
        self.cell_fd = cell_fd
        self.ctl_fd = ctl_fd
        self.limits = limits
        self.scratch = ""
        self.cgroup = ""  # its freezer cgroup, which this first holder joins before it runs anything
        self.namespace: dict = {}

    # -- setup, in the first holder --------------------------------------------------------------

    def become_session(self) -> None:
        os.setsid()
        if self.uid is not None and self.cfg.get("namespaces"):
            # Namespaces of its own, made while we still may (before the uid switch drops every
            # capability): SysV IPC objects and abstract unix sockets reach no other session, and die
            # with this session's last process.
            flags = CLONE_NEWIPC | (CLONE_NEWNET if "net" in self.cfg["namespaces"] else 0)
            if LIBC.unshare(flags) != 0:
                raise OSError(ctypes.get_errno(), "unshare of the session's namespaces")
        prctl(PR_SET_DUMPABLE, 0)  # no /proc/<pid>/mem, environ or fd peeking by anyone else
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        # Below the zygote and the server: however many cells spin, deadlines are enforced and health
        # answers on time. A cell cannot undo it (lowering niceness needs a privilege it lacks).
        os.nice(SESSION_NICE)
        os.umask(0o077)
        self.scratch = os.path.join(self.cfg["scratch"], f"s{self.uid if self.uid is not None else os.getpid()}")
        # The scratch root is not writable by sessions: each gets one private folder, made here.
        os.makedirs(self.scratch, mode=0o700, exist_ok=True)
        if self.cgroup:  # as root still: the cgroup's files are root's, no session can move itself out
            with open(os.path.join(self.cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        if self.uid is not None:
            os.chown(self.scratch, self.uid, self.uid)
            os.setgroups([])
            os.setresgid(self.uid, self.uid, self.uid)
            os.setresuid(self.uid, self.uid, self.uid)  # drops every capability
        clear_folder(self.scratch)  # whatever a killed predecessor with this uid left behind
        os.chdir(self.scratch)
        os.environ.clear()
        os.environ.update(self.cfg["env"], HOME=self.scratch, TMPDIR=self.scratch)
        tempfile.tempdir = self.scratch
        self.apply_limits()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes fail with EFBIG, not a kill
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(self.cfg["prelude"], "<prelude>", "exec"), self.namespace)

    def apply_limits(self) -> None:
        lim = self.limits
        mem = lim["memory_bytes"]
        cpu = lim["cpu_seconds"]
        for which, value in (
            (resource.RLIMIT_AS, mem),
            (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_FSIZE, lim["max_file_bytes"]),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_NOFILE, 256),
        ):
            soft, hard = value if isinstance(value, tuple) else (value, value)
            resource.setrlimit(which, (soft, hard))
        if self.uid is not None:  # per-uid: only meaningful when the session has a uid of its own
            nproc = lim["max_processes"] + 2  # + the holder and the worker themselves
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    def sweep(self, wait_for: int | None = None) -> None:
        """Kill every other process of this session: strays, daemons, the previous holder or worker.

        Then wait until `wait_for` (the previous holder, on a commit) is dead: the zygote freezes the
        session once its next worker is announced, and a frozen process does not act on a pending SIGKILL."""
        if self.uid is None:
            return
        try:
            os.kill(-1, signal.SIGKILL)  # as this uid: exactly this session's processes, minus me
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + SWEEP_WAIT_S
        while wait_for is not None and process_state(wait_for) not in ("", "Z", "X") and time.monotonic() < deadline:
            time.sleep(0.0002)

    # -- the holder ---------------------------------------------------------------------------------

    def run(self) -> None:
        """The session's life: fork a worker, hold the state, roll back when a worker dies."""
        while True:
            pid = os.fork()
            if pid == 0:
                self.work()  # returns only once a cell committed: this process is now the holder
                continue
            self.hold(pid)

    def hold(self, worker: int) -> None:
        framing.write_frame(self.ctl_fd, {"event": "worker", "pid": worker, "holder": os.getpid()})
        pidfd = os.pidfd_open(worker)
        sel = selectors.DefaultSelector()
        sel.register(pidfd, selectors.EVENT_READ)
        sel.register(self.ctl_fd, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                if key.fd == pidfd:
                    _, status = os.waitpid(worker, 0)
                    if os.WIFSIGNALED(status) and self.uid is None:
                        self._kill_group(worker)
                    self.sweep()
                    framing.write_frame(self.ctl_fd, {"event": "worker_died", "pid": worker, "status": status})
                    os.close(pidfd)
                    sel.close()
                    return  # fork a fresh worker from the unchanged state
                message = self._read_ctl()
                if message is None or message.get("op") == "close":
                    self.close(worker)

    def _read_ctl(self) -> dict | None:
        try:
            return framing.read_frame(self.ctl_fd)
        except (OSError, framing.FrameError, ValueError):
            return None

    def _kill_group(self, pgid: int) -> None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self, worker: int) -> None:
        # Courtesy only: the zygote's reaper kills this uid from outside and removes the folder as root.
        self.sweep()
        if self.uid is None:
            self._kill_group(worker)
            os.kill(worker, signal.SIGKILL)
        os._exit(0)

    # -- the worker ---------------------------------------------------------------------------------

    def work(self) -> None:
        if self.uid is None:
            os.setpgid(0, 0)  # a group of its own, so a rollback can kill what the cell started
        while True:
            message = self._read_cell_message()
            op = message.get("op")
            if op == "seed":
                seed_generators(message["seed"])
            elif op == "run":
                framing.write_frame(self.cell_fd, self.execute(message))
                if self._read_cell_message().get("op") != "commit":
                    os._exit(0)
                self.commit()
                return
            else:
                os._exit(3)

    def _read_cell_message(self) -> dict:
        try:
            message = framing.read_frame(self.cell_fd)
        except (OSError, framing.FrameError, ValueError):
            message = None
        if message is None:  # the zygote is gone: nothing left to serve
            os._exit(0)
        return message

    def commit(self) -> None:
        holder = os.getppid()
        self.sweep(wait_for=holder)
        if self.uid is None:
            try:
                os.kill(holder, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def execute(self, message: dict) -> dict:
        rid = message["rid"]
        cap = message["max_output_bytes"]
        flood = max(8 * cap, 1 << 20)

        def flooded() -> None:
            # Answer now with what was kept, then wait to be killed: the zygote rolls this cell back.
            result = self._finish(rid, {"status": "OUTPUT_LIMIT_EXCEEDED", "display": ""}, out, err, start)
            result["result"]["message"] = f"output passed {flood} bytes; the cell was stopped"
            framing.write_frame(self.cell_fd, result)
            while True:
                signal.pause()

        out = cellmod.CappedStream(cap, flood, flooded)
        err = cellmod.CappedStream(cap, flood, flooded)
        start = time.perf_counter()
        fields = cellmod.run_cell(
            message["code"],
            self.namespace,
            cell_index=message["cell_index"],
            display=message["display"],
            stdout=out,
            stderr=err,
        )
        return self._finish(rid, fields, out, err, start)

    @staticmethod
    def _finish(rid: str, fields: dict, out: cellmod.CappedStream, err: cellmod.CappedStream, start: float) -> dict:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        fields["stdout"], fields["stdout_truncated"] = out.getvalue()
        fields["stderr"], fields["stderr_truncated"] = err.getvalue()
        fields["wall_ms"] = cellmod.elapsed_ms(start)
        fields["cpu_ms"] = (usage.ru_utime + usage.ru_stime) * 1000.0
        fields["peak_memory_bytes"] = usage.ru_maxrss * 1024
        return {"rid": rid, "result": protocol.fit_budget(fields)}


def clear_folder(path: str) -> None:
    """Empty a folder, keeping the folder itself."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def seed_generators(seed: int) -> None:
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % 2**32)


# --------------------------------------------------------------------------------------------------
# The zygote itself.


class Session:
    """The zygote's view of one session."""

    def __init__(self, sid: str, uid: int | None, cell: socket.socket, ctl: socket.socket, limits: dict) -> None:
        self.sid = sid
        self.uid = uid
        self.cell = cell
        self.ctl = ctl
        self.limits = limits
        # Bounded by what a legitimate frame can be: a result within the answer budget, a small event.
        self.cell_buf = framing.FrameBuffer(protocol.MAX_RESULT_FRAME)
        self.ctl_buf = framing.FrameBuffer(protocol.MAX_EVENT_FRAME)
        self.frames = 0  # frames received since the last cell started: a flood is a violation
        self.recent_rids: collections.deque[str] = collections.deque(maxlen=4)  # late results are no news
        self.holder: int | None = None
        self.leader: int | None = None  # the first holder, forked by us: it called setsid(), so its pid is
        # the process session of every process of this session (the only pid here not told by the session)
        self.worker: int | None = None
        self.pending: dict | None = None  # the run in flight: rid, deadline, started
        self.kill_next_worker = False  # a deadline passed before we learnt the worker's pid
        self.killed: set[int] = set()  # workers we killed: their deaths are not news
        self.stateless = False  # one stateless call, then closed and reaped: no session serves two calls
        self.folder = ""  # its private folder, removed by the reaper once its processes are dead
        self.cgroup = ""  # its freezer cgroup: frozen between cells, so nothing computes after an answer
        self.frozen = False
        self.closed = False

    @property
    def ready(self) -> bool:
        return self.pending is None and self.worker is not None


class Zygote:
    def __init__(self, cfg: dict, server_in: int, server_out: int, reaper_fds: tuple[int, int] | None = None) -> None:
        self.cfg = cfg
        self.server_in = server_in
        self.server_out = server_out
        self.server_buf = framing.FrameBuffer(protocol.MAX_SERVER_FRAME)
        self.sel = selectors.DefaultSelector()
        self.sessions: dict[str, Session] = {}
        self.spares: list[Session] = []  # idle sessions, forked ahead for the next open
        # The reaper (see reaper.py): jobs go down `reap_jobs`, each answered by its uid on `reap_done`.
        self.reap_jobs, self.reap_done = reaper_fds if reaper_fds else (-1, -1)
        self.reap_buf = b""
        self.by_fd: dict[int, tuple[Session, str]] = {}
        self.privileged = cfg["uid_count"] > 0 and os.geteuid() == 0
        self.free_uids = collections.deque(range(cfg["uid_base"], cfg["uid_base"] + cfg["uid_count"]))
        self.spare_counter = 0
        # Sessions to freeze even if no new worker is announced: when, and whether only if still computing.
        self.freeze_due: dict[Session, tuple[float, bool]] = {}
        self.start_failures = 0  # consecutive sessions that failed to start: stop spawning spares
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel.register(self.wake_r, selectors.EVENT_READ)
        self.sel.register(server_in, selectors.EVENT_READ)
        if self.reap_done >= 0:
            self.sel.register(self.reap_done, selectors.EVENT_READ)

    def send(self, message: dict) -> None:
        framing.write_frame(self.server_out, message)

    # -- sessions -----------------------------------------------------------------------------------

    def spawn(self, sid: str, limits: dict) -> Session:
        uid = None
        if self.privileged:
            if not self.free_uids:
                raise RuntimeError("no free session uid in this zygote")
            uid = self.free_uids.popleft()
        cgroup = ""
        if self.cfg.get("freezer") and uid is not None:
            cgroup = os.path.join(self.cfg["freezer"], f"s{uid}")
            os.makedirs(cgroup, exist_ok=True)  # one per uid, kept: a uid's next session reuses it
        z_cell, s_cell = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        z_ctl, s_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        session = Session(sid, uid, z_cell, z_ctl, limits)
        pid = os.fork()
        if pid == 0:
            try:
                keep = {s_cell.fileno(), s_ctl.fileno()}
                os.closerange(3, min(keep))
                for fd in range(min(keep) + 1, max(keep)):
                    _close_quietly(fd)
                os.closerange(max(keep) + 1, 1 << 16)
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):  # user code's fd-level writes go nowhere, never to the server's log
                    os.dup2(devnull, fd)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                proc = SessionProcess(self.cfg, uid, s_cell.fileno(), s_ctl.fileno(), limits)
                proc.cgroup = cgroup
                proc.become_session()
                proc.run()
            except BaseException as exc:  # noqa: BLE001 - a broken session must never return into the zygote
                try:
                    framing.write_frame(s_ctl.fileno(), {"event": "failed", "error": repr(exc)})
                finally:
                    os._exit(70)
        s_cell.close()
        s_ctl.close()
        session.holder = session.leader = pid
        session.cgroup = cgroup
        session.folder = os.path.join(self.cfg["scratch"], f"s{uid if uid is not None else pid}")
        for sock, kind in ((z_cell, "cell"), (z_ctl, "ctl")):
            sock.setblocking(False)
            self.by_fd[sock.fileno()] = (session, kind)
            self.sel.register(sock.fileno(), selectors.EVENT_READ)
        return session

    def can_spawn(self) -> bool:
        return (self.free_uids or not self.privileged) and self.start_failures < 3

    def refill_spares(self) -> None:
        # Twice the configured number: stateless calls take spares too (each call a session of its own).
        while len(self.spares) < 2 * self.cfg["spares"] and self.can_spawn():
            self.spare_counter += 1
            self.spares.append(self.spawn(f"spare-{self.spare_counter}", self.cfg["default_limits"]))

    def runner_for(self, rid: str, limits: dict, seed: int) -> Session:
        """A session for one stateless call: a warm spare, used once, then reaped whole.

        Never a runner serving call after call: whatever a call leaves (a daemon holding the session's
        sockets, a stopped holder, an opened folder) would meet the next caller."""
        session = self.open(rid, limits, seed)
        session.stateless = True
        return session

    def open(self, sid: str, limits: dict, seed: int) -> Session:
        if limits == self.cfg["default_limits"] and self.spares:
            session = self.spares.pop(0)
            session.sid = sid
        else:
            session = self.spawn(sid, limits)
        self.sessions[sid] = session
        self.send_to(session, session.cell, {"op": "seed", "seed": seed})
        return session

    def send_to(self, session: Session, sock: socket.socket, message: dict) -> None:
        """Write a frame to a session; a session that does not take it within a second is lost."""
        try:
            sock.settimeout(1.0)
            sock.sendall(framing.encode(message))
            sock.setblocking(False)
        except OSError:
            self.on_session_lost(session)

    def close(self, session: Session) -> None:
        """End a session from outside: its sockets closed, every process of it killed, its folder removed
        by the reaper, and its uid free again only after that."""
        if session.closed:
            return
        session.closed = True
        session.pending = None
        self.freeze_due.pop(session, None)
        self.set_frozen(session, False)  # a frozen process takes no SIGKILL: thaw, so the reaper's kill lands
        self.sessions.pop(session.sid, None)
        if session in self.spares:
            self.spares.remove(session)
        # Its holder and worker at once, from here (the reaper then takes whatever else runs as its uid):
        # what they hold (IPC namespace, memory) starts to go before the caller has its answer.
        self.kill_session_processes(session)
        for sock in (session.cell, session.ctl):
            self.by_fd.pop(sock.fileno(), None)
            self.sel.unregister(sock.fileno())
            sock.close()
        self.reap_session(session.uid, session.folder)

    def reap_session(self, uid: int | None, folder: str) -> None:
        if self.reap_jobs >= 0:
            try:
                os.write(self.reap_jobs, (json.dumps({"uid": uid, "folder": folder}) + "\n").encode())
                return
            except OSError:
                self.reap_jobs = -1  # the reaper died (only possible without uids): clean up here instead
        if uid is not None:
            reaper.kill_uid(uid)
        reaper.remove(folder)
        self.on_reaped(uid)

    def on_reaped(self, uid: int | None) -> None:
        if uid is not None:
            self.free_uids.append(uid)  # nothing of the session it served is left: it may serve another

    def read_reaper(self) -> None:
        data = os.read(self.reap_done, 1 << 16)
        if not data:
            self.sel.unregister(self.reap_done)
            self.reap_jobs = -1
            return
        self.reap_buf += data
        *lines, self.reap_buf = self.reap_buf.split(b"\n")
        for line in lines:
            self.on_reaped(json.loads(line))

    def set_frozen(self, session: Session, frozen: bool) -> None:
        """Freeze (or thaw) every process of the session at once, from outside it."""
        if not session.cgroup or session.frozen == frozen:
            return
        try:
            with open(os.path.join(session.cgroup, "freezer.state"), "w") as f:
                f.write("FROZEN" if frozen else "THAWED")
            session.frozen = frozen
        except OSError:
            pass

    def settle(self, session: Session) -> None:
        """The session answered: freeze it once its next worker is announced, or after a short grace;
        sooner if 2 ms later its worker is on a CPU and has not read our verdict (an honest one is blocked
        reading it by then, or busy committing after it).

        Freezing early is never wrong, only slower: a worker frozen in the middle of its commit finishes
        it when the next cell thaws the session."""
        if session.cgroup and not session.stateless and not session.closed:
            self.freeze_due[session] = (time.monotonic() + FREEZE_CHECK_S, True)

    def freeze_when_due(self, now: float) -> float | None:
        soonest = None
        for session, (due, only_if_running) in list(self.freeze_due.items()):
            if session.closed or session.pending is not None:
                del self.freeze_due[session]
            elif due > now:
                soonest = due - now if soonest is None else min(soonest, due - now)
            elif only_if_running and not (session.worker is not None and process_state(session.worker) == "R"
                                          and unread_bytes(session.cell) > 0):
                self.freeze_due[session] = (due - FREEZE_CHECK_S + FREEZE_GRACE_S, False)
                soonest = 0.0 if soonest is None else soonest
            else:
                del self.freeze_due[session]
                self.set_frozen(session, True)
        return soonest

    def kill_worker(self, session: Session) -> None:
        """Kill the session's worker (its holder then rolls back), or the next one if not yet known."""
        if session.worker is None:
            session.kill_next_worker = True
            return
        session.killed.add(session.worker)
        if not self._kill(session, session.worker):
            self.on_session_lost(session)  # all of it was killed: let no one else be routed to it
            return
        session.worker = None

    def _kill(self, session: Session, pid: int) -> bool:
        """SIGKILL the session's worker `pid`; False if the whole session had to be killed instead."""
        # The pid came from a session's own processes, which run untrusted code. Kill it only while it
        # belongs to the session (its uid; without uids, its holder's process session); if it does not
        # (a forged pid, or one already gone), end every process of the session instead, so that its
        # real worker cannot run on.
        if not self._owned(session, pid):
            self.kill_session_processes(session)
            return False
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        return True

    @staticmethod
    def _owned(session: Session, pid: int) -> bool:
        if session.uid is not None:
            return process_uid(pid) == session.uid
        try:
            return session.leader is not None and os.getsid(pid) == session.leader
        except OSError:
            return False

    # -- cells --------------------------------------------------------------------------------------

    def run(self, session: Session, message: dict) -> None:
        if session.pending is not None:
            self.answer(message["rid"], rejected("a cell is already running in this session"))
            return
        timeout_ms = message["timeout_ms"]
        session.frames = 0
        session.recent_rids.append(message["rid"])
        self.freeze_due.pop(session, None)
        self.set_frozen(session, False)
        session.pending = {
            "rid": message["rid"],
            "started": time.monotonic(),
            "deadline": time.monotonic() + timeout_ms / 1000.0,
            "timeout_ms": timeout_ms,
        }
        self.send_to(session, session.cell, {k: message[k] for k in RUN_FIELDS} | {"op": "run"})

    def cancel(self, rid: str) -> None:
        for session in list(self.sessions.values()):
            if session.pending is not None and session.pending["rid"] == rid:
                session.pending = None
                if session.stateless:
                    self.close(session)
                else:
                    self.kill_worker(session)

    def answer(self, rid: str, result: dict) -> None:
        self.send({"rid": rid, "result": result})

    def on_result(self, session: Session, frame: object) -> None:
        rid, result = protocol.check_cell_frame(frame)
        pending = session.pending
        if pending is None or rid != pending["rid"]:
            if rid in session.recent_rids:
                return  # the answer of a cell that was killed as it finished: its caller has its answer
            raise protocol.Violation("a result for no request of this session")
        session.pending = None
        committed = result["status"] in COMMITTING
        result["state_rolled_back"] = not committed and not session.stateless
        if session.stateless:
            self.close(session)  # nothing to keep: the whole session is reaped (killed before the answer)
            self.answer(pending["rid"], result)
            return
        self.answer(pending["rid"], result)
        self.settle(session)
        if committed:
            session.worker = None  # it becomes the holder; its successor's pid comes in a "worker" event
            self.send_to(session, session.cell, {"op": "commit"})
        else:
            self.kill_worker(session)

    def on_worker_died(self, session: Session, status: int) -> None:
        pending = session.pending
        if pending is None:
            return
        session.pending = None
        result = died_result(status, pending)
        result["state_rolled_back"] = not session.stateless
        self.answer(pending["rid"], result)
        self.settle(session)
        if session.stateless:
            self.close(session)

    def expire(self, now: float) -> float | None:
        """Kill cells past their deadline; return the time until the next deadline."""
        soonest = self.freeze_when_due(now)
        for session in list(self.sessions.values()):
            pending = session.pending
            if pending is None:
                continue
            left = pending["deadline"] - now
            if left > 0:
                soonest = left if soonest is None else min(soonest, left)
                continue
            session.pending = None
            self.kill_worker(session)
            self.answer(
                pending["rid"],
                {
                    "status": "TIMEOUT",
                    "message": f"the cell ran past its {pending['timeout_ms']} ms limit and was killed",
                    "wall_ms": (now - pending["started"]) * 1000.0,
                    "state_rolled_back": not session.stateless,
                },
            )
            if session.stateless:
                self.close(session)
            else:
                self.settle(session)
        return soonest

    # -- the loop -----------------------------------------------------------------------------------

    def on_server(self, message: dict) -> None:
        op = message.get("op")
        if op == "exec":
            self.run(self.runner_for(message["rid"], message["limits"], message["seed"]), message)
        elif op == "open":
            self.open(message["sid"], message["limits"], message["seed"])
        elif op == "run":
            session = self.sessions.get(message["sid"])
            if session is None:
                self.answer(message["rid"], rejected("no such session (it was closed or lost)"))
            else:
                self.run(session, message)
        elif op == "close":
            session = self.sessions.get(message["sid"])
            if session is not None:
                self.close(session)
        elif op == "cancel":  # the caller of a stateless call went away
            self.cancel(message["rid"])

    def on_session_frame(self, session: Session, kind: str, frame: object) -> None:
        session.frames += 1
        if session.frames > protocol.MAX_FRAMES_PER_CELL:
            raise protocol.Violation(f"more than {protocol.MAX_FRAMES_PER_CELL} frames for one cell")
        if kind == "cell":
            self.on_result(session, frame)
            return
        frame = protocol.check_event(frame)
        event = frame["event"]
        if event == "worker":
            session.worker = frame["pid"]
            session.holder = frame["holder"]
            self.start_failures = 0
            if session.pending is None and not session.stateless:
                self.freeze_due.pop(session, None)
                self.set_frozen(session, True)  # idle with its next worker ready: nothing runs until a cell
            if session.kill_next_worker:
                session.kill_next_worker = False
                self.kill_worker(session)
        elif event == "worker_died":
            if frame["pid"] in session.killed:
                session.killed.discard(frame["pid"])
            else:
                self.on_worker_died(session, frame["status"])
        elif event == "failed":
            self.start_failures += 1
            if not getattr(session, "failure_logged", False):  # a cell can write this frame too: log it once
                session.failure_logged = True
                error = frame["error"][:500]
                self.send({"event": "log", "message": f"session {session.sid} failed: {error}"})

    def read_session(self, fd: int) -> None:
        session, kind = self.by_fd[fd]
        sock = session.cell if kind == "cell" else session.ctl
        buf = session.cell_buf if kind == "cell" else session.ctl_buf
        try:
            data = sock.recv(1 << 20 if kind == "cell" else 4 * protocol.MAX_EVENT_FRAME)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the session's processes are all gone
            self.on_session_lost(session)
            return
        # The worker runs the cell's code, which can write anything to these sockets: whatever it sends
        # (too long, undecodable, off the schema, out of turn, too many) ends that session alone, never
        # the zygote and its other sessions. Nothing raised while handling a session escapes this loop.
        try:
            for frame in buf.feed(data):
                if session.closed:
                    return
                self.on_session_frame(session, kind, frame)
        except protocol.Violation as exc:
            self.on_violation(session, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug here must still cost one session, not all of them
            self.on_violation(session, f"internal error {type(exc).__name__}")

    def on_violation(self, session: Session, reason: str) -> None:
        """A session broke the protocol: kill every process of it, answer its caller, forget it."""
        if session.closed:
            return
        self.kill_session_processes(session)
        self.on_session_lost(session, f"the session broke the sandbox protocol ({reason[:200]}) and was ended")

    def kill_session_processes(self, session: Session) -> None:
        """SIGKILL the session's holder and worker from here, whatever they do (stopped, dead, lying), and
        without uids their process groups."""
        for pid in (session.worker, session.holder):
            if pid is not None and self._owned(session, pid):
                for kill in (os.killpg, os.kill) if session.uid is None else (os.kill,):
                    try:
                        kill(pid, signal.SIGKILL)
                    except OSError:
                        pass

    def on_session_lost(self, session: Session, reason: str = "the session's processes died") -> None:
        pending = session.pending
        session.pending = None
        if pending is not None:
            self.answer(pending["rid"], {"status": "CRASHED", "message": reason, "state_rolled_back": True})
        self.close(session)

    def reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def serve(self) -> None:
        self.refill_spares()
        while True:
            timeout = self.expire(time.monotonic())
            for key, _ in self.sel.select(timeout):
                fd = key.fd
                if fd == self.wake_r:
                    os.read(fd, 4096)
                    self.reap()
                elif fd == self.server_in:
                    data = os.read(fd, 1 << 20)
                    if not data:
                        return
                    for message in self.server_buf.feed(data):
                        self.on_server(message)
                elif fd in self.by_fd:
                    self.read_session(fd)
                elif fd == self.reap_done:
                    self.read_reaper()
            # Forking a spare takes a core for a few ms: never while a cell waits for its answer.
            if not any(session.pending for session in self.sessions.values()):
                self.refill_spares()


RUN_FIELDS = ("rid", "code", "display", "max_output_bytes", "cell_index")


def rejected(reason: str) -> dict:
    return {"status": "REJECTED", "message": reason, "state_rolled_back": False}


def died_result(status: int, pending: dict) -> dict:
    """Classify a worker that died without answering."""
    wall_ms = (time.monotonic() - pending["started"]) * 1000.0
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return {"status": "TIMEOUT", "message": "the cell used up its CPU time limit", "wall_ms": wall_ms}
        if sig == signal.SIGKILL:
            return {"status": "MEMORY_EXCEEDED", "message": "the cell was killed (out of memory)", "wall_ms": wall_ms}
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return {"status": "CRASHED", "message": f"the interpreter died of signal {name}", "wall_ms": wall_ms}
    code = os.WEXITSTATUS(status)
    return {"status": "CRASHED", "message": f"the cell exited the interpreter (exit code {code})", "wall_ms": wall_ms}


def unread_bytes(sock: socket.socket) -> int:
    """Bytes we sent on a unix socket that its peer has not read yet (SIOCOUTQ)."""
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    except OSError:
        return 0


def process_state(pid: int) -> str:
    """The state letter of a live process (R running, S sleeping, ...); "" when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return ""


def process_uid(pid: object) -> int | None:
    """The real uid of a live process (from its status, readable even when it is not dumpable);
    None when it is gone; -1 when `pid` is not a plausible pid at all."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return -1
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def start_reaper(scratch: str) -> tuple[int, int]:
    """Fork the reaper; return (where to write jobs, where its answers come)."""
    jobs_r, jobs_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    if os.fork() == 0:
        try:
            home = os.path.join(scratch, ".reaper")  # it works in the scratch area, as the sessions do
            os.makedirs(home, mode=0o700, exist_ok=True)
            os.chdir(home)
            reaper.serve(jobs_r, done_w)
        finally:
            os._exit(0)
    os.close(jobs_r)
    os.close(done_w)
    os.set_blocking(done_r, False)
    return jobs_w, done_r


def probe_namespaces(cfg: dict) -> list[str]:
    """The namespaces each session can have of its own here: IPC, and the network where the jail's is
    empty anyway (nsjail). Tried once in a child; none when we may not switch uids or unshare."""
    if not (cfg["uid_count"] > 0 and os.geteuid() == 0):
        return []
    wanted = list(cfg.get("session_namespaces", ("ipc",)))
    flags = CLONE_NEWIPC | (CLONE_NEWNET if "net" in wanted else 0)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if LIBC.unshare(flags) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    return wanted if status == 0 else []


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def main() -> None:
    # Keep the channel to the server away from fds 0-2, which every child inherits and user code sees.
    server_in = os.dup(0)
    server_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    os.set_inheritable(server_in, False)
    os.set_inheritable(server_out, False)
    cfg = framing.read_frame(server_in)
    if not isinstance(cfg, dict) or cfg.get("version") != protocol.VERSION:
        return  # not our server, or another version of it: the server sees us exit before the hello
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphaned holders come back to us to be reaped
    reaper_fds = start_reaper(cfg["scratch"])  # before the warm-up: a small process, cheap to fork from
    cfg["namespaces"] = probe_namespaces(cfg)
    versions = warm_up(cfg["preload"])
    zygote = Zygote(cfg, server_in, server_out, reaper_fds)
    zygote.send(
        {
            "event": "ready",
            "pid": os.getpid(),
            "privileged": zygote.privileged,
            "version": protocol.VERSION,
            "namespaces": cfg["namespaces"],
            "python": sys.version.split()[0],
            "versions": versions,
        }
    )
    zygote.serve()


if __name__ == "__main__":
    main()
