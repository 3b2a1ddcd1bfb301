"""Exclusive sandbox uids for concurrent Executors.

RLIMIT_NPROC is accounted per real uid across the whole machine, so two Executors
(two processes: two test runs, eval and eval-completions, ...) that ran their
sandboxes under the same uid would share one thread/process budget and fail each
other with ``bwrap: Can't fork``. Each run therefore takes uids from a fixed range,
each held with an exclusive ``flock`` on ``<LOCK_DIR>/<uid>.lock`` until it is done;
the kernel drops the lock when the holder dies, so a crash never leaks a uid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path
from typing import Iterator

from .types import SandboxError

UID_BASE = 61000
UID_COUNT = 1000  # 61000..61999: unused by Debian's dynamic ranges (uids 1000-59999, 64000+)


def lock_dir() -> Path:
    base = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
    return base / "safurai-csharp-uids"


def _busy_uids() -> set[int]:
    """Uids that still own a process (e.g. left by a killed run): never reused."""
    busy = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                busy.add(entry.stat().st_uid)
            except OSError:
                pass
    return busy


def _safe_dir(d: Path) -> None:
    # The lock dir lives under a world-writable sticky dir: refuse one planted by
    # another user (it could hand out locks that do not exclude anyone).
    d.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise SandboxError(f"unsafe uid lock directory {d} (must be a dir owned by root, not group/world-writable)")


@contextlib.contextmanager
def allocate_uids(n: int) -> Iterator[list[int]]:
    """Yield n distinct sandbox uids held exclusively for the block (root only).

    Not root: the sandbox runs under the caller's own uid (degraded mode), so this
    yields that uid n times and locks nothing.
    """
    if os.geteuid() != 0:
        yield [os.getuid()] * n
        return
    d = lock_dir()
    _safe_dir(d)
    busy = _busy_uids()
    held: list[tuple[int, int]] = []
    try:
        for uid in range(UID_BASE, UID_BASE + UID_COUNT):
            if len(held) == n:
                break
            if uid in busy:
                continue
            fd = os.open(d / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            held.append((uid, fd))
        if len(held) < n:
            raise SandboxError(f"only {len(held)} of {n} sandbox uids free in {UID_BASE}..{UID_BASE + UID_COUNT - 1}")
        yield [uid for uid, _ in held]
    finally:
        for _, fd in held:
            os.close(fd)  # closing the only descriptor releases the flock
