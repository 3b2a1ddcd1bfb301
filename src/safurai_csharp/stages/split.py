"""Stage split: filtered ∪ every evolution round's new examples -> train / validation / dev
tasks, by lineage (synth/split.py), each rendered as a MultiPL-E completion task
(synth/completion_format.py) and checked in the sandbox: the teacher's own body must pass the
rendered tests.

- train.jsonl, validation.jsonl: the examples, each with `task` = its verified MultiPL-E
  problem plus the reference `completion`, or null when it does not render (those still train
  in the chat and alpaca formats).
- dev.jsonl: MultiPL-E problems (the benchmark's jsonl layout, `source_id` = the example) of the
  dev side's verified renderings: what eval_dev scores every model on. Dev examples that do not
  render are used nowhere, so no family ever trains and scores at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import SplitParams, load_params
from ..csharp import make_executor
from ..jsonl import read_jsonl, write_json, write_jsonl
from ..synth.completion_format import render_all, verify
from ..synth.conventions import choose
from ..synth.split import SIDES, assign, collect
from ..tracking import flatten, log_metrics, stage_run

DEV_PREFIX = "dev_"


def build(filtered: list[dict], rounds: list[list[dict]], cfg: SplitParams,
          executor: Any) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """Pure core but for the sandbox: ({side: records}, metrics)."""
    examples, per_round = collect(filtered, rounds)
    sides = assign(examples, [filtered, *rounds], seed=cfg.seed, dev_fraction=cfg.dev_fraction,
                   validation_fraction=cfg.validation_fraction)
    rendered, render_failures = render_all(examples)
    types: dict[str, int] = {}
    if cfg.types == "multipl_e" and rendered:
        chosen, labels = choose([t for _, t in rendered], executor)
        ok = [t is not None for t in chosen]
        rendered = [(i, t or old) for (i, old), t in zip(rendered, chosen, strict=True)]
        for label in labels:
            types[label] = types.get(label, 0) + 1
    else:
        ok = verify([t for _, t in rendered], executor) if rendered else []
    task_of = {i: t for (i, t), good in zip(rendered, ok, strict=True) if good}
    out: dict[str, list[dict]] = {s: [] for s in SIDES}
    for i, (ex, where) in enumerate(zip(examples, sides, strict=True)):
        task = task_of.get(i)
        if where == "dev":
            if task is not None:
                out["dev"].append(task.problem(name=f"{DEV_PREFIX}{ex['id']}", source_id=ex["id"],
                                               round=ex.get("round", 0)))
            continue
        out[where].append({**ex, "task": None if task is None else task.problem(completion=task.completion)})
    metrics = {"examples": len(examples), "per_round": per_round,
               "growth": round(len(examples) / max(1, len(filtered)), 3),
               **{s: len(out[s]) for s in SIDES},
               "dev_unrendered": sum(1 for s in sides if s == "dev") - len(out["dev"]),
               "rendered": len(task_of), "render_rate": round(len(task_of) / max(1, len(examples)), 4),
               "render_failures": {**dict(sorted(render_failures.items())),
                                   "sandbox": sum(1 for good in ok if not good)},
               **({"types": dict(sorted(types.items()))} if types else {})}
    return out, metrics


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg = params.split
    round_files = [params.evolve.rounds[k].out for k in sorted(params.evolve.rounds, key=int)]
    with stage_run(params.mlflow, "split", params={"split": cfg.model_dump(), "sandbox": params.sandbox.model_dump()},
                   inputs={"filtered": params.filter.out, **{f"round{i + 1}": f for i, f in enumerate(round_files)}},
                   outputs={"tasks": cfg.out_dir}) as mlflow:
        out, metrics = build(read_jsonl(params.filter.out), [read_jsonl(f) for f in round_files], cfg,
                             make_executor(params.sandbox))
        for name, rows in out.items():
            write_jsonl(Path(cfg.out_dir) / f"{name}.jsonl", rows)
        write_json(cfg.metrics, metrics)
        log_metrics(mlflow, flatten("", metrics))
        mlflow.log_artifact(cfg.metrics)
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("split", help="train/validation/dev tasks by lineage, in MultiPL-E's shape (stage split)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
