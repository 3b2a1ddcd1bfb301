"""Content hashes for pins and lineage (sha256, streamed: model files are hundreds of MB)."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 22


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def path_digest(path: Path) -> str:
    """sha256 of a file, or of a directory's (relative path, file hash) list."""
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()
