"""The reaper: ends what is left of a session from outside it, then cleans up after it.

A session's own holder used to sweep its uid and remove its folder on the way out; a cell can stop or
kill its holder (same uid), so that sweep was the session's to skip. The reaper is a small process the
zygote forks before it warms up (a few MiB, so forking from it is cheap), running as the jail's root
and not dumpable: no session can signal, stop or read it. For each session the zygote ends it:

1. kills every process of the session's uid (a fork that becomes that uid and calls `kill(-1, SIGKILL)`,
   which the kernel applies atomically against concurrent forks; then once more, after a moment, for
   anything that was mid-syscall);
2. removes the session's folder as root (whatever modes, sticky bits or owners a cell left in it);
3. answers the uid, and only then does the zygote hand that uid to a new session.

SysV IPC objects need no step: every session has an IPC namespace of its own (see `zygote.py`), which
the kernel frees with its last process. Without uids (an unprivileged zygote) there is no uid to kill:
the zygote kills the session's process groups itself, and the reaper only removes the folder.

Stdlib only; this runs inside the jail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

SECOND_PASS_S = 0.02  # a process killed in the middle of a syscall finishes that syscall first


def kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` but init, from a child that becomes `uid` (kill(-1) as that uid)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass  # ESRCH: nothing left
        os._exit(0)
    os.waitpid(pid, 0)


def remove(folder: str) -> None:
    def unlock(function, path, _exc) -> None:  # a folder a cell made 0 or sticky: root opens it again
        try:
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
            function(path)
        except OSError:
            pass

    if folder and os.path.lexists(folder):
        shutil.rmtree(folder, onerror=unlock)


def serve(requests: int, answers: int) -> None:
    """JSON lines of sessions to end ({"uid": int | null, "folder": str}); answers each uid on a line.

    Whatever arrived together is ended together: one second pass (and one pause) per batch, so that a
    burst of closing sessions does not queue behind each other's pauses."""
    for fd in range(3, 1 << 16):  # nothing of the zygote's: no server channel, no session socket
        if fd not in (requests, answers):
            try:
                os.close(fd)
            except OSError:
                pass
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pending = b""
    while True:
        data = os.read(requests, 1 << 16)
        if not data:
            os._exit(0)  # the zygote is gone
        pending += data
        *lines, pending = pending.split(b"\n")
        jobs = [json.loads(line) for line in lines if line]
        for second_pass in (False, True):
            if second_pass and any(job["uid"] is not None for job in jobs):
                time.sleep(SECOND_PASS_S)
            for job in jobs:
                if job["uid"] is not None:
                    kill_uid(job["uid"])
                remove(job["folder"])
        if jobs:
            os.write(answers, b"".join((json.dumps(job["uid"]) + "\n").encode() for job in jobs))
