"""Stage filter: generated examples → training-grade examples, with a funnel.

Steps, in params order (default: parse, execution, dedup, decontam, heuristics[, judge]),
each drop reason counted. Then the best `keep` survive: by judge score when the judge ran,
else a seeded random sample (generation order is topic-biased by chunk, a sample is not).
The funnel goes to metrics/filter.json, a DVC plot file and MLflow.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from ..config import FilterParams, SandboxParams, TeacherParams, load_params
from ..jsonl import read_jsonl, write_json, write_jsonl
from ..synth import cost
from ..synth.steps import Record, build_steps, run_steps
from ..tracking import flatten, log_metrics, stage_run


def judge_chat(lazy, max_new_tokens: int, seed: int) -> Callable[[list[list[dict]]], list[str]]:
    """Greedy chat on the teacher (opened on first use by the LazyTeacher)."""
    from ..engines import SamplingConfig

    sampling = SamplingConfig(max_new_tokens=max_new_tokens, seed=seed)
    return lambda conversations: [o[0] for o in lazy.engine.chat(conversations, sampling)]


def generation_cost(path: str) -> dict[str, Any]:
    """generate's tokens and seconds (its metrics file), or nothing when it is absent (the
    records were made some other way)."""
    import json
    from pathlib import Path

    p = Path(path)
    return json.loads(p.read_text()).get("generation", {}) if p.is_file() else {}


def select(records: list[Record], keep: int, seed: int) -> list[Record]:
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    rank = {i: r for r, i in enumerate(order)}
    best = sorted(range(len(records)), key=lambda i: (-(records[i].get("judge_score") or 0), rank[i]))[:keep]
    return [records[i] for i in sorted(best)]


def filter_records(records: list[Record], cfg: FilterParams, teacher: TeacherParams, sandbox: SandboxParams,
                   benchmark: list[str]) -> tuple[list[Record], list[dict[str, Any]]]:
    """Pure core: survivors (in generation order) and the funnel. `benchmark` lists the problems
    files the decontam step blocks (the test set and DevBench, deps of the stage)."""
    from ..csharp import make_executor

    from ..synth.teacher import LazyTeacher

    with LazyTeacher(teacher, cfg.seed) as lazy:
        ctx: dict[str, Any] = {"chat": judge_chat(lazy, cfg.judge.max_new_tokens, cfg.seed), "benchmark": benchmark}
        if "execution" in cfg.steps:
            ctx["executor"] = make_executor(sandbox)
        steps = build_steps(cfg.steps, cfg, ctx)
        kept, funnel = run_steps([dict(r) for r in records], steps)
    final = select(kept, cfg.keep, cfg.seed)
    funnel.append({"step": "keep", "kept": len(final), "dropped": {"over_keep": len(kept) - len(final)} if len(kept) > len(final) else {}})
    return final, funnel


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg = params.filter
    records = read_jsonl(params.generate.out)
    logged = {"filter": cfg.model_dump(), "sandbox": params.sandbox.model_dump()}
    with stage_run(params.mlflow, "filter", params=logged,
                   inputs={"generated": params.generate.out, "benchmark": params.benchmark.out,
                           "devbench": params.benchmark.devbench_out},
                   outputs={"filtered": cfg.out}) as mlflow:
        start = time.perf_counter()
        kept, funnel = filter_records(records, cfg, params.teacher, params.sandbox,
                                      params.benchmark.evaluation_files())
        generation = generation_cost(params.generate.metrics)
        for rec in kept:
            rec.update(round=0, method=None, parent_id=None)
        metrics = {"input": len(records), "kept": len(kept),
                   "yield": round(len(kept) / max(1, len(records)), 4),
                   "funnel": {f["step"]: f["kept"] for f in funnel},
                   "dropped": {f["step"]: f["dropped"] for f in funnel if f["dropped"]},
                   # generate's tokens and seconds + the filter's own: the data stages' cost
                   "cost": cost.per_kept(len(kept), generation.get("generated_tokens", 0),
                                         generation.get("seconds", 0) + time.perf_counter() - start)}
        write_jsonl(cfg.out, kept)
        write_json(cfg.metrics, metrics)
        write_json(cfg.funnel_plot, [{"step": f"{i} {f['step']}", "examples": f["kept"]} for i, f in enumerate(funnel)])
        log_metrics(mlflow, flatten("funnel", metrics["funnel"]))
        log_metrics(mlflow, {"kept": len(kept), "yield": metrics["yield"]})
        log_metrics(mlflow, flatten("cost", {k: v for k, v in metrics["cost"].items() if v is not None}))
        mlflow.log_artifact(cfg.metrics)
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("filter", help="parse, execute, dedup, decontaminate, keep the best (stage filter)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
