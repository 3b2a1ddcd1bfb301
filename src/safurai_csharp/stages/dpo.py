"""Stage dpo: preference training of sft_qlora's adapter on pairs of the student's own samples
(a passing and a failing answer to one training task, labelled by the sandbox in stage
self_sample; synth/preference.py), with TRL's DPOTrainer (training/dpo.py). Merge reads its
output.

Off by default (`dpo.enabled: false`): the pairs are still built, written and counted, and
sft_qlora's adapter is published unchanged, so a profile switches preference training on with
one param (`dvc exp run -S dpo.enabled=true`) and the graph stays the same. Either way the output
holds `preference_record.json` (what this stage did), and, when it trained, a training record
whose steps include the preference steps and whose data names the pairs' sha256.

Why (issue #10): on instruct models the reported gains from execution feedback come from
on-policy data, rejection-sampling fine-tuning (self_sample + sft_data) and preference training
on execution-labelled pairs (PLUM, CodeDPO). The dev set decides whether it stays on.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from ..atomic import publish_dir, staging_dir
from ..config import ParamsError, load_params
from ..hashing import file_sha256
from ..jsonl import read_jsonl, write_atomic, write_json, write_jsonl
from ..synth.preference import pairs as build_pairs
from ..synth.split import SIDES
from ..tracking import flatten, log_metrics, stage_run
from ..training import record as training_record
from ..training.record import DataSplit

RECORD = "preference_record.json"


def publish(adapter_in: Path, out_dir: Path, note: dict[str, Any], trainer: Any = None) -> None:
    """Build the output beside out_dir and put it in place atomically: the trained adapter
    (`trainer`), else sft_qlora's files as they are; the training record carried over (with the
    preference steps and pairs when trained) and this stage's own record."""
    import json

    from ..training.dpo import save_adapter

    staged = staging_dir(out_dir)
    try:
        if trainer is None:
            shutil.copytree(adapter_in, staged, dirs_exist_ok=True)
        else:
            save_adapter(trainer, staged)
            for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
                if (adapter_in / name).is_file():
                    shutil.copy2(adapter_in / name, staged / name)
            record = training_record.read(adapter_in)
            if record is not None:
                data = {**record.data, "preference": DataSplit(sha256=note["pairs_sha256"], rows=note["pairs"])}
                record.model_copy(update={"steps": record.steps + note["steps"], "data": data}).write(staged)
        write_atomic(staged / RECORD, json.dumps(note, indent=2, sort_keys=True) + "\n")
        publish_dir(staged, out_dir)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg, sft = params.dpo, params.sft_qlora
    adapter_in, out_dir = Path(sft.out_dir), Path(cfg.out_dir)
    train_path = Path(params.split.out_dir) / f"{SIDES[0]}.jsonl"
    if not (adapter_in / "adapter_config.json").is_file():
        raise ParamsError(f"{adapter_in}/adapter_config.json: no adapter to start from (run sft_qlora first)")
    inputs = {"adapter": adapter_in, "train_tasks": train_path, "verdicts": params.self_sample.verdicts}
    with stage_run(params.mlflow, "dpo", params={"dpo": cfg.model_dump()}, inputs=inputs,
                   outputs={"adapter": out_dir, "pairs": cfg.pairs}) as mlflow:
        try:
            pairs, counts = build_pairs(read_jsonl(train_path), read_jsonl(params.self_sample.verdicts),
                                        cfg.max_pairs_per_task)
        except KeyError as exc:
            raise ParamsError(str(exc.args[0])) from None
        write_jsonl(cfg.pairs, pairs)
        metrics: dict[str, Any] = {"enabled": cfg.enabled, **counts}
        trainer = None
        if cfg.enabled:
            from ..training.dpo import train_dpo

            if not pairs:
                raise ParamsError(f"dpo.enabled but no preference pairs: none of the {counts['tasks']} sampled "
                                  f"tasks has both a passing and a failing answer ({counts['tasks_all_pass']} all "
                                  f"pass, {counts['tasks_all_fail']} all fail); raise self_sample.k or its "
                                  f"temperature, or set dpo.enabled: false")
            result, trainer = train_dpo(cfg, sft, pairs, report_to=["mlflow"])
            metrics.update(result.metrics)
        note = {"enabled": cfg.enabled, "pairs": len(pairs), "steps": metrics.get("steps", 0),
                "beta": cfg.beta, "loss_type": cfg.loss_type, "sft_weight": cfg.sft_weight,
                "learning_rate": cfg.learning_rate, "pairs_sha256": file_sha256(Path(cfg.pairs))}
        publish(adapter_in, out_dir, note, trainer)
        write_json(cfg.metrics, metrics)
        log_metrics(mlflow, flatten("", {k: v for k, v in metrics.items() if k != "enabled"}))
        mlflow.log_artifact(cfg.metrics)
        if cfg.enabled:
            mlflow.log_artifacts(str(out_dir), artifact_path="adapter")
    print(f"dpo: {len(pairs)} pairs from {counts['tasks_with_pairs']} of {counts['tasks']} tasks; "
          + (f"{metrics['steps']} steps, adapter written to {out_dir}" if cfg.enabled
             else f"off: {adapter_in} published as {out_dir}"))
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dpo", help="preference training on the student's own passing/failing pairs (stage dpo)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
