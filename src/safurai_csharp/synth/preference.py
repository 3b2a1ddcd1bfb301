"""Preference pairs from the student's own samples, labelled by the sandbox (stage dpo).

Stage self_sample has the student solve each training task k times in the MultiPL-E completion
format and records every sample's verdict (data/onpolicy/verdicts.jsonl). A pair joins two
samples **of one task**: one that passed the task's tests (chosen) and one that did not
(rejected), as execution-labelled preference training for code does (PLUM, CodeDPO). Both sides
are on-policy: what the student itself writes for the prompt it is measured in.

- A passing sample that closes its own method (completion_format.closes_early) is not chosen:
  it passes only because the tests' `}` closes what it left open (self_sample drops it too).
- Samples that differ only in layout count once on each side (completion_format.normalise).
- A task gives at most `max_per_task` pairs: the i-th distinct passing sample with the i-th
  distinct failing one, cycling through the shorter side, so every distinct sample is used
  before any is used twice. The order is the sampling order: the same verdicts give the same
  pairs.
- Rows are rendered with sft_format's `completion` format, the rows sft_qlora trains on: the
  same stripped prompt, each answer the body up to and including MultiPL-E's stop token.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from .completion_format import closes_early, normalise
from .sft_format import rows as sft_rows

FORMAT = "completion"  # self_sample samples the completion protocol only


def _distinct(samples: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    seen: set[str] = set()
    out = []
    for s in samples:
        key = normalise(s["completion"])
        if key and key not in seen:
            seen.add(key)
            out.append(s)
    return out


def pairs(examples: Iterable[Mapping[str, Any]], verdicts: Iterable[Mapping[str, Any]],
          max_per_task: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(pair rows, counts). `examples` are stage split's training examples (each with its `task`),
    `verdicts` self_sample's records (task_id, sample, completion, passed). A pair row holds
    task_id, prompt, chosen, rejected and the two sample indices."""
    if max_per_task < 1:
        raise ValueError(f"max_per_task must be at least 1 (got {max_per_task})")
    by_id = {ex["id"]: ex for ex in examples if ex.get("task")}
    by_task: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for v in verdicts:
        if v["task_id"] not in by_id:
            raise KeyError(f"a verdict for task {v['task_id']!r}, which is not a training task of stage split "
                           f"(rerun self_sample: dvc repro self_sample)")
        by_task[v["task_id"]].append(v)
    out: list[dict[str, Any]] = []
    counts = {"tasks": len(by_task), "tasks_all_pass": 0, "tasks_all_fail": 0, "tasks_with_pairs": 0}
    for task_id, samples in by_task.items():
        samples = sorted(samples, key=lambda s: s["sample"])
        chosen = _distinct(s for s in samples if s["passed"] and not closes_early(s["completion"]))
        rejected = _distinct(s for s in samples if not s["passed"])
        if not chosen or not rejected:
            counts["tasks_all_fail" if not chosen else "tasks_all_pass"] += 1
            continue
        counts["tasks_with_pairs"] += 1
        ex = by_id[task_id]
        for i in range(min(max_per_task, max(len(chosen), len(rejected)))):
            good, bad = chosen[i % len(chosen)], rejected[i % len(rejected)]
            row_good = sft_rows(ex, [FORMAT], source="student", completion=good["completion"], sample=good["sample"])[0]
            row_bad = sft_rows(ex, [FORMAT], source="student", completion=bad["completion"], sample=bad["sample"])[0]
            out.append({"id": f"{task_id}:{good['sample']}>{bad['sample']}", "task_id": task_id,
                        "prompt": row_good["prompt"], "chosen": row_good["completion"],
                        "rejected": row_bad["completion"], "chosen_sample": good["sample"],
                        "rejected_sample": bad["sample"]})
    counts["pairs"] = len(out)
    return out, counts
