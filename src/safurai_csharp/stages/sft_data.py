"""Stage sft_data: stage split's train and validation tasks (and, with source `student`, the
student's own passing solutions of stage self_sample) -> SFT rows in every format of
sft_data.formats (synth/sft_format.py): data/sft/{train,validation}.jsonl.

A student sample equal to the teacher's body (self_sample's `same_as_teacher`) is skipped when
the teacher's rows are there too: it would train the same answer twice. Validation rows come
from the teacher only (self_sample samples training tasks only), so the
validation loss of two recipes compares on the same rows. The dev side never reaches here.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import ParamsError, SftDataParams, load_params
from ..jsonl import read_jsonl, write_json, write_jsonl
from ..synth.sft_format import rows
from ..tracking import flatten, log_metrics, stage_run


def build(train: list[dict], validation: list[dict], samples: list[dict],
          cfg: SftDataParams) -> tuple[list[dict], list[dict], dict]:
    """Pure core: (train rows, validation rows, metrics)."""
    by_id = {ex["id"]: ex for ex in train}
    train_rows: list[dict] = []
    if "teacher" in cfg.sources:
        for ex in train:
            train_rows += rows(ex, cfg.formats, source="teacher")
    same_as_teacher = 0
    if "student" in cfg.sources:
        for s in samples:
            ex = by_id.get(s["task_id"])
            if ex is None:
                raise ParamsError(f"self_sample row for task {s['task_id']!r}, which is not a training task of "
                                 f"stage split: rerun self_sample (dvc repro self_sample)")
            if "teacher" in cfg.sources and s.get("same_as_teacher"):
                # the teacher's row already trains on this body: a second copy doubles the task's weight
                same_as_teacher += 1
                continue
            train_rows += rows(ex, cfg.formats, source="student", completion=s["completion"], sample=s["sample"])
    validation_rows = [r for ex in validation for r in rows(ex, cfg.formats, source="teacher")]
    count = Counter((r["source"], r["format"]) for r in train_rows)
    metrics = {"train": len(train_rows), "validation": len(validation_rows),
               "train_tasks": len({r["task_id"] for r in train_rows}),
               "student_samples_same_as_teacher": same_as_teacher,
               "rows": {f"{src}_{fmt}": count[(src, fmt)] for src in cfg.sources for fmt in cfg.formats}}
    return train_rows, validation_rows, metrics


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg = params.sft_data
    tasks = Path(params.split.out_dir)
    with stage_run(params.mlflow, "sft_data", params={"sft_data": cfg.model_dump()},
                   inputs={"train_tasks": tasks / "train.jsonl", "validation_tasks": tasks / "validation.jsonl",
                           "samples": params.self_sample.out},
                   outputs={"sft_data": cfg.out_dir}) as mlflow:
        train, validation, metrics = build(read_jsonl(tasks / "train.jsonl"), read_jsonl(tasks / "validation.jsonl"),
                                           read_jsonl(params.self_sample.out), cfg)
        if not train:
            raise ParamsError(f"no training rows: sft_data.formats {cfg.formats} and sources {cfg.sources} give "
                             f"nothing for the {metrics['train_tasks']} training tasks (add format chat or alpaca, "
                             f"or see metrics/split.json: render_failures)")
        out = Path(cfg.out_dir)
        write_jsonl(out / "train.jsonl", train)
        write_jsonl(out / "validation.jsonl", validation)
        write_json(cfg.metrics, metrics)
        log_metrics(mlflow, flatten("", metrics))
        mlflow.log_artifact(cfg.metrics)
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sft-data", help="SFT rows in the chosen formats from split and self_sample (stage sft_data)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
