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


def file_digests(path: Path) -> dict[str, str]:
    """{relative posix path: sha256} of every file under a directory, sorted by path."""
    return {f.relative_to(path).as_posix(): file_sha256(f)
            for f in sorted(p for p in path.rglob("*") if p.is_file())}


def tree_digest(digests: dict[str, str]) -> str:
    """A directory's digest from its file_digests."""
    h = hashlib.sha256()
    for rel, digest in digests.items():
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


def path_digest(path: Path) -> str:
    """sha256 of a file, or of a directory's (relative path, file hash) list."""
    return file_sha256(path) if path.is_file() else tree_digest(file_digests(path))
