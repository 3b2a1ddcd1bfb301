"""Progress on long steps (issue #14): tqdm bars with rate and ETA, the library vLLM and
transformers already draw theirs with, so every bar of a stage looks and behaves alike.

On a terminal a bar redraws in place. In a log (CI, `dvc repro > log`, nohup) tqdm would
print a line per redraw; `quiet_logs`, called once by the CLI, sets tqdm's own
TQDM_MININTERVAL for the process (and the stage commands DVC starts inherit it) so every bar,
ours, vLLM's "Processed prompts" and the Trainer's, prints at most one line every
LOG_INTERVAL_S seconds: a long stage shows it is alive and how fast it goes, without a flood.
A value the user set wins; TQDM_DISABLE=1 turns every bar off.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

LOG_INTERVAL_S = 30


def quiet_logs(stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        os.environ.setdefault("TQDM_MININTERVAL", str(LOG_INTERVAL_S))


def devnull() -> TextIO:
    """One process-wide sink for bars that must count without being seen."""
    global _DEVNULL
    if _DEVNULL is None:
        _DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    return _DEVNULL


_DEVNULL: TextIO | None = None


def bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar (same arguments); `unit`, `desc` and `total` say what is counted."""
    from tqdm import tqdm

    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
