"""Stage sft_data: the training set = filtered examples ∪ the new examples of every
evolution round, split into train/validation and formatted for SFT (synth/sft_format.py).

The split is by lineage: an example and everything evolved from it land on the same side,
so validation loss is not flattered by near-copies of training examples.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from ..config import Params, load_params
from ..jsonl import read_jsonl, write_json, write_jsonl
from ..synth.sft_format import sft_record
from ..tracking import flatten, log_metrics, stage_run


def root_of(example: dict, by_id: dict[str, dict]) -> str:
    seen = set()
    while example.get("parent_id") and example["parent_id"] in by_id and example["id"] not in seen:
        seen.add(example["id"])
        example = by_id[example["parent_id"]]
    return example["id"]


def build(filtered: list[dict], rounds: list[list[dict]], params: Params) -> tuple[list[dict], list[dict], dict]:
    """Pure core: (train, validation, metrics)."""
    cfg = params.sft_data
    examples, ids = [], set()
    per_round = {0: 0}
    for k, pool in enumerate([filtered, *rounds]):
        for ex in pool:
            if ex.get("carried") or ex["id"] in ids:
                continue
            ids.add(ex["id"])
            examples.append(ex)
            per_round[k] = per_round.get(k, 0) + 1
    by_id = {ex["id"]: ex for pool in [filtered, *rounds] for ex in pool}
    train, validation = [], []
    for ex in examples:
        h = hashlib.sha256(f"{cfg.seed}:{root_of(ex, by_id)}".encode()).digest()
        bucket = int.from_bytes(h[:8], "big") / 2**64
        (validation if bucket < cfg.validation_fraction else train).append(sft_record(ex))
    metrics = {"examples": len(examples), "train": len(train), "validation": len(validation),
               "per_round": {str(k): v for k, v in sorted(per_round.items())},
               "growth": round(len(examples) / max(1, len(filtered)), 3)}
    return train, validation, metrics


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg = params.sft_data
    round_files = [params.evolve.rounds[k].out for k in sorted(params.evolve.rounds, key=int)]
    with stage_run(params.mlflow, "sft_data", params={"sft_data": cfg.model_dump()},
                   inputs={"filtered": params.filter.out, **{f"round{i + 1}": f for i, f in enumerate(round_files)}},
                   outputs={"sft_data": cfg.out_dir}) as mlflow:
        train, validation, metrics = build(read_jsonl(params.filter.out), [read_jsonl(f) for f in round_files], params)
        out = Path(cfg.out_dir)
        write_jsonl(out / "train.jsonl", train)
        write_jsonl(out / "validation.jsonl", validation)
        write_json(cfg.metrics, metrics)
        log_metrics(mlflow, flatten("", metrics))
        mlflow.log_artifact(cfg.metrics)
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sft-data", help="assemble and split the SFT training set (stage sft_data)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
