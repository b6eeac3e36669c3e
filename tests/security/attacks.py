"""Every attack, declared once: its hostile code and what each isolation mode makes of it.

The tests (`test_attacks.py`) run each attack through a real server in both modes and assert the
declared outcome; SECURITY.md's attack table is rendered from this list (`python -m
tests.security.attacks` prints it; `test_table.py` fails when SECURITY.md is stale). An outcome with
`contained=False` is a documented gap of that mode: the test asserts the gap is exactly as documented
(so a change either way shows up), and still that the server and everyone else are untouched.

Attack code prints lines `label: RESULT` (an errno name, `ok`, an exception type, a count...); an
outcome gives a regex per label. UPPER_CASE placeholders (MARKER, SERVER_PORT, VICTIM_PID, ...) are
filled in from the live target (see harness.Target.substitutions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Helpers every attack's code starts with. Kept tiny: the attacks are the point.
PROLOGUE = '''\
import ctypes, errno, os, signal, socket, sys, time
def attempt(label, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        print(f"{label}: {errno.errorcode.get(e.errno, e.errno)}")
    except Exception as e:
        print(f"{label}: {type(e).__name__}")
    else:
        print(f"{label}: ok")
LIBC = ctypes.CDLL(None, use_errno=True)
def syscall(label, nr, *args):
    ret = LIBC.syscall(nr, *[ctypes.c_long(a) for a in args])
    print(f"{label}: " + ("ok" if ret >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")))
def spawn_sleeper():
    # A process whose command line carries the attack's marker, so the harness can look for survivors.
    import subprocess
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "MARKER"],
                            start_new_session=True).pid
'''


@dataclass(frozen=True)
class Outcome:
    """What one isolation mode makes of an attack."""

    status: str | tuple[str, ...] = "OK"  # the last step's status
    lines: dict[str, str] = field(default_factory=dict)  # label -> regex its value must fully match
    # field of the last result ("message", "stdout", "error.type", "error.message", ...) -> regex it must
    # fully match: what an attack without labels shows besides its status, pinned so a change is seen
    fields: dict[str, str] = field(default_factory=dict)
    contained: bool = True
    note: str = ""  # how (or why not), for the table

    @property
    def statuses(self) -> tuple[str, ...]:
        return (self.status,) if isinstance(self.status, str) else self.status


@dataclass(frozen=True)
class Attack:
    name: str
    title: str
    steps: tuple[str, ...]  # run one after another; each a fresh stateless call unless `session`
    nsjail: Outcome
    rlimit: Outcome
    session: bool = False  # all steps in one session (the attack tries to outlive a cell)
    limits: dict = field(default_factory=dict)
    max_seconds: float = 10.0  # wall time the whole attack may take
    cleanup: tuple[str, ...] = ()  # host paths (MARKER filled in) a documented gap leaves, removed after

    def outcome(self, mode: str) -> Outcome:
        return getattr(self, mode)


def same(outcome: Outcome) -> dict:
    return {"nsjail": outcome, "rlimit": outcome}


SMALL = {"memory_bytes": 512 << 20, "max_processes": 8, "timeout_ms": 5000}
OMITTED = r"\[\.\.\. \d+ bytes of output omitted \.\.\.\]"  # cell.truncation_marker, head and tail kept


def killed_at(ms: int) -> dict[str, str]:
    return {"message": f"the cell ran past its {ms} ms limit and was killed"}


FLOODED = {"message": "output passed 1048576 bytes; the cell was stopped", "stdout": f"(?s).+\n{OMITTED}\n.+"}
MEMORY_ERROR = {"error.type": "MemoryError", "error.message": ""}
SESSION_DIED = {"message": "the session's processes died"}
NOT_FILTERED = "(no seccomp: the kernel decides; contained to the session's uid)"
SECCOMP = "seccomp deny-list: EPERM"
# A later call served by the same warm runner (same uid) reads the file back; which runner serves a
# call depends on timing, so "read" may be either. Other uids cannot read it.
HOST_FILE = ("the file stays in the host's {} after the session; a later call on the same warm runner reads "
             "it back (umask 077 keeps other sessions from reading it; its name and size are visible)")

ATTACKS: list[Attack] = [
    # -- processes and threads -------------------------------------------------------------------
    Attack(
        "fork_bomb", "fork bomb: `while True: os.fork()` in every child",
        ("while True:\n    try:\n        os.fork()\n    except OSError:\n        pass",),
        limits=SMALL | {"timeout_ms": 1500}, max_seconds=6,
        **same(Outcome("TIMEOUT", fields=killed_at(1500),
                       note="RLIMIT_NPROC per session uid; killed at the deadline; uid swept")),
    ),
    Attack(
        "fork_count", "forks until refused, children kept alive",
        ("n = 0\ntry:\n    while n < 1000:\n        if os.fork() == 0:\n            time.sleep(60)\n"
         "            os._exit(0)\n        n += 1\nexcept OSError as e:\n"
         "    print(f'forks: {n} {errno.errorcode[e.errno]}')",),
        limits=SMALL,
        **same(Outcome("OK", {"forks": r"[0-8] EAGAIN"}, note="EAGAIN within max_processes; swept after")),
    ),
    Attack(
        "thread_bomb", "starts threads until refused",
        ("import threading\nn = 0\ntry:\n    while n < 1000:\n"
         "        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n        n += 1\n"
         "except RuntimeError as e:\n    print(f'threads: {n} RuntimeError')",),
        limits=SMALL,
        **same(Outcome("OK", {"threads": r"[0-8] RuntimeError"}, note="threads count against RLIMIT_NPROC")),
    ),
    # -- memory -------------------------------------------------------------------------------------
    Attack(
        "memory_one_big", "one 8 GiB allocation", ("hog = bytearray(8 << 30)",), limits=SMALL,
        **same(Outcome("MEMORY_EXCEEDED", fields=MEMORY_ERROR, note="RLIMIT_AS: MemoryError")),
    ),
    Attack(
        "memory_many_small", "8 MiB allocations until refused",
        ("hog = []\nwhile True:\n    hog.append(bytearray(8 << 20))",), limits=SMALL,
        **same(Outcome("MEMORY_EXCEEDED", fields=MEMORY_ERROR, note="RLIMIT_AS: MemoryError")),
    ),
    Attack(
        "memory_in_children", "4 children each allocate 1 GiB",
        ("codes = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n        try:\n"
         "            bytearray(1 << 30)\n            os._exit(0)\n        except MemoryError:\n"
         "            os._exit(3)\n    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
         "print(f'children: {codes}')",),
        limits=SMALL,
        **same(Outcome("OK", {"children": r"\[3, 3, 3, 3\]"},
                       note="RLIMIT_AS per process; no aggregate cap per session (see SECURITY.md)")),
    ),
    # -- time -----------------------------------------------------------------------------------------
    Attack(
        "cpu_loop", "`while True: pass`", ("while True:\n    pass",), limits={"timeout_ms": 500}, max_seconds=3,
        **same(Outcome("TIMEOUT", fields=killed_at(500), note="killed by the zygote at the wall deadline")),
    ),
    Attack(
        "cpu_limit", "CPU loop under a 1 s CPU limit and a long wall limit", ("while True:\n    pass",),
        limits={"cpu_seconds": 1, "timeout_ms": 30_000}, max_seconds=6,
        **same(Outcome("TIMEOUT", fields={"message": "the cell used up its CPU time limit"},
                       note="RLIMIT_CPU: SIGXCPU")),
    ),
    Attack(
        "sleep_forever", "sleeps forever", ("time.sleep(10**6)",), limits={"timeout_ms": 500}, max_seconds=3,
        **same(Outcome("TIMEOUT", fields=killed_at(500), note="wall deadline, not CPU")),
    ),
    Attack(
        "ignore_sigterm", "ignores SIGTERM, with a child that does too",
        ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\nspawn_sleeper()\ntime.sleep(10**6)",),
        limits={"timeout_ms": 800}, max_seconds=4,
        **same(Outcome("TIMEOUT", fields=killed_at(800), note="SIGKILL, never SIGTERM; the child is swept by uid")),
    ),
    # -- output -------------------------------------------------------------------------------------
    Attack(
        "flood_lines", "prints lines without end", ("while True:\n    print('x' * 80)",),
        limits={"max_output_bytes": 4096}, max_seconds=4,
        **same(Outcome("OUTPUT_LIMIT_EXCEEDED", fields=FLOODED,
                       note="head and tail kept; stopped at 1 MiB (8x the cap, at least 1 MiB)")),
    ),
    Attack(
        "flood_one_line", "one line that never ends", ("while True:\n    sys.stdout.write('y' * 4096)",),
        limits={"max_output_bytes": 4096}, max_seconds=4,
        **same(Outcome("OUTPUT_LIMIT_EXCEEDED", fields=FLOODED, note="byte-counted, newline or not")),
    ),
    Attack(
        "flood_binary", "binary and invalid UTF-8 without end on stdout and stderr",
        ("while True:\n    sys.stdout.buffer.write(bytes(range(256)))\n    sys.stderr.write('\\udcff' * 100)",),
        limits={"max_output_bytes": 4096}, max_seconds=4,
        **same(Outcome("OUTPUT_LIMIT_EXCEEDED", fields=FLOODED | {"stderr": "(?s)\ufffd+\n" + OMITTED + "\n\ufffd+"},
                       note="bytes kept, decoded with U+FFFD")),
    ),
    Attack(
        "fd_level_writes", "writes 64 MiB straight to file descriptors 1 and 2",
        ("for fd in (1, 2):\n    for _ in range(1024):\n        os.write(fd, b'z' * 65536)\nprint('wrote: ok')",),
        **same(Outcome("OK", {"wrote": "ok"}, note="fds 0-2 are /dev/null: never the server's pipes or log")),
    ),
    Attack(
        "huge_display", "a 16 MiB value as the last expression, and a 16 MiB exception message",
        ("'x' * (16 << 20)", "raise ValueError('m' * (16 << 20))"),
        **same(Outcome("ERROR", fields={"error.type": "ValueError", "error.message": f"m+\n{OMITTED}\nm+"},
                       note="display and error capped like output (was: the answer exceeded gRPC's 4 MiB)")),
    ),
    Attack(
        "surrogate_text", "lone surrogates in an exception message and in a hostile __str__",
        ("raise ValueError('bad \\ud800')",
         "class E(Exception):\n    def __str__(self):\n        return 1 / 0\nraise E()"),
        **same(Outcome("ERROR", fields={"error.type": "E", "error.message": r"<exception str\(\) failed>"},
                       note="U+FFFD, not a gRPC UNKNOWN; a raising __str__ no longer kills the worker")),
    ),
    # -- disk -----------------------------------------------------------------------------------------
    Attack(
        "disk_big_file", "writes a 100 MiB file",
        ("def write():\n    with open('big', 'wb') as f:\n        for _ in range(100):\n"
         "            f.write(b'x' * (1 << 20))\nattempt('write', write)",),
        **same(Outcome("OK", {"write": "EFBIG"}, note="RLIMIT_FSIZE (SIGXFSZ ignored: an error, not a kill)")),
    ),
    Attack(
        "disk_many_files", "fills the scratch area with 1 MiB files (300 of them)",
        ("n = 0\ntry:\n    for n in range(300):\n        with open(f'f{n}-MARKER', 'wb') as f:\n"
         "            f.write(b'x' * (1 << 20))\n    print('files: all 300')\n"
         "except OSError as e:\n    print(f'files: {errno.errorcode[e.errno]} after {n}')",),
        nsjail=Outcome("OK", {"files": r"ENOSPC after \d+"}, note="the zygote's tmpfs is size-capped; "
                       "freed when the session ends"),
        rlimit=Outcome("OK", {"files": "all 300"}, contained=False,
                       note="no quota: the host disk; freed when the session ends"),
    ),
    Attack(
        "disk_sparse", "a sparse 1 TiB file", ("attempt('truncate', lambda: open('sparse', 'wb').truncate(1 << 40))",),
        **same(Outcome("OK", {"truncate": "EFBIG"}, note="RLIMIT_FSIZE covers truncate")),
    ),
    # -- files that outlive a request -------------------------------------------------------------------
    *[
        Attack(
            f"persist_{slug}", f"a file in {path} read back by the next request",
            (f"attempt('write', lambda: open('{path}/persist-MARKER', 'w').write('x'))",
             f"attempt('read', lambda: open('{path}/persist-MARKER').read())"),
            nsjail=Outcome("OK", {"write": nsjail_write, "read": "ENOENT"}, note=nsjail_note),
            rlimit=rlimit_outcome,
            cleanup=(f"{path}/persist-MARKER",) if path != "." else (),
        )
        for slug, path, nsjail_write, nsjail_note, rlimit_outcome in [
            ("tmp", "/tmp", "EACCES", "/tmp is 0711: only the session's own folder is writable (was 1733: "
             "files persisted and crossed sessions)",
             Outcome("OK", {"write": "ok", "read": "ok|EACCES"}, contained=False, note=HOST_FILE.format("/tmp"))),
            ("dev_shm", "/dev/shm", "ENOENT", "no /dev/shm in the jail",
             Outcome("OK", {"write": "ok", "read": "ok|EACCES"}, contained=False,
                     note=HOST_FILE.format("/dev/shm"))),
            ("var_tmp", "/var/tmp", "ENOENT", "no /var in the jail",
             Outcome("OK", {"write": "ok", "read": "ok|EACCES"}, contained=False,
                     note=HOST_FILE.format("/var/tmp"))),
            ("scratch", ".", "ok", "the session folder is emptied after every call",
             Outcome("OK", {"write": "ok", "read": "ENOENT"}, note="the session folder is emptied after every call")),
        ]
    ],
    # -- reading what is not yours ------------------------------------------------------------------------
    Attack(
        "read_shadow", "reads /etc/shadow", ("attempt('shadow', lambda: open('/etc/shadow').read())",),
        nsjail=Outcome("OK", {"shadow": "ENOENT"}, note="no /etc in the jail"),
        rlimit=Outcome("OK", {"shadow": "EACCES"}, note="file permissions only"),
    ),
    Attack(
        "read_host_files", "reads /etc/passwd, /etc/hostname, /root, /work",
        ("for p in ('/etc/passwd', '/etc/hostname'):\n    attempt(p, lambda: open(p).read())\n"
         "for p in ('/root', '/work'):\n    attempt(p, os.listdir, p)",),
        nsjail=Outcome("OK", {"/etc/passwd": "ENOENT", "/etc/hostname": "ENOENT", "/root": "ENOENT",
                              "/work": "ENOENT"}, note="only the interpreter and /usr/lib are mounted"),
        rlimit=Outcome("OK", {"/etc/passwd": "ok", "/etc/hostname": "ok", "/root": "EACCES", "/work": "ok"},
                       contained=False, note="the host filesystem, as far as 'other' permissions go"),
    ),
    Attack(
        "read_proc_1_environ", "reads /proc/1/environ and /proc/self/mountinfo",
        ("attempt('environ', lambda: open('/proc/1/environ', 'rb').read())\n"
         "print('mounts:', len(open('/proc/self/mountinfo').readlines()))",),
        nsjail=Outcome("OK", {"environ": "EACCES", "mounts": r"\d+"}, note="pid 1 is the zygote: not dumpable"),
        rlimit=Outcome("OK", {"environ": "EACCES", "mounts": r"\d+"}, note="the host's init: another uid"),
    ),
    Attack(
        "read_server_env", "looks for the server's environment: os.environ and every /proc/*/environ",
        ("found = 'CANARY_VAR' in os.environ\nfor pid in os.listdir('/proc'):\n    try:\n"
         "        found |= b'CANARY_VAR' in open(f'/proc/{pid}/environ', 'rb').read()\n    except OSError:\n"
         "        pass\nprint(f'canary: {found}')",),
        **same(Outcome("OK", {"canary": "False"}, note="scrubbed env; other processes' environ unreadable")),
    ),
    Attack(
        "read_other_session_files", "reads the files of another live session",
        ("attempt('list', os.listdir, 'VICTIM_DIR')\n"
         "attempt('read', lambda: open('VICTIM_DIR/secret.txt').read())",),
        **same(Outcome("OK", {"list": "EACCES", "read": "EACCES"}, note="each session folder is 0700, own uid")),
    ),
    Attack(
        "read_other_session_memory", "reads another session's memory: /proc/<pid>/mem, environ, process_vm_readv",
        ("attempt('mem', lambda: open('/proc/VICTIM_PID/mem', 'rb').read(16))\n"
         "attempt('environ', lambda: open('/proc/VICTIM_PID/environ', 'rb').read())\n"
         "buf = ctypes.create_string_buffer(16)\n"
         "class Iov(ctypes.Structure):\n    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
         "local, remote = Iov(ctypes.addressof(buf), 16), Iov(0x400000, 16)\n"
         "ret = LIBC.process_vm_readv(VICTIM_PID, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)\n"
         "print('vm_readv:', 'ok' if ret >= 0 else errno.errorcode[ctypes.get_errno()])",),
        nsjail=Outcome("OK", {"mem": "EACCES", "environ": "EACCES", "vm_readv": "EPERM"},
                       note="other uid, not dumpable; process_vm_readv in the seccomp list"),
        rlimit=Outcome("OK", {"mem": "EACCES", "environ": "EACCES", "vm_readv": "EPERM"},
                       note="other uid, not dumpable"),
    ),
    Attack(
        "gc_walk", "walks gc.get_objects() and object.__subclasses__() for another session's variables",
        ("import gc\nseen = 0\nfound = False\nfor o in gc.get_objects():\n    seen += 1\n"
         "    if isinstance(o, dict) and 'secret_value' in o:\n        found = True\n"
         "for cls in object.__subclasses__():\n    seen += 1\n"
         "print(f'secret: {found}')\nprint(f'walked: {seen > 1000}')",),
        **same(Outcome("OK", {"secret": "False", "walked": "True"},
                       note="a fork of the zygote holds nobody else's state")),
    ),
    # -- network ---------------------------------------------------------------------------------------
    Attack(
        "net_loopback_server", "connects to the sandbox server's own port on 127.0.0.1, and to ::1",
        ("def connect(family, address):\n    s = socket.socket(family)\n    s.settimeout(2)\n"
         "    s.connect(address)\nattempt('v4', connect, socket.AF_INET, ('127.0.0.1', SERVER_PORT))\n"
         "attempt('v6', connect, socket.AF_INET6, ('::1', SERVER_PORT))",),
        nsjail=Outcome("OK", {"v4": "ENETUNREACH", "v6": "EADDRNOTAVAIL|ENETUNREACH"},
                       note="own network namespace without even loopback"),
        rlimit=Outcome("OK", {"v4": "ok", "v6": "ECONNREFUSED|EADDRNOTAVAIL|ENETUNREACH|ok"}, contained=False,
                       note="the host network: every loopback service, this server included"),
    ),
    Attack(
        "net_raw_ip", "connects to 192.0.2.1:80 (TEST-NET-1, unroutable)",
        ("s = socket.socket()\ns.settimeout(1)\nattempt('connect', s.connect, ('192.0.2.1', 80))\n"
         "attempt('interfaces', socket.if_nameindex)",),
        nsjail=Outcome("OK", {"connect": "ENETUNREACH", "interfaces": "EPERM"},
                       note="no interfaces (and no netlink to list them)"),
        # What the host's network answers (refused, unreachable, or a timeout: None), never a sandbox's EPERM.
        rlimit=Outcome("OK", {"connect": "ECONNREFUSED|ENETUNREACH|EHOSTUNREACH|None", "interfaces": "ok"},
                       contained=False, note="the host's interfaces and routes decide"),
    ),
    Attack(
        "net_dns", "resolves a name",
        ("attempt('resolve', socket.getaddrinfo, 'example.com', 80)\n"
         "attempt('resolv.conf', lambda: open('/etc/resolv.conf').read())",),
        nsjail=Outcome("OK", {"resolve": "-3", "resolv.conf": "ENOENT"},
                       note="EAI_AGAIN: no resolver configuration, no network"),
        # The host's resolver answers: a name (ok), EAI_NONAME (-2) or EAI_AGAIN (-3) as the host's DNS goes.
        rlimit=Outcome("OK", {"resolve": "ok|-2|-3", "resolv.conf": "ok"}, contained=False, note="the host's resolver"),
    ),
    Attack(
        "net_raw_sockets", "opens raw, packet and netlink sockets",
        ("attempt('raw', socket.socket, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
         "attempt('packet', socket.socket, socket.AF_PACKET, socket.SOCK_RAW)\n"
         "attempt('netlink', socket.socket, socket.AF_NETLINK, socket.SOCK_RAW, 0)",),
        nsjail=Outcome("OK", {"raw": "EPERM", "packet": "EPERM", "netlink": "EPERM"},
                       note="no CAP_NET_RAW; netlink and packet in the seccomp list"),
        rlimit=Outcome("OK", {"raw": "EPERM", "packet": "EPERM", "netlink": "ok"}, contained=False,
                       note="raw/packet need CAP_NET_RAW; netlink (routes, interfaces) is open"),
    ),
    # -- writing where you should not --------------------------------------------------------------------
    Attack(
        "write_outside_scratch", "writes to /, /usr, /etc, the sandbox's own code and the interpreter's packages",
        ("import sysconfig\nsandbox = os.path.dirname(sys.modules['cell'].__file__)\n"
         "for label, path in [('root', '/evil-MARKER'), ('usr', '/usr/evil-MARKER'), ('etc', '/etc/evil-MARKER'),\n"
         "                    ('code', sandbox + '/cell.py'),\n"
         "                    ('packages', sysconfig.get_paths()['purelib'] + '/evil-MARKER.py')]:\n"
         "    attempt(label, lambda: open(path, 'a').write('x'))",),
        nsjail=Outcome("OK", {"root": "EROFS", "usr": "EROFS", "etc": "ENOENT", "code": "EROFS|EACCES",
                              "packages": "EROFS"}, note="read-only binds"),
        rlimit=Outcome("OK", {"root": "EACCES", "usr": "EACCES", "etc": "EACCES", "code": "EACCES",
                              "packages": "EACCES"}, note="file permissions (root-owned)"),
    ),
    Attack(
        "write_proc_sys", "writes /proc/sysrq-trigger and /proc/sys/kernel/hostname",
        ("attempt('sysrq', lambda: open('/proc/sysrq-trigger', 'w').write('h'))\n"
         "attempt('hostname', lambda: open('/proc/sys/kernel/hostname', 'w').write('x'))",),
        nsjail=Outcome("OK", {"sysrq": "ENOENT|EACCES|EROFS", "hostname": "EACCES|EROFS"},
                       note="the jail's own /proc, owned by its user namespace"),
        rlimit=Outcome("OK", {"sysrq": "ENOENT|EACCES|EROFS", "hostname": "EACCES|EROFS"}, note="root-only files"),
    ),
    # -- crashes and signals -------------------------------------------------------------------------
    Attack(
        "ctypes_segfault", "dereferences NULL with ctypes", ("ctypes.string_at(0)",),
        **same(Outcome("CRASHED", fields={"message": "the interpreter died of signal SIGSEGV"},
                       note="reported as SIGSEGV; the session rolls back")),
    ),
    Attack(
        "kill_parent", "SIGKILLs its parent (the session's holder)",
        ("attempt('kill', os.kill, os.getppid(), signal.SIGKILL)",),
        **same(Outcome("OK", {"kill": "ok"}, note="it can only hurt its own session")),
    ),
    Attack(
        "kill_zygote_and_server", "SIGKILLs the zygote, the server and another session",
        ("def zygote():\n    holder = open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()[1]\n"
         "    return int(holder)\nattempt('zygote', lambda: os.kill(zygote(), signal.SIGKILL))\n"
         "attempt('pid1', os.kill, 1, signal.SIGKILL)\nattempt('server', os.kill, SERVER_PID, signal.SIGKILL)\n"
         "attempt('session', os.kill, VICTIM_PID, signal.SIGKILL)",),
        nsjail=Outcome("OK", {"zygote": "EPERM", "pid1": "EPERM", "server": "ESRCH", "session": "EPERM"},
                       note="other uids; the server is outside the pid namespace"),
        rlimit=Outcome("OK", {"zygote": "EPERM", "pid1": "EPERM", "server": "EPERM", "session": "EPERM"},
                       note="other uids (root only: unprivileged, all share one uid)"),
    ),
    Attack(
        "kill_everything", "`kill(-1, SIGKILL)`", ("os.kill(-1, signal.SIGKILL)\nprint('survived: ok')",),
        **same(Outcome("OK", {"survived": "ok"},
                       note="reaches its own uid only (the holder dies, the caller is spared)")),
    ),
    Attack(
        "killpg_own_group", "`killpg(0, SIGKILL)`", ("os.killpg(0, signal.SIGKILL)",),
        **same(Outcome("CRASHED", fields=SESSION_DIED, note="its own process group only: holder and worker die "
                                                             "together, so the session is lost (not MEMORY_EXCEEDED)")),
    ),
    Attack(
        "setsid_daemon", "double-forks a setsid daemon meant to outlive the call",
        ("if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        spawn_sleeper()\n"
         "    os._exit(0)\ntime.sleep(0.3)\nprint('daemon: started')",),
        **same(Outcome("OK", {"daemon": "started"}, note="swept by kill(-1) as the session uid after the call")),
    ),
    Attack(
        "daemon_across_cells", "in a session, a daemon from one cell checked from the next",
        ("pid = spawn_sleeper()\nprint('spawned: ok')",
         "def state():\n    return open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0]\n"
         "try:\n    print(f'alive: {state()}')\nexcept OSError as e:\n    print(f'alive: {errno.errorcode[e.errno]}')"),
        session=True,
        **same(Outcome("OK", {"spawned": "ok", "alive": "Z|ENOENT"}, note="swept (a zombie at most) when "
                       "the cell commits")),
    ),
    Attack(
        "shell_and_exec", "os.system, and os.execv of /bin/sh in a child",
        ("print(f'system: {os.waitstatus_to_exitcode(os.system(\"exit 5\"))}')\npid = os.fork()\n"
         "if pid == 0:\n    try:\n        os.execv('/bin/sh', ['/bin/sh', '-c', 'exit 7'])\n    finally:\n"
         "        os._exit(127)\nprint(f'exec: {os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}')",),
        nsjail=Outcome("OK", {"system": "127", "exec": "127"}, note="no shell (no binaries) in the jail"),
        rlimit=Outcome("OK", {"system": "5", "exec": "7"}, contained=False,
                       note="host binaries run (as the session uid, same limits)"),
    ),
    # -- the kernel --------------------------------------------------------------------------------------
    Attack(
        "ptrace", "ptrace-attaches its own child and another session",
        ("child = os.fork()\nif child == 0:\n    time.sleep(30)\n    os._exit(0)\n"
         "syscall('own_child', 101, 16, child, 0, 0)\nsyscall('other_session', 101, 16, VICTIM_PID, 0, 0)\n"
         "os.kill(child, signal.SIGKILL)",),
        nsjail=Outcome("OK", {"own_child": "EPERM", "other_session": "EPERM"}, note=SECCOMP),
        rlimit=Outcome("OK", {"own_child": "EPERM", "other_session": "EPERM"},
                       note="session processes are not dumpable: no ptrace without CAP_SYS_PTRACE"),
    ),
    Attack(
        "unshare", "unshare(CLONE_NEWUSER) and unshare(CLONE_NEWNS)",
        ("syscall('user', 272, 0x10000000)\nsyscall('mount_ns', 272, 0x00020000)",),
        nsjail=Outcome("OK", {"user": "EPERM", "mount_ns": "EPERM"}, note=SECCOMP),
        rlimit=Outcome("OK", {"user": "ok", "mount_ns": "ok|EPERM"}, contained=False,
                       note="a new user namespace: more kernel surface, no new host rights"),
    ),
    Attack(
        "mount", "mounts a tmpfs over its folder",
        ("attempt('mount', lambda: LIBC.mount(b'none', os.getcwd().encode(), b'tmpfs', 0, None) == 0 "
         "or (_ for _ in ()).throw(OSError(ctypes.get_errno(), 'mount')))",),
        nsjail=Outcome("OK", {"mount": "EPERM"}, note=SECCOMP),
        rlimit=Outcome("OK", {"mount": "EPERM"}, note="no CAP_SYS_ADMIN"),
    ),
    Attack(
        "bpf_perf_io_uring", "bpf, perf_event_open, io_uring_setup, keyctl, userfaultfd",
        ("syscall('bpf', 321, 0, 0, 0)\nsyscall('perf', 298, 0, 0, -1, -1, 0)\n"
         "syscall('io_uring', 425, 1, 0)\nsyscall('keyctl', 250, 0, 0)\nsyscall('userfaultfd', 323, 0)",),
        nsjail=Outcome("OK", {k: "EPERM" for k in ("bpf", "perf", "io_uring", "keyctl", "userfaultfd")},
                       note=SECCOMP),
        # Unfiltered, the calls reach the kernel's own argument checks (EINVAL, EFAULT for the NULL
        # arguments); userfaultfd is refused by the vm.unprivileged_userfaultfd sysctl, not by us.
        rlimit=Outcome("OK", {"bpf": "EINVAL", "perf": "EFAULT", "io_uring": "EFAULT", "keyctl": "EINVAL",
                              "userfaultfd": "EPERM"}, contained=False, note=NOT_FILTERED),
    ),
    Attack(
        "raise_rlimits", "raises its rlimits past the hard limits",
        ("import resource\nfor name in ('RLIMIT_AS', 'RLIMIT_NPROC', 'RLIMIT_CPU', 'RLIMIT_FSIZE', "
         "'RLIMIT_NOFILE'):\n    which = getattr(resource, name)\n"
         "    attempt(name, resource.setrlimit, which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))",),
        **same(Outcome("OK", {k: "ValueError" for k in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_FSIZE",
                                                           "RLIMIT_NOFILE")}, note="hard limits set, caps dropped")),
    ),
    Attack(
        "nice", "os.nice(-1) and setpriority on pid 1",
        ("attempt('nice', os.nice, -1)\nattempt('setpriority', os.setpriority, os.PRIO_PROCESS, 1, -5)",),
        **same(Outcome("OK", {"nice": "EPERM", "setpriority": "EPERM|EACCES"}, note="no CAP_SYS_NICE")),
    ),
    # -- state that should not carry over -------------------------------------------------------------
    Attack(
        "poison_modules", "poisons sys.modules, builtins and sympy; the next request checks",
        ("import builtins, math, sympy\nsys.modules['math'] = None\nbuiltins.len = lambda x: 0\n"
         "sympy.factorint = lambda n: 'poisoned'\nprint('poisoned: ok')",
         "import math\nprint(f'clean: {math.isqrt(16) == 4 and len([1]) == 1 and sympy.factorint(4) == {2: 2}}')"),
        **same(Outcome("OK", {"clean": "True"}, note="every request is a fresh fork of the zygote")),
    ),
    Attack(
        "forged_frames", "writes malformed frames to its own control socket",
        ("import gc\nproc = [o for o in gc.get_objects() if type(o).__name__ == 'SessionProcess'][0]\n"
         "framing = sys.modules['framing']\nframing.write_frame(proc.ctl_fd, {'event': 'worker'})\n"
         "framing.write_frame(proc.ctl_fd, {'event': 'worker_died', 'pid': [], 'status': 'x'})\n"
         "time.sleep(1)",),
        **same(Outcome("CRASHED", fields={"message": r"the session broke the sandbox protocol \(event: 'worker' with "
                                                     r"fields \['event'\] is not in the schema\) and was ended"},
                       note="its session is dropped; the zygote and other sessions live (was: the zygote died)")),
    ),
    *[
        Attack(
            f"forged_kill_{slug}", f"tells the zygote that {whom} is its worker, then runs past its deadline",
            ("import gc\nproc = [o for o in gc.get_objects() if type(o).__name__ == 'SessionProcess'][0]\n"
             f"sys.modules['framing'].write_frame(proc.ctl_fd, {{'event': 'worker', 'pid': {pid}, 'holder': 1}})\n"
             "while True:\n    pass",
             "attempt('victim', os.kill, VICTIM_PID, 0)"),
            limits={"timeout_ms": 800}, max_seconds=5,
            **same(Outcome("OK", {"victim": "EPERM"}, note="the zygote kills a pid only while it runs as the "
                                                           f"session's uid (was: {was})")),
        )
        for slug, whom, pid, was in [
            ("session", "another session's holder", "VICTIM_PID", "it killed the other session's process"),
            ("server", "the server", "SERVER_PID", "in rlimit mode as root it killed the server, or any pid"),
        ]
    ],
]


@dataclass(frozen=True)
class Boundary:
    """One of issue 29's attacks on the trust boundaries (a test in `test_boundaries.py`, both modes): what
    it does, and the modes where it is not contained yet. There its test is a strict xfail that says what
    happens now; whoever contains it sees an XPASS, removes the mode from `gaps` and regenerates the table."""

    name: str
    issue_class: int
    title: str
    now: str  # what happens in the modes of `gaps`
    gaps: tuple[str, ...] = ("nsjail", "rlimit")


BOUNDARIES: list[Boundary] = [
    Boundary("hijack_later_calls", 1, "a stateless cell takes its runner's sockets (found through gc), leaves a "
             "setsid daemon and SIGKILLs its holder; the daemon announces itself as the worker",
             "the daemon answers later calls of another client (OK, the attacker's output) and reads their code",
             gaps=()),
    Boundary("crash_deep_json", 2, "a 100k-deep JSON frame on its control socket",
             "RecursionError in the frame parser: the zygote and every session on it die", gaps=()),
    Boundary("crash_status_2_70", 2, "`worker_died` with status 2**70",
             "OverflowError in os.WIFSIGNALED: the zygote and every session on it die", gaps=()),
    Boundary("crash_pid_list_deadline", 2, "a worker pid sent as a JSON list, then its deadline passes",
             "TypeError (unhashable) in kill_worker, outside any try: the zygote and every session on it die",
             gaps=()),
    Boundary("crash_forged_24mib_utf8", 2, "a forged 24 MiB result of 4-byte UTF-8 for its own request",
             "re-encoded (ensure_ascii) to 72 MiB, over the 64 MiB frame limit: the server kills the zygote",
             gaps=()),
    Boundary("stopped_holder_resumed", 3, "SIGSTOPs its runner's holder; a grandchild SIGCONTs it 4 s later",
             "frames queued meanwhile put the runner off by one: later innocent calls answer CRASHED", gaps=()),
    Boundary("stopped_holder_never_resumed", 3, "SIGSTOPs its runner's holder for good",
             "later innocent calls routed to that runner time out", gaps=()),
    Boundary("memory_of_earlier_sessions", 4, "a fresh fork scans its own anonymous memory (/proc/self/maps, "
             "ctypes.string_at) for an earlier session's code",
             "found: what the zygote relayed stays in its heap, so in every later fork"),
    Boundary("sysv_shared_memory", 5, "a 0666 SysV segment, read by a later session of another uid; 3 x 160 MiB "
             "segments under a 384 MiB memory limit",
             "the other uid cannot read it (an IPC namespace per session), but the segments outlive the call "
             "until the kernel frees the session's namespace (asynchronously, within ~200 ms), and no memory "
             "limit counts them"),
    Boundary("orphan_after_stateless_call", 6, "a sleeper, then SIGKILL to its holder, in a stateless call "
             "(non-default limits)", "the sleeper outlives the call", gaps=()),
    Boundary("orphan_after_timed_out_session", 6, "the same in a session cell that times out; the session is closed",
             "the sleeper outlives the session", gaps=()),
    Boundary("orphan_after_server", 6, "the same in a stateless call, then SIGTERM to the server",
             "the sleeper survives the server, under pid 1", gaps=()),
    Boundary("folders_of_benign_sessions", 7, "12 benign sessions write a file, then close",
             "their folders stay: Zygote.close closes the sockets while the holder cleans up, and the holder dies "
             "on a broken pipe before its rmtree", gaps=()),
    Boundary("announced_frames", 8, "announces a 60 MiB frame on each of its two sockets, sends 59 MiB of each",
             "the zygote holds ~118 MiB more, per such session", gaps=()),
    Boundary("forged_early_ok", 9, "forges an OK for its own request, then computes 4 s on, past a 1 s timeout_ms",
             "the caller gets the forged OK while the cell computes on past its deadline", gaps=()),
    Boundary("planted_runner_folder", 10, "a stateless call chmod 777s its runner folder; a session of another uid "
             "plants a folder in it", "the runner's cleanup (as its uid) cannot remove it; later calls find it",
             gaps=()),
    Boundary("abstract_unix_socket", 11, "a session binds an abstract unix socket; a stateless call and another "
             "session connect", "they connect: rlimit mode gives a session no network namespace of its own (it would "
             "take away the host network the mode is for)", gaps=("rlimit",)),
    Boundary("vsock", 11, "creates an AF_VSOCK socket", "created: rlimit mode has no seccomp", gaps=("rlimit",)),
    Boundary("output_16mib", 12, "prints 16 MiB under max_output_bytes=16 MiB",
             "the answer exceeds gRPC's 4 MiB: RESOURCE_EXHAUSTED", gaps=()),
    Boundary("every_field_full", 12, "fills stdout, stderr and the exception's type, message and traceback, "
             "1 MiB each, in a session", "over gRPC's 4 MiB: RESOURCE_EXHAUSTED, and the session is lost", gaps=()),
    Boundary("tiny_frame_flood", 12, "floods its control socket with 6-byte frames while another session runs "
             "print(1)", "that session's p50 rises 7-12x over its p50 beside a plain CPU hog (~20 ms here)", gaps=()),
    Boundary("non_utf8_code", 12, "code that is not UTF-8 (Execute and Session)", "UNKNOWN, not INVALID_ARGUMENT",
             gaps=()),
]


def render_table() -> str:
    """The attack tables of SECURITY.md, from ATTACKS and BOUNDARIES."""
    rows = ["| attack | what it does | nsjail | rlimit |", "|---|---|---|---|"]
    for attack in ATTACKS:
        cells = []
        for mode in ("nsjail", "rlimit"):
            outcome = attack.outcome(mode)
            verdict = "contained" if outcome.contained else "**not contained**"
            cells.append(f"{verdict}: {'/'.join(outcome.statuses)}" + (f"; {outcome.note}" if outcome.note else ""))
        rows.append(f"| `{attack.name}` | {attack.title.replace('|', '/')} | {cells[0]} | {cells[1]} |")
    rows += ["", "Trust boundaries (issue 29, `tests/security/test_boundaries.py`; contained means: the innocent "
             "callers' answers right, no process, file or SysV object left, the same zygote and the server serving):",
             "", "| attack | class | what it does | nsjail | rlimit |", "|---|---|---|---|---|"]
    for b in BOUNDARIES:
        cells = [f"**not contained** (strict xfail): {b.now}" if mode in b.gaps else "contained"
                 for mode in ("nsjail", "rlimit")]
        rows.append(f"| `{b.name}` | {b.issue_class} | {b.title.replace('|', '/')} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render_table(), end="")
