"""Preference training of a trained LoRA adapter: TRL's DPOTrainer on pairs of the student's own
samples (synth/preference.py), the core of stage dpo.

The policy is the base as sft_qlora loaded it (4-bit when it was) with sft_qlora's adapter,
trainable; the reference is that adapter frozen: TRL copies the loaded adapter into a second one
named "ref" and computes the reference log-probabilities through it, so no second model is held.
Only the trained adapter is saved.

The pairs reach TRL already tokenized, by training/data.py's rule: the prompt alone as
inference tokenizes it, each answer on its own, and no EOS after a completion-format answer
unless sft_qlora.completion_eos. TRL's own preparation would append EOS to every text answer
(the measured cause of the model closing the file, docs/results.md) and merge the prompt's last
token with the answer's first.

No resume: a killed run starts again (the runs are minutes long; sft_qlora's checkpoints hold
the expensive part). One process: sft_qlora.accelerate_config does not apply here.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import CHECKPOINT_ROOT, DpoParams, SftQloraParams
from .data import COMPLETION_FORMAT, tokenize_rows
from .model import load_model, load_tokenizer
from .trainer import _float32_adapters, loss_curve, peak_rss_mb, step_budget

STAGE = "dpo"


@dataclass
class DpoResult:
    metrics: dict[str, Any]
    loss_curve: list[dict[str, float]]


def tokenize_pairs(pairs: list[dict[str, Any]], tokenizer: Any, *, completion_eos: bool) -> list[dict[str, list[int]]]:
    """prompt_ids / chosen_ids / rejected_ids of each pair, each answer tokenized as sft_qlora
    tokenizes a completion-format row (training/data.tokenize_rows)."""
    out = []
    for pair in pairs:
        sides = {}
        for side in ("chosen", "rejected"):
            row = {"prompt": pair["prompt"], "completion": pair[side], "format": COMPLETION_FORMAT}
            tok = tokenize_rows([row], tokenizer, completion_eos=completion_eos).rows[0]
            cut = tok["completion_mask"].index(1)
            sides[side] = (tok["input_ids"][:cut], tok["input_ids"][cut:])
        if sides["chosen"][0] != sides["rejected"][0]:
            raise ValueError(f"pair {pair.get('id')}: its two answers tokenize the shared prompt differently")
        out.append({"prompt_ids": sides["chosen"][0], "chosen_ids": sides["chosen"][1],
                    "rejected_ids": sides["rejected"][1]})
    return out


def dpo_config(cfg: DpoParams, sft: SftQloraParams, output_dir: Path, steps: int, report_to: list[str]):
    import torch
    from trl import DPOConfig

    dtype = sft.quantization.compute_dtype
    losses = [cfg.loss_type] + (["sft"] if cfg.sft_weight > 0 else [])
    return DPOConfig(
        output_dir=str(output_dir), run_name=STAGE, seed=cfg.seed, data_seed=cfg.seed,
        beta=cfg.beta, loss_type=losses, loss_weights=[1.0, cfg.sft_weight] if cfg.sft_weight > 0 else None,
        max_steps=steps, num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.micro_batch_size, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio,
        bf16=dtype == "bfloat16", fp16=dtype == "float16", max_length=cfg.max_length,
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        save_strategy="no", eval_strategy="no", logging_strategy="steps", logging_steps=1,
        report_to=report_to, disable_tqdm=False, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
    )


def train_dpo(cfg: DpoParams, sft: SftQloraParams, pairs: list[dict[str, Any]], *,
              checkpoint_root: str | Path = CHECKPOINT_ROOT,
              report_to: list[str] | None = None) -> tuple[DpoResult, Any]:
    """Train sft_qlora's adapter (sft.out_dir) on `pairs`; returns the result and the trainer,
    whose `save_adapter(dir)` writes the trained adapter."""
    from datasets import Dataset
    from peft import PeftModel
    from trl import DPOTrainer

    from .bnb_guard import guard_callback, repacked_layers

    if not pairs:
        raise ValueError("no preference pairs: no training task has both a passing and a failing sample "
                         "(see metrics/dpo.json; raise self_sample.k or its temperature)")
    started = time.perf_counter()
    tokenizer = load_tokenizer(sft.model_dir)
    rows = tokenize_pairs(pairs, tokenizer, completion_eos=sft.completion_eos)
    model = PeftModel.from_pretrained(load_model(sft, sft.model_dir), sft.out_dir, is_trainable=True)
    steps = step_budget(cfg, len(rows), 1)
    run_dir = Path(checkpoint_root) / STAGE
    # TRL prepares the text columns it is given (EOS appended, prompt and answer tokenized as one
    # string); it is handed a one-pair placeholder and the pairs tokenized our way replace it
    # before training (module docstring).
    placeholder = Dataset.from_list([{"prompt": pairs[0]["prompt"], "chosen": pairs[0]["chosen"],
                                      "rejected": pairs[0]["rejected"]}])
    trainer = DPOTrainer(model=model, args=dpo_config(cfg, sft, run_dir, steps, report_to or ["none"]),
                         train_dataset=placeholder, processing_class=tokenizer, callbacks=[guard_callback()])
    trainer.train_dataset = Dataset.from_list(rows)
    _float32_adapters(trainer.model)
    load_seconds = time.perf_counter() - started
    output = trainer.train()
    assert not repacked_layers(trainer.model), "4-bit weights repacked for inference during training"
    history = trainer.state.log_history
    last = next((e for e in reversed(history) if "loss" in e), {})
    seconds = float(output.metrics.get("train_runtime", 0.0))
    metrics = {
        "pairs": len(rows), "steps": int(trainer.state.global_step),
        "epochs": round(float(trainer.state.epoch or 0), 4),
        "train_loss": round(float(last["loss"]), 6) if "loss" in last else None,
        "reward_accuracy": round(float(last["rewards/accuracies"]), 4) if "rewards/accuracies" in last else None,
        "reward_margin": round(float(last["rewards/margins"]), 6) if "rewards/margins" in last else None,
        "tokens": sum(len(r["prompt_ids"]) * 2 + len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in rows),
        "train_seconds": round(seconds, 2), "load_seconds": round(load_seconds, 2),
        "peak_rss_mb": peak_rss_mb(),
    }
    shutil.rmtree(run_dir, ignore_errors=True)
    return DpoResult(metrics, loss_curve(history)), trainer


def save_adapter(trainer: Any, out_dir: str | Path) -> None:
    """The trained adapter only (not TRL's frozen "ref" copy), as PEFT writes it."""
    trainer.model.save_pretrained(str(out_dir), selected_adapters=["default"])
