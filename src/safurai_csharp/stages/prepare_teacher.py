"""Stage prepare_teacher: the teacher model of the data stages, in teacher.model_dir.

See synth/teacher.py: `base` links the student's base checkpoint (self-instruct), an
embedded name / hub id / directory is converted like the base model, `none` records a
remote (openai-engine) teacher.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..config import load_params
from ..tracking import log_metrics, stage_run


def run(params_path: str = "params.yaml") -> dict:
    from ..synth.teacher import prepare_teacher

    params = load_params(params_path)
    cfg = params.teacher
    with stage_run(params.mlflow, "prepare_teacher", params={"teacher": cfg.model_dump()},
                   inputs={"base": params.base_model.out_dir}, outputs={"teacher": cfg.model_dir}) as mlflow:
        start = time.perf_counter()
        record = prepare_teacher(cfg, Path(params.base_model.out_dir), Path(params.base_model.wheel_dir))
        log_metrics(mlflow, {"seconds": time.perf_counter() - start})
        mlflow.log_dict(record, "teacher.json")
        mlflow.set_tags({"teacher.source": cfg.source, "teacher.engine": cfg.engine})
    return record


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare-teacher", help="materialise the data stages' teacher (stage prepare_teacher)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
