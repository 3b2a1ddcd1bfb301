"""Stage eval_dev@<target>: the dev set, scored like HumanEval-C#.

Every choice of recipe, knob or checkpoint is made on this score; HumanEval-C#
(eval_multipl_e) stays the test set. `eval_dev.source` picks the dev set:

- devbench (default): hand-written problems in HumanEval's format, translated like the test
  set (benchmark/devbench/; stage benchmark writes them). Same prompt shape, types and
  harness as HumanEval-C#, none of its problems.
- split: stage split's held-out slice of the pipeline's own validated tasks, never trained on
  (split keeps every family on one side). It comes from the training data's distribution, so
  it measures whether a model learned its training tasks, not whether it got better at the
  test set's (docs/results.md: it ranked three recipes the reverse of HumanEval-C#).

`eval_dev.devbench_tiers` scores a subset of DevBench's tiers (e.g. [basics], the easy tier
every recipe choice in docs/results.md was made on). Same targets, engine and sandbox as
eval_multipl_e; sampling, protocol and test modes from eval_dev.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..benchmark.devbench import select_tiers
from ..config import ParamsError, load_params
from ..evaluation import run_stage


def run(target: str, params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg, ev = params.eval_dev, params.eval_multipl_e
    if target not in ev.targets:
        raise ParamsError(f"eval_multipl_e.targets has no {target!r}; known: {', '.join(ev.targets)}")
    model_dir = Path(ev.targets[target].model_dir)
    dev = cfg.problems_path(params.benchmark, params.split.out_dir)
    out, metrics_path = cfg.results_path(target), cfg.metrics_path(target)
    logged = {"eval_dev": cfg.model_dump(), "engine": ev.engine, "engine_options": ev.engine_options.of(ev.engine),
              "sandbox": params.sandbox.model_dump(), "target": target, "model_dir": str(model_dir)}
    return run_stage(f"eval_dev@{target}", (cfg.source, dev), model_dir, cfg, engine=ev.engine,
                     engine_options=ev.engine_options.of(ev.engine), sandbox=params.sandbox,
                     mlflow_cfg=params.mlflow, logged=logged, out=out, metrics_path=metrics_path,
                     select=lambda rows: select_tiers(rows, cfg.devbench_tiers))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-dev", help="sample and score the dev set (stage eval_dev)")
    p.add_argument("--target", required=True, help="a key of eval_multipl_e.targets (e.g. base)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.target, a.params))
