"""Stage eval_multipl_e@<target>: sample completions from a model and score them in the sandbox.

eval_multipl_e.protocol `completion` is MultiPL-E's protocol: the prompt is stripped, the model
continues it (no chat template), each completion is cut at the first stop token, and the
program is prompt + completion + "\\n" + tests. `chat` asks through the model's chat template
and takes the function's body from the reply (protocols.py). Both test modes are scored from
the same completions, so official and corrected pass@1 differ only by the tests.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import ParamsError, load_params
from ..evaluation import run_stage


def run(target: str, params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg = params.eval_multipl_e
    if target not in cfg.targets:
        raise ParamsError(f"eval_multipl_e.targets has no {target!r}; known: {', '.join(cfg.targets)}")
    model_dir = Path(cfg.targets[target].model_dir)
    out, metrics_path = cfg.results_path(target), cfg.metrics_path(target)
    logged = {"eval_multipl_e": {k: v for k, v in cfg.model_dump().items() if k != "targets"},
              "sandbox": params.sandbox.model_dump(), "target": target, "model_dir": str(model_dir)}
    return run_stage(f"eval_multipl_e@{target}", ("benchmark", params.benchmark.out), model_dir, cfg,
                     engine=cfg.engine, engine_options=cfg.engine_options.of(cfg.engine), sandbox=params.sandbox,
                     mlflow_cfg=params.mlflow, logged=logged, out=out, metrics_path=metrics_path)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-multipl-e", help="sample and score HumanEval-C# (stage eval_multipl_e)")
    p.add_argument("--target", required=True, help="a key of eval_multipl_e.targets (e.g. base)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.target, a.params))
