"""One fine-tuning run: TRL SFTTrainer + PEFT LoRA on the (4-bit) base, resumable.

`train()` is the pure core of stage sft_qlora: it reads the data and the base, trains (or
resumes, see resume.py), evaluates on the validation split, writes the adapter to
sft_qlora.out_dir (process 0) and returns what the stage logs. Loss is on the completion
tokens only: the data are TRL prompt-completion pairs and completion_only_loss is on, so the
prompt (and, with packing, every other example's prompt) is masked with -100; padding too.
"""

from __future__ import annotations

import math
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import publish_dir
from ..config import CHECKPOINT_ROOT, DpoParams, SftQloraParams
from . import launch
from .data import load_splits, render_rows, to_dataset, tokenize_rows
from .model import load_model, load_tokenizer, lora_config
from .record import Quantization, TrainingRecord
from .resume import checkpoint_dir, last_checkpoint, run_key



@dataclass
class TrainResult:
    metrics: dict[str, Any]
    loss_curve: list[dict[str, float]]
    record: TrainingRecord
    log_params: dict[str, Any] = field(default_factory=dict)
    checkpoint_dir: str = ""


def sft_config(cfg: SftQloraParams, output_dir: str | Path, *, has_eval: bool, report_to: list[str]):
    import torch
    from trl import SFTConfig

    cpu = not torch.cuda.is_available()
    dtype = cfg.quantization.compute_dtype
    return SFTConfig(
        output_dir=str(output_dir), run_name="sft_qlora", seed=cfg.seed, data_seed=cfg.seed,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.micro_batch_size, per_device_eval_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio,
        optim=cfg.optim, bf16=dtype == "bfloat16", fp16=dtype == "float16",
        max_length=cfg.max_seq_length, packing=cfg.packing, packing_strategy="bfd",
        completion_only_loss=True,
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        eval_strategy="steps" if has_eval else "no", eval_steps=cfg.eval_steps,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2,
        logging_strategy="steps", logging_steps=cfg.logging_steps, report_to=report_to, disable_tqdm=False,
        use_cpu=cpu, ddp_backend="gloo" if cpu and launch.launched() else None, ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
    )


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def loss_curve(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [{"step": int(e["step"]), "loss": round(float(e["loss"]), 6)}
            for e in log_history if "loss" in e and "step" in e]


def _last(log_history: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    return next((e for e in reversed(log_history) if key in e), None)


def _save_adapter(trainer, out_dir: Path, record: TrainingRecord) -> None:
    """Every process calls it (FSDP/DeepSpeed gather the weights); process 0 writes, atomically."""
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if trainer.args.should_save and tmp.exists():
        shutil.rmtree(tmp)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(tmp))
    if trainer.args.should_save:
        (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle of local paths; the record says it all
        record.write(tmp)  # training/record.py: what merge reads
        publish_dir(tmp, out_dir)
    trainer.accelerator.wait_for_everyone()


def step_budget(cfg: SftQloraParams | DpoParams, rows: int, processes: int) -> int:
    """Optimizer steps to run: `epochs` epochs, but at most max_steps (-1: no cap). The Trainer
    alone would let max_steps override epochs and loop over a small training set many times.
    `rows` are the prepared (packed) rows; one epoch = ceil(rows / (micro x processes)) batches
    per process (accelerate evens them out) over gradient_accumulation_steps, as the Trainer counts."""
    batches = math.ceil(math.ceil(rows / cfg.micro_batch_size) / processes)
    per_epoch = max(math.ceil(batches / cfg.gradient_accumulation_steps), 1)
    steps = max(math.ceil(cfg.epochs * per_epoch), 1)
    return min(steps, cfg.max_steps) if cfg.max_steps > 0 else steps


def _float32_adapters(model) -> None:
    """Keep the trainable LoRA weights in float32 (the matmuls still run in compute_dtype).

    TRL casts them to bf16 on a quantized base; bf16 weights drop updates smaller than 2^-9 of
    their size, and PEFT's load_adapter upcasts them to float32 when Trainer resumes from a
    checkpoint, so a resumed run would silently continue in another precision than an
    uninterrupted one (measured: adapters ~1 bf16 ulp apart). FSDP / DeepSpeed runs keep TRL's
    bf16: a sharded unit needs one dtype for all its weights."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


@dataclass
class Prepared:
    trainer: Any
    splits: dict[str, Any]
    key: dict[str, Any]
    run_dir: Path
    resume_from: Path | None
    model_digest: str
    joint_rows: int  # rows tokenized TRL's way (data.tokenize_rows): their seam is not inference's


def prepare(cfg: SftQloraParams, *, checkpoint_root: str | Path = CHECKPOINT_ROOT, report_to: list[str] | None = None,
            callbacks: list[Any] | None = None) -> Prepared:
    """Data, base, LoRA and the SFTTrainer, ready to train (or resume); nothing trained yet."""
    from trl import SFTTrainer

    from ..hashing import path_digest
    from .bnb_guard import guard_callback

    splits = load_splits(cfg.data_dir)
    model_digest = path_digest(Path(cfg.model_dir))
    key = run_key(cfg, data_sha256={n: s.sha256 for n, s in splits.items()}, model_digest=model_digest,
                  accelerate_digest=launch.config_digest(cfg.accelerate_config))
    run_dir = checkpoint_dir(checkpoint_root, key)
    resume_from = last_checkpoint(run_dir, prune=launch.is_main_process())
    has_eval = bool(splits["validation"].rows)
    tokenizer = load_tokenizer(cfg.model_dir)
    tokenized = {n: tokenize_rows(render_rows(s.rows, tokenizer), tokenizer, completion_eos=cfg.completion_eos)
                 for n, s in splits.items()}
    model = load_model(cfg, cfg.model_dir, sharded=launch.sharded(cfg.accelerate_config))
    trainer = SFTTrainer(
        model=model, args=sft_config(cfg, run_dir, has_eval=has_eval, report_to=report_to or ["none"]),
        train_dataset=to_dataset(tokenized["train"].rows),
        eval_dataset=to_dataset(tokenized["validation"].rows) if has_eval else None,
        processing_class=tokenizer, peft_config=lora_config(cfg.lora),
        callbacks=[guard_callback(), *(callbacks or [])],
    )
    if not launch.sharded(cfg.accelerate_config):
        _float32_adapters(trainer.model)
    trainer.args.max_steps = step_budget(cfg, len(trainer.train_dataset), launch.world_size())
    return Prepared(trainer, splits, key, run_dir, resume_from, model_digest,
                    sum(t.joint_rows for t in tokenized.values()))


def train(cfg: SftQloraParams, *, checkpoint_root: str | Path = CHECKPOINT_ROOT, report_to: list[str] | None = None,
          callbacks: list[Any] | None = None, keep_checkpoints: bool = False) -> TrainResult:
    """Train (or resume) the adapter described by `cfg` (params.sft_qlora); see the module docstring."""
    from .bnb_guard import repacked_layers

    started = time.perf_counter()
    prep = prepare(cfg, checkpoint_root=checkpoint_root, report_to=report_to, callbacks=callbacks)
    trainer, splits, resume_from = prep.trainer, prep.splits, prep.resume_from
    load_seconds = time.perf_counter() - started
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    history = trainer.state.log_history
    last_eval = _last(history, "eval_loss")
    if splits["validation"].rows and (last_eval is None or last_eval.get("step") != trainer.state.global_step):
        trainer.evaluate()  # the final validation loss (unless the last step just evaluated)
        last_eval = _last(history, "eval_loss")
    assert not repacked_layers(trainer.model), "4-bit weights repacked for inference during training"

    train_seconds = float(output.metrics.get("train_runtime", 0.0))
    tokens = int(getattr(trainer, "_total_train_tokens", 0))  # this session, all processes (TRL)
    last_train = _last(history, "loss")
    n_trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    metrics = {
        "train_loss": round(float(last_train["loss"]), 6) if last_train else None,
        "eval_loss": round(float(last_eval["eval_loss"]), 6) if last_eval else None,
        "steps": int(trainer.state.global_step), "epochs": round(float(trainer.state.epoch or 0.0), 4),
        "resumed_from_step": int(resume_from.name.rsplit("-", 1)[1]) if resume_from else 0,
        "train_rows": len(splits["train"].rows), "validation_rows": len(splits["validation"].rows),
        "joint_tokenized_rows": prep.joint_rows,
        "trained_tokens": tokens, "train_seconds": round(train_seconds, 2),
        "tokens_per_s": round(tokens / train_seconds, 1) if train_seconds and tokens else 0.0,
        "load_seconds": round(load_seconds, 2), "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": peak_rss_mb(), "trainable_params": int(n_trainable), "processes": launch.world_size(),
    }
    quant = Quantization.from_params(cfg.quantization).model_dump()
    record = TrainingRecord(
        base_model={"dir": cfg.model_dir, "sha256": prep.model_digest}, quantization=quant,
        lora=cfg.lora.model_dump(),
        data={n: {"sha256": s.sha256, "rows": len(s.rows)} for n, s in splits.items()},
        steps=metrics["steps"], seed=cfg.seed, libraries=prep.key["libraries"],
    )
    _save_adapter(trainer, Path(cfg.out_dir), record)
    weight_sum = sum(float(p.detach().double().sum()) for p in trainer.model.parameters() if p.requires_grad)
    # one line per process: in DDP every process must end with the same weights
    launch.say(f"sft-qlora: process {launch.rank()}/{launch.world_size()}: {metrics['steps']} steps, "
               f"{tokens} tokens, LoRA weight sum {weight_sum:.12g}")
    if launch.is_main_process():
        launch.say(f"sft-qlora: adapter written to {cfg.out_dir}")
    resolved = trainer.model.peft_config["default"].target_modules
    log_params = {"peft.r": cfg.lora.r, "peft.lora_alpha": cfg.lora.alpha, "peft.lora_dropout": cfg.lora.dropout,
                  "peft.target_modules": cfg.lora.target_modules,
                  "peft.resolved_target_modules": sorted({m.rsplit(".", 1)[-1] for m in resolved}),
                  **{f"bnb.{k}": v for k, v in quant.items()}}
    if launch.is_main_process() and not keep_checkpoints:
        shutil.rmtree(prep.run_dir, ignore_errors=True)  # the adapter is written: nothing left to resume
    return TrainResult(metrics=metrics, loss_curve=loss_curve(history), record=record, log_params=log_params,
                       checkpoint_dir=str(prep.run_dir))
