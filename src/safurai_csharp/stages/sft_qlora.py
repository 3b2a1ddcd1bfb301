"""Stage sft_qlora: QLoRA fine-tuning of the base on data/sft (training/ holds the core).

One MLflow run per execution (tracking.stage_run): TRL/transformers' MLflow integration
(report_to mlflow) logs the trainer's arguments and per-step loss, eval loss, learning rate
and grad norm into that same run (an active run is reused, never nested, as long as
MLFLOW_NESTED_RUN / MLFLOW_RUN_ID are unset, which this stage ensures); the stage adds the
LoRA and quantization settings, the data's sha256 and row counts (tags input.*.sha256,
metrics summary.*), tokens/s, peak RSS, system metrics (CPU, memory; psutil) and the adapter
directory as artifacts. DVC: the adapter is the out, metrics/train.json and the loss curve
metrics/train_loss.json are metrics and plots.

With sft_qlora.accelerate_config set, the command re-runs itself under `accelerate launch`
(training/launch.py); process 0 logs and writes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import load_params
from ..jsonl import write_json
from ..tracking import flatten, log_metrics, stage_run

# Environment that would make transformers' MLflowCallback open its own (nested or other) run,
# or upload every checkpoint as a model.
HF_MLFLOW_ENV = ("MLFLOW_NESTED_RUN", "MLFLOW_RUN_ID", "HF_MLFLOW_LOG_ARTIFACTS")


@contextlib.contextmanager
def _environment(unset: tuple[str, ...]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in unset}
    for k in unset:
        os.environ.pop(k, None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    from ..training import launch
    from ..training.data import split_path
    from ..training.trainer import train

    params = load_params(params_path)
    cfg = params.sft_qlora
    if cfg.accelerate_config and not launch.launched():
        launch.relaunch(cfg.accelerate_config, params_path)
        return json.loads(Path(cfg.metrics).read_text())
    if not launch.is_main_process():
        return train(params.sft_qlora, report_to=["none"]).metrics
    inputs = {"train": split_path(cfg.data_dir, "train"), "validation": split_path(cfg.data_dir, "validation")}
    # System metrics: stage_run (mlflow.system_metrics), as for every stage.
    with (_environment(HF_MLFLOW_ENV),
          stage_run(params.mlflow, "sft_qlora", params={"sft_qlora": cfg.model_dump()}, inputs=inputs,
                    outputs={"adapter": cfg.out_dir}) as mlflow):
        result = train(params.sft_qlora, report_to=["mlflow"])
        mlflow.set_tag("input.base_model.sha256", result.record.base_model.sha256)
        mlflow.log_params({k: str(v)[:6000] for k, v in result.log_params.items()})
        write_json(cfg.metrics, result.metrics)
        write_json(cfg.loss_plot, result.loss_curve)
        # summary.*: the per-step series (loss, eval_loss, ...) are the Trainer's own keys
        log_metrics(mlflow, flatten("summary", result.metrics))
        mlflow.log_artifacts(cfg.out_dir, artifact_path="adapter")
        mlflow.log_artifact(cfg.metrics)
        mlflow.log_artifact(cfg.loss_plot)
        if hasattr(mlflow, "flush_async_logging"):
            mlflow.flush_async_logging()  # the Trainer logs asynchronously
    return result.metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sft-qlora", help="QLoRA fine-tuning of the base on data/sft (stage sft_qlora)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
