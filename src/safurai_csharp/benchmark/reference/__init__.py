"""Hand-written reference solutions for the 158 HumanEval-C# problems (issue #3).

They prove that every problem is solvable under ``corrected`` tests and pin down, by
name, the problems whose *upstream* ("official") tests no correct solution can pass.

* ``solutions.jsonl``: one line per problem, ``{"name", "completions": [text]}``, in
  benchmark order, the text continuing the prompt exactly like a MultiPL-E completion
  (method body only; the tests start with the method's closing brace). This is the
  input format of ``safurai-csharp eval-completions``.
* ``official_failures.json``: name -> ``{"defect", "why", "corrected_passes"}``.

The solutions are evaluation material: the data stages must keep them out of every
training set (``reference_texts()`` feeds the decontamination blocklist).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

SOLUTIONS_FILE = "solutions.jsonl"
OFFICIAL_FAILURES_FILE = "official_failures.json"


def _path(name: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(name)))


def solutions_path() -> Path:
    return _path(SOLUTIONS_FILE)


def load_solutions() -> list[dict[str, Any]]:
    """Rows ``{"name", "completions"}`` in benchmark order."""
    return [json.loads(line) for line in solutions_path().read_text().splitlines() if line.strip()]


def load_official_failures() -> dict[str, dict[str, Any]]:
    """Problems whose upstream tests cannot pass even with a correct solution."""
    return json.loads(_path(OFFICIAL_FAILURES_FILE).read_text())


def reference_texts() -> list[str]:
    """Every solution body, for decontamination blocklists."""
    return [text for row in load_solutions() for text in row["completions"]]


__all__ = [
    "load_official_failures",
    "load_solutions",
    "reference_texts",
    "solutions_path",
]
