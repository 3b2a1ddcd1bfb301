"""Publishing a stage's output directory: one helper for every stage that writes one.

A stage builds its output in a staging directory next to the destination (same file system)
and `publish_dir` puts it in place: the previous output is moved aside, the new one renamed
into place, and only then is the previous one deleted. A crash while building leaves the
previous output untouched; a crash between the two renames (two system calls) leaves it as
`.<name>.old-*` beside the destination; never a half-written directory under the real name.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def publish_dir(staged: str | Path, out: str | Path) -> None:
    """Replace directory `out` (if any) by `staged`, which must be on the same file system."""
    staged, out = Path(staged), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    aside = None
    if out.exists() or out.is_symlink():
        aside = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        out.rename(aside / out.name)
    try:
        staged.rename(out)
    except BaseException:
        if aside is not None:
            (aside / out.name).rename(out)
            aside.rmdir()
        raise
    if aside is not None:
        shutil.rmtree(aside)


def staging_dir(out: str | Path) -> Path:
    """A fresh, empty directory beside `out` to build it in (removed by the caller on failure)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
