"""Run one command inside bubblewrap with rlimits, a wall clock and an output cap.

What protects what (see docs/sandbox.md):
* bubblewrap ``--unshare-all``: no network (empty net namespace), own PID namespace
  (killing bwrap kills every process the program started), own IPC/UTS namespaces.
* only /usr (+ /lib, /lib64, /bin symlinks), /etc/mono and /etc/ld.so.cache are
  visible, read-only; the job directory is bound alone; /tmp is a private size-bound
  tmpfs; ``--remount-ro /`` leaves nothing else writable; ``--clearenv`` drops the
  caller's environment.
* as root the sandbox runs under a dedicated unprivileged uid (``setpriv``), which is
  what makes RLIMIT_NPROC (thread/fork bombs) enforceable and drops all privileges;
  uids are held exclusively per run (uids.py), so concurrent Executors never share
  an RLIMIT_NPROC account.
* rlimits via util-linux ``prlimit``: AS (memory), CPU, FSIZE, NOFILE, NPROC.
* the parent enforces wall time and output size and kills the whole process group.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_STDERR_KEEP = 4096


def _popen(argv: list[str], *, stderr: int) -> subprocess.Popen:
    # Own session (so the whole group can be killed) and a minimal environment: the
    # caller's variables never reach setpriv/prlimit/bwrap, let alone the program.
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                            start_new_session=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                            close_fds=True)


@dataclass
class Outcome:
    stdout: bytes  # at most the output cap
    stderr_tail: bytes
    returncode: int | None
    timed_out: bool  # killed by the wall clock or the idle clock
    output_capped: bool  # killed because stdout+stderr exceeded the cap
    wall_s: float

    @property
    def signal(self) -> int | None:
        rc = self.returncode
        if rc is None:
            return None
        if rc < 0:
            return -rc
        # bwrap reports a child killed by signal N as exit status 128 + N
        return rc - 128 if 128 < rc < 160 else None


def _ro_system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for d in ("/lib", "/lib64", "/bin", "/sbin", "/lib32", "/libx32"):
        p = Path(d)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), d]
        elif p.is_dir():
            args += ["--ro-bind", d, d]
    for d in ("/etc/mono", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"):
        if os.path.exists(d):
            args += ["--ro-bind", d, d]
    return args


def _user_task_count(uid: int) -> int:
    n = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                pass
    return n


class Sandbox:
    """Builds and runs sandboxed commands for one worker."""

    def __init__(self, uid: int | None = None):
        """uid: the sandbox uid/gid when root (from uids.allocate_uids); ignored otherwise."""
        self.is_root = os.geteuid() == 0
        if self.is_root and uid is None:
            raise ValueError("a sandbox uid is required when running as root")
        self.uid = uid if self.is_root else os.getuid()
        self.gid = uid if self.is_root else os.getgid()

    def prepare_dir(self, path: Path) -> None:
        """Make a host job directory usable by the sandbox uid (root mode)."""
        if self.is_root:
            os.chown(path, self.uid, self.gid)
        os.chmod(path, 0o755)

    def argv(
        self,
        cmd: list[str],
        *,
        job_dir: Path,
        job_writable: bool,
        cpu_s: int,
        memory_mb: int,
        max_tasks: int,
        file_size_mb: int,
        max_open_files: int,
        ro_files: tuple[tuple[str, str], ...] = (),
    ) -> list[str]:
        """ro_files: extra (host path, sandbox path) read-only binds (our own tools)."""
        if self.is_root:
            nproc = max_tasks
        else:
            # Degraded: RLIMIT_NPROC counts every process of this user, so allow what
            # already runs plus the budget (documented; run as root for a strict cap).
            nproc = _user_task_count(self.uid) + max_tasks
        fsize = file_size_mb << 20
        argv = [
            "prlimit",
            f"--as={memory_mb << 20}",
            f"--cpu={cpu_s}:{cpu_s + 1}",
            f"--fsize={fsize}",
            f"--nofile={max_open_files}",
            f"--nproc={nproc}",
            f"--core=0",
            "--",
        ]
        if self.is_root:
            argv += ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--"]
        argv += ["bwrap", "--unshare-all", "--clearenv", "--die-with-parent", "--new-session"]
        argv += _ro_system_binds()
        # bwrap's /dev is a tmpfs as big as the host's RAM, and /dev/shm in it is writable:
        # bound /dev/shm like /tmp and make the rest of /dev read-only (device nodes still work).
        argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(fsize), "--tmpfs", "/dev/shm",
                 "--remount-ro", "/dev", "--size", str(fsize), "--tmpfs", "/tmp"]
        argv += ["--bind" if job_writable else "--ro-bind", str(job_dir), "/job"]
        for src, dst in ro_files:
            argv += ["--ro-bind", src, dst]
        argv += ["--remount-ro", "/", "--chdir", "/tmp"]
        argv += ["--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp"]
        argv += ["--setenv", "LANG", "C.UTF-8", "--setenv", "MONO_GC_PARAMS", "nursery-size=8m"]
        return argv + ["--"] + cmd

    def start(self, argv: list[str]) -> subprocess.Popen:
        """Start a long-lived sandboxed process (the compile server) with binary pipes.

        stderr is discarded: only the nonce-tagged replies on stdout are trusted.
        """
        return _popen(argv, stderr=subprocess.DEVNULL)

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes = b"",
        wall_s: float,
        out_cap: int,
        idle_s: float | None = None,
        progress_marker: bytes | None = None,
    ) -> Outcome:
        """Run argv; kill its process group on wall/idle timeout or output overflow.

        With idle_s and progress_marker, an idle clock restarts each time a new
        progress_marker shows up in stdout, so a batch may run long as long as its
        programs keep finishing.
        """
        t0 = time.monotonic()
        proc = _popen(argv, stderr=subprocess.PIPE)
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        out, err = bytearray(), bytearray()
        err_total = 0
        timed_out = capped = False
        marks, last_progress = 0, t0
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        open_streams = 2
        while open_streams:
            now = time.monotonic()
            remaining = t0 + wall_s - now
            if idle_s is not None:
                remaining = min(remaining, last_progress + idle_s - now)
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(remaining, 0.5)):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                if key.data is out:
                    out += chunk
                    if progress_marker is not None:
                        m = out.count(progress_marker)
                        if m != marks:
                            marks, last_progress = m, time.monotonic()
                else:
                    err_total += len(chunk)
                    err += chunk
                    del err[:-_STDERR_KEEP]
                if len(out) + err_total > out_cap:
                    capped = True
                    break
            if capped:
                break
        if timed_out or capped:
            kill_group(proc)
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            rc = proc.wait()
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
        return Outcome(bytes(out[:out_cap]), bytes(err), rc, timed_out, capped, time.monotonic() - t0)


def kill_group(proc: subprocess.Popen) -> None:
    # Kill the sandbox's PID-namespace init (bwrap's child) first: the kernel then
    # kills every process in the namespace (threads, forks) and the outer bwrap reaps
    # it and exits. Killing only the outer bwrap would orphan the inner one to PID 1,
    # which does not reap zombies in some containers.
    try:
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        children = []
    for child in children:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
