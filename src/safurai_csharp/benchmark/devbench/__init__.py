"""DevBench: a dev set shaped like the test set, that the test set never sees.

The generated dev set (stage split's held-out tasks) comes from the training data's own
distribution: it measures whether a model learned its training tasks, and it ranked three
recipes the reverse of HumanEval-C# (docs/results.md). Recipe choices need problems like the
test set's that are not the test set, e.g. MultiPL-E's C# MBPP, whose source is not on this
machine. DevBench is that: problems written for this project in HumanEval's own format (a
typed Python signature, a docstring with `>>>` examples, `check(candidate)` asserts),
translated to C# by the same translator, with the same types (long, List<long>, ...), prompt
shape and harness as HumanEval-C#.

`problems.jsonl` (beside this module) holds one problem per line: task_id `DevBench/<k>`, prompt,
canonical_solution (Python), test, entry_point, and cs_solution, a C# method body that passes
the translated tests in the corrected mode: every problem is solvable as translated (tests:
tests/benchmark/test_devbench.py). None of them is a HumanEval or MBPP problem or a rewording of
one; the test suite checks names and word 10-grams against HumanEval. Like the benchmark and
its reference solutions, DevBench is evaluation material: the data stages' decontamination
blocks it, and no stage trains on it. benchmark/build.py's build_devbench_cs translates it (this module stays
free of the translator: decontamination imports it).

Official mode compares list and dictionary results by reference (upstream MultiPL-E's
defect), which no solution passes; DevBench is scored in the corrected mode only.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ..humaneval import problem_name

DATA_FILE = "problems.jsonl"
ORIGIN = "safurai-csharp-devbench"
SUITE = "DevBench"

# The tiers by task number (docs/benchmark.md); `eval_dev.devbench_tiers` scores a subset. The
# basics tier is where recipe choices were made: the first 120 are too hard for the 0.5B to see
# a regression on easy problems (the base solves 30 of them at all).
TIERS: dict[str, range] = {
    "strings": range(0, 40),
    "integers": range(100, 140),
    "collections": range(200, 240),
    "basics": range(300, 360),
}


def load_devbench() -> list[dict[str, Any]]:
    """The problems in HumanEval's format (plus `cs_solution`), in file order."""
    text = (resources.files(__name__) / DATA_FILE).read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    bad = [r.get("task_id") for r in rows if not str(r.get("task_id", "")).startswith(f"{SUITE}/")]
    if bad:
        raise ValueError(f"{DATA_FILE}: task ids must be {SUITE}/<k>, got {bad[:3]}")
    return rows


def tier_of(name: str) -> str:
    """The tier of a problem by its MultiPL-E name `DevBench_<k>_<entry_point>`."""
    suite, number, *_ = name.split("_")
    if suite != SUITE or not number.isdigit():
        raise ValueError(f"{name!r} is not a {SUITE} problem name ({SUITE}_<k>_<entry_point>)")
    for tier, ids in TIERS.items():
        if int(number) in ids:
            return tier
    raise ValueError(f"{name!r}: task number {number} is in no {SUITE} tier ({', '.join(TIERS)})")


def select_tiers(rows: list[dict[str, Any]], tiers: list[str] | None) -> list[dict[str, Any]]:
    """The MultiPL-E-format rows (`name` DevBench_<k>_...) of the given tiers, in file order;
    None keeps them all."""
    if tiers is None:
        return rows
    unknown = sorted(set(tiers) - set(TIERS))
    if unknown:
        raise ValueError(f"unknown {SUITE} tier(s) {unknown}; known: {', '.join(TIERS)}")
    return [r for r in rows if tier_of(r["name"]) in tiers]


def reference_completions() -> dict[str, str]:
    """Problem name -> the C# reference body as a MultiPL-E completion (it continues the
    prompt; the tests start with the method's closing brace)."""
    return {problem_name(r): "\n" + r["cs_solution"].strip("\n").rstrip() + "\n" for r in load_devbench()}


def reference_texts() -> list[str]:
    """Every C# reference body, for decontamination blocklists."""
    return [r["cs_solution"] for r in load_devbench()]
