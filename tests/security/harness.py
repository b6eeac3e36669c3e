"""A sandbox server under attack, and the checks that it, the host and everyone else came through untouched.

`Target` wraps one real `python -m sandbox_service` process (nsjail or rlimit mode) with a long-lived
control session (the victim whose state and files the attacks go after), and `check_untouched()`
asserts, after each attack: health SERVING; the control session still holds its state and computes;
a fresh stateless call works; no process carrying the attack's marker survives; every sandbox uid of
this server has at most its holder and worker, all inside the server's process tree, and the number
of session processes is back to what it was when idle; no file of the attack is left in the scratch area.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandbox_service import SandboxClient, SandboxError
from sandbox_service.isolation import UID_BLOCK, UID_BLOCKS, UID_ORIGIN
from sandbox_service.spawn import ServerProcess

CANARY_VAR = "AIMO_SECURITY_CANARY"
SETTLE_S = 5.0  # how long the sandbox may take to sweep, reap and refill after an attack


@dataclass
class Target:
    """One server under attack, in one isolation mode, with its control (victim) session."""

    mode: str
    server: ServerProcess
    client: SandboxClient
    canary: str  # in the server's environment: no cell may ever print it
    secret: str  # a value in the control session's globals and in a file in its folder
    control: object = None  # the control session (SyncSession)
    victim_dir: str = ""  # the control session's private folder, as cells see paths
    victim_pid: int = 0  # the control session's holder, as cells see pids
    idle_processes: int = 0  # session processes of this server when nothing runs
    blocks: set[int] = field(default_factory=set)  # this server's uid blocks
    zygote_pids: set[int] = field(default_factory=set)  # the zygotes as started: an attack may not replace one
    contained: bool = True  # False from the start of an attack until its check_contained passes
    old_folders: set[str] = field(default_factory=set)  # left before this attack began: not its doing

    @classmethod
    def start(cls, mode: str) -> Target:
        canary = f"canary-{uuid.uuid4().hex}"
        server = ServerProcess("--isolation", mode, "--pool-size", "1", "--grace", "3", env={CANARY_VAR: canary})
        server.wait_serving()
        client = SandboxClient(server.address)
        target = cls(mode, server, client, canary, f"victim-secret-{uuid.uuid4().hex}")
        target.control = client.session(seed=1)
        target.control.__enter__()
        result = target.control.run(
            f"import os\nsecret_value = {target.secret!r}\nopen('secret.txt', 'w').write(secret_value)\n"
            "print(os.getcwd())"
        )
        assert result.status == "OK", result
        target.victim_dir = result.stdout.strip()
        target.refresh_victim_pid()
        target.idle_processes = target.wait_idle()
        target.zygote_pids = {z.pid for z in target.zygotes()}
        return target

    def stop(self) -> None:
        try:
            self.control.close()
            self.client.close()
        finally:
            self.server.stop()

    # -- what attacks get to know ----------------------------------------------------------------

    def refresh_victim_pid(self) -> None:
        """The control session's holder: after a committed cell, its last worker."""
        result = self.control.run("import os\nos.getpid()")
        assert result.status == "OK", result
        self.victim_pid = int(result.display)

    def substitutions(self, marker: str) -> dict[str, str]:
        return {
            "MARKER": marker,
            "SERVER_PORT": str(self.server.port),
            "SERVER_PID": str(self.server.proc.pid),
            "VICTIM_DIR": self.victim_dir,
            "VICTIM_PID": str(self.victim_pid),
            "VICTIM_SECRET": self.secret,
            "CANARY_VAR": CANARY_VAR,
        }

    # -- processes ---------------------------------------------------------------------------------

    def zygotes(self) -> list[psutil.Process]:
        """The server's zygote processes (in nsjail mode, the nsjail process around each): its direct
        children that run zygote.py. Not "a zygote.py whose parent is not one": a process whose parent
        just died is a zombie's child for a moment, and a zombie's command line reads empty."""
        out = []
        for proc in _children(psutil.Process(self.server.proc.pid), recursive=False):
            try:
                if "zygote.py" in " ".join(proc.cmdline()):
                    out.append(proc)
            except psutil.Error:
                continue
        return out

    def jailed_zygotes(self) -> list[psutil.Process]:
        """The zygote interpreters themselves (in nsjail mode, the child of each nsjail process)."""
        if self.mode != "nsjail":
            return self.zygotes()
        return [child for zygote in self.zygotes() for child in _children(zygote, recursive=False)]

    def session_processes(self) -> list[psutil.Process]:
        """Live (non-zombie) processes under the zygotes: the sessions' holders, workers and strays."""
        out = []
        for zygote in self.zygotes():
            for proc in _children(zygote):
                try:
                    if proc.status() != psutil.STATUS_ZOMBIE:
                        out.append(proc)
                except psutil.Error:
                    continue
        return out

    def uid_blocks(self) -> set[int]:
        blocks = set()
        for proc in self.session_processes():
            try:
                blocks.add((proc.uids().real - UID_ORIGIN) // UID_BLOCK)
            except psutil.Error:
                continue
        return {b for b in blocks if 0 <= b < UID_BLOCKS}

    def wait_idle(self) -> int:
        """Wait until the session process count stops changing (spares refilled); return it."""
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            count = len(self.session_processes())
            if count != last:
                last, stable_since = count, time.monotonic()
            elif time.monotonic() - stable_since > 1.0:
                self.blocks = self.uid_blocks()
                return count
            time.sleep(0.1)
        raise AssertionError("the sandbox never settled")

    def process_problems(self, marker: str) -> list[str]:
        problems = []
        inside = {p.pid for p in self.session_processes()}
        by_uid: dict[int, list[int]] = {}
        for proc in psutil.process_iter(["pid", "uids", "cmdline", "status"], ad_value=_DENIED):
            info = proc.info
            if info["status"] == psutil.STATUS_ZOMBIE:  # dead (its command line is gone with it)
                continue
            if _DENIED in info.values():  # a process this check cannot see into could be anything
                problems.append(f"process {info['pid']} cannot be inspected (access denied): {info}")
                continue
            if marker in " ".join(info["cmdline"] or ()):
                problems.append(f"process {info['pid']} with the attack's marker survives: {info['cmdline']}")
            uid = info["uids"].real
            if UID_ORIGIN <= uid and (uid - UID_ORIGIN) // UID_BLOCK in self.blocks:
                if info["pid"] not in inside:
                    problems.append(f"process {info['pid']} of sandbox uid {uid} escaped the server's tree")
                by_uid.setdefault(uid, []).append(info["pid"])
        # The control session and the spares are always there: a scan that found no session uid saw nothing.
        assert by_uid, f"no process of this server's session uids (blocks {sorted(self.blocks)}) was found"
        for uid, pids in by_uid.items():
            if len(pids) > 2:
                problems.append(f"uid {uid} has {len(pids)} processes (a holder and a worker at most): {pids}")
        count = len(inside)
        if count != self.idle_processes:
            problems.append(f"{count} session processes, {self.idle_processes} when idle")
        return problems

    # -- files ---------------------------------------------------------------------------------------

    def scratch_roots(self) -> list[Path]:
        """The scratch folders as the host sees them: the jail's /tmp, or the rlimit mode's temp folder."""
        roots = []
        for zygote in self.zygotes():
            if self.mode == "nsjail":
                # `zygote` is the nsjail process (its command line names zygote.py); the jail's /tmp is
                # seen through its child's root: the jailed zygote's, not nsjail's own (the host's /tmp).
                roots += [Path(f"/proc/{child.pid}/root/tmp") for child in _children(zygote, recursive=False)]
            else:
                for child in _children(zygote, recursive=False):
                    try:
                        if not self.owns_uid(child.uids().real):
                            continue  # not a session's holder (the reaper, say, runs as root in the repo)
                        cwd = child.cwd()  # empty, or a removed folder, while a holder is on its way out
                        if not os.path.isabs(cwd) or not os.path.isdir(cwd):
                            continue
                        roots.append(Path(cwd).parent)
                        break
                    except psutil.Error:
                        continue
        return roots

    def file_problems(self, marker: str) -> list[str]:
        """Files of the attack left in the scratch area. The walk must reach every zygote's scratch root
        and see the control session's folder in it: a walk that could not read a folder, or found
        nothing, proves nothing and fails instead."""
        problems = []
        roots = self.scratch_roots()
        assert roots, "no scratch folder to walk: no zygote, or none with a session"
        victim = os.path.basename(self.victim_dir)
        seen_victim = False
        for root in roots:
            walked = 0
            for folder, dirs, files in os.walk(root, onerror=_raise):
                walked += 1
                seen_victim |= victim in dirs and os.path.samefile(folder, root)
                for name in dirs + files:
                    if marker in name:
                        problems.append(f"{folder}/{name} is left over")
            assert walked, f"walked nothing under {root}"
        assert seen_victim, f"the control session's folder {victim} is in none of {roots}: the walk missed it"
        return problems

    # -- IPC objects, session folders, shared memory (issue 29) -------------------------------------

    def owns_uid(self, uid: int) -> bool:
        return UID_ORIGIN <= uid and (uid - UID_ORIGIN) // UID_BLOCK in self.blocks

    def ipc_objects(self) -> list[str]:
        """SysV shared memory, queues and semaphores owned or made by this server's session uids, as
        the host sees them: in the host's IPC namespace (rlimit) or in each zygote's (nsjail)."""
        found = []
        for kind in ("shm", "msg", "sem"):
            for table in self._sysvipc_tables(kind):
                lines = table.splitlines()
                header = lines[0].split()
                for line in lines[1:]:
                    row = dict(zip(header, line.split(), strict=False))
                    if any(self.owns_uid(int(row[k])) for k in ("uid", "cuid") if k in row):
                        found.append(f"SysV {kind} id {row.get(header[1])} key {row.get('key')} of uid "
                                     f"{row.get('cuid')}, mode {int(row.get('perms', '0')):o}, "
                                     f"{row.get('size', '?')} bytes")
        return found

    def _sysvipc_tables(self, kind: str) -> list[str]:
        if self.mode != "nsjail":
            return [Path(f"/proc/sysvipc/{kind}").read_text()]
        tables = []
        for zygote in self.zygotes():
            # /proc/sysvipc shows the reader's IPC namespace: read it from inside the zygote's.
            out = subprocess.run(["nsenter", "-t", str(zygote.pid), "-i", "cat", f"/proc/sysvipc/{kind}"],
                                 capture_output=True, text=True, timeout=10)
            assert out.returncode == 0, f"cannot read zygote {zygote.pid}'s IPC namespace: {out.stderr}"
            tables.append(out.stdout)
        return tables

    def folder_problems(self) -> list[str]:
        """Session folders in the scratch area that belong to no live session process."""
        live = set()
        for proc in self.session_processes():
            try:
                live.add(os.path.basename(proc.cwd()))
            except psutil.Error:
                continue
        problems = []
        roots = self.scratch_roots()
        assert roots, "no scratch folder to look at"
        for root in roots:
            names = os.listdir(root)
            assert os.path.basename(self.victim_dir) in names, f"{root} lacks the control session's folder"
            problems += [f"{root}/{name} is left over by a session that ended" for name in names
                         if name not in live and f"{root}/{name}" not in self.old_folders]
        return problems

    # -- the verdict ---------------------------------------------------------------------------------

    def health(self) -> int:
        with grpc.insecure_channel(self.server.address) as channel:
            return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status

    def check_untouched(self, marker: str) -> None:
        assert self.server.proc.poll() is None, f"the server died:\n{self.server.output()}"
        assert self.health() == health_pb2.HealthCheckResponse.SERVING
        control = self.control.run("print(secret_value, sum(range(10)), len([1, 2]), math.isqrt(16), "
                                   "sympy.factorint(12))")
        assert control.status == "OK", f"the control session was hurt: {control}"
        assert control.stdout == f"{self.secret} 45 2 4 {{2: 2, 3: 1}}\n", control.stdout
        fresh = self.client.execute("print(6 * 7)\nimport os\nprint(os.path.exists('secret.txt'))")
        assert fresh.status == "OK" and fresh.stdout == "42\nFalse\n", fresh
        deadline = time.monotonic() + SETTLE_S
        while True:
            problems = self.process_problems(marker) + self.file_problems(marker)
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not problems, "\n".join(problems)
        self.refresh_victim_pid()

    def check_contained(self, marker: str) -> None:
        """Issue 29's verdict, after an attack on the trust boundaries: everything `check_untouched`
        checks, plus the same zygotes (none crashed and replaced), no SysV IPC object of a session uid,
        and no session folder without a live session."""
        now = {z.pid for z in self.zygotes()}
        assert now == self.zygote_pids, (f"zygotes {sorted(self.zygote_pids)} became {sorted(now)}: one died; the "
                                         f"server's log ends:\n{self.server.output()[-1500:]}")
        self.check_untouched(marker)
        deadline = time.monotonic() + SETTLE_S
        while True:
            problems = self.ipc_objects() + self.folder_problems()
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not problems, "\n".join(problems)
        self.contained = True

    def intact(self, settle_s: float = 2.0) -> bool:
        """After an attack that was not contained: is this server still as started (same zygotes, control
        session state, no leftover process, SysV object or folder), so the next attack may use it?"""
        try:
            if self.server.proc.poll() is not None or {z.pid for z in self.zygotes()} != self.zygote_pids:
                return False
            control = self.control.run("print(secret_value)")
            if control.status != "OK" or control.stdout != f"{self.secret}\n":
                return False
            # Later calls answered right, two at a time so both warm runners serve some: a runner taken
            # over by a daemon looks just like a healthy one from the process table.
            if not all(pool_answers_right(self.client, 8, parallel=2)):
                return False
            # Folders are not checked here: those left so far are recorded as old, and each attack is held
            # to the ones it leaves itself (see `old_folders`).
            deadline = time.monotonic() + settle_s
            while self.process_problems(f"no-marker-{uuid.uuid4().hex}") or self.ipc_objects():
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
            return True
        except Exception:  # noqa: BLE001 - anything odd about it: start a fresh one
            return False

    def reap(self) -> list[str]:
        """After stopping the server: kill what its session uids left running on the host and remove
        their SysV objects (what an uncontained attack leaves; nsjail's namespaces take theirs along).
        Returns what it had to remove."""
        removed = []
        for proc in psutil.process_iter(["pid", "uids"]):
            uids = proc.info["uids"]
            if uids is not None and self.owns_uid(uids.real):
                removed.append(f"process {proc.info['pid']} (uid {uids.real})")
                try:
                    proc.kill()
                except psutil.Error:
                    pass
        if self.mode != "nsjail":
            for obj in self.ipc_objects():
                kind, ident = obj.split()[1], obj.split()[3]
                flag = {"shm": "-m", "msg": "-q", "sem": "-s"}[kind]
                out = subprocess.run(["ipcrm", flag, ident], capture_output=True, text=True, timeout=10)
                assert out.returncode == 0, f"could not remove {obj}: {out.stderr}"
                removed.append(obj)
            left = self.ipc_objects()
            assert not left, f"SysV objects of this server's uids survive the reaping: {left}"
        return removed


def pool_answers_right(client: SandboxClient, count: int, parallel: int = 1, **limits) -> list[str | None]:
    """`count` stateless calls, `parallel` at a time, each printing a token only it knows and listing its
    folder: None for each answered OK with exactly that, else what came back instead."""
    def one(_) -> str | None:
        token = uuid.uuid4().hex
        try:
            result = client.execute(f"import os\nprint({token!r})\nprint(sorted(os.listdir('.')))", **limits)
        except SandboxError as exc:
            return f"{exc.code}: {exc.details}"
        if result.status != "OK" or result.stdout != f"{token}\n[]\n":  # its own output, an empty folder
            return f"{result.status} {result.message!r} stdout={result.stdout[:200]!r}"
        return None

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, range(count)))


def host_shmem_bytes() -> int:
    """The host's shared memory in use (tmpfs and SysV/POSIX segments), from /proc/meminfo."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no Shmem line in /proc/meminfo")


_DENIED = object()  # psutil's value for an attribute it was not allowed to read


def _raise(error: OSError) -> None:
    """os.walk's onerror: a folder the walk cannot read is a failure, never a silent skip. A folder that
    is gone by the time the walk reaches it (a session's, removed by the reaper meanwhile) holds nothing."""
    if not isinstance(error, FileNotFoundError):
        raise error


def _children(proc: psutil.Process, recursive: bool = True) -> list[psutil.Process]:
    """All descendants (or the children), retrying while processes come and go under the walk."""
    for _ in range(20):
        try:
            return proc.children(recursive=recursive)
        except psutil.NoSuchProcess:
            if not proc.is_running():
                return []
            time.sleep(0.01)
    return []


def fill(code: str, values: dict[str, str]) -> str:
    """Put the target's facts (ports, pids, paths) into an attack's code: UPPER_CASE placeholders."""
    return re.sub(r"\b(" + "|".join(values) + r")\b", lambda m: values[m.group(1)], code)
