"""Sections of training and what follows it: sft_qlora, merge, promote, report."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, model_validator

from ..dtypes import FLOAT_DTYPES, STORAGE_DTYPES
from .base import Float, Section


class DpoParams(Section):
    """`safurai-csharp dpo` (stage dpo): preference training of sft_qlora's adapter on pairs of the
    student's own samples of one training task (a passing one chosen, a failing one rejected;
    stage self_sample's verdicts), TRL's DPOTrainer, the reference being the adapter as sft_qlora
    left it. Off: the adapter passes through unchanged (merge always reads dpo.out_dir)."""

    enabled: bool = Field(False, description="false: publish sft_qlora's adapter as is (the pairs are still "
                          "written and counted)")
    max_pairs_per_task: int = Field(2, ge=1, description="caps how much one task weighs")
    beta: Float = Field(0.1, gt=0, description="strength of the pull towards the reference (TRL's beta)")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = "sigmoid"
    sft_weight: Float = Field(1.0, ge=0, description="weight of an NLL loss on the chosen answers beside the "
                              "preference loss (RPO); 0 = plain DPO")
    epochs: Float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1, description="cap on optimizer steps (whichever ends first); -1: no cap")
    learning_rate: Float = Field(5e-5, gt=0, lt=1)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: Float = Field(0.1, ge=0, lt=1)
    micro_batch_size: int = Field(2, ge=1, description="pairs per forward pass (each is two sequences)")
    gradient_accumulation_steps: int = Field(4, ge=1)
    max_length: int = Field(1024, ge=32, description="tokens of prompt + answer; longer pairs are cut at the end")
    gradient_checkpointing: bool = Field(True, description="recompute activations in backward: each pair is two "
                                         "sequences of up to max_length through the policy, so DPO keeps it on "
                                         "where sft_qlora's short rows can go without (8.0 GB peak with it, D)")
    seed: int = 42
    pairs: str = Field("data/dpo/pairs.jsonl", description="the preference pairs the stage built")
    out_dir: str = Field("models/adapter_dpo", description="the adapter merge reads")
    metrics: str = "metrics/dpo.json"

    @model_validator(mode="after")
    def _consistent(self) -> "DpoParams":
        if self.max_steps == 0:
            raise ValueError("max_steps 0 would train nothing: use -1 (no cap) or a positive cap, or enabled: false")
        return self


class MergeParams(Section):
    """`safurai-csharp merge` (stage merge): adapter + base -> one standalone checkpoint, registered.

    The quantization training used comes from the adapter's training_record.json (written by
    sft_qlora), else from sft_qlora.quantization: there is no second copy of it here."""

    base_dir: str = "models/base"
    adapter_dir: str = "models/adapter"
    into: Literal["original", "dequantized"] = Field(
        "dequantized", description="dequantized: the NF4 round trip of the base weights the adapter was trained on")
    dequantize_modules: Literal["all", "targets"] = Field(
        "all", description="all: every linear bitsandbytes quantized in training; targets: only the adapter's")
    work_dtype: Literal[FLOAT_DTYPES] = Field(
        "float32", description="dtype the base is loaded and merged in (never 4-bit)")
    dtype: Literal[FLOAT_DTYPES] = Field("bfloat16", description="dtype of the saved weights")
    out_dir: str = "models/merged"
    fidelity_prompts: int = Field(8, ge=1, le=12, description="how many of the 12 fixed C# prompts (fidelity.py)")
    min_agreement: Float = Field(0.0, ge=0, le=1, description="fail the merge below this top-token agreement")
    metrics: str = "metrics/merge.json"
    registry: bool = Field(True, description="register the merged model as a new version (alias candidate)")
    registered_model: str = Field("safurai-csharp-qwen05", min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "MergeParams":
        outs = {Path(self.out_dir).resolve()}
        for key in ("base_dir", "adapter_dir"):
            if Path(getattr(self, key)).resolve() in outs:
                raise ValueError(f"out_dir is the same directory as {key} ({self.out_dir}): the merge would "
                                 f"overwrite its own input; use e.g. models/merged")
        return self


class PromoteParams(Section):
    """`safurai-csharp promote` (stage promote): move the registry alias `champion` to the
    candidate merge registered when its pass@1 beats the champion's. The registered model is
    merge.registered_model."""

    target: str = Field("merged", description="the eval_multipl_e target that evaluated merge.out_dir")
    metric: Literal["corrected", "official"] = Field("corrected", description="whose pass@1 is compared")
    margin: Float = Field(0.0, ge=0, le=1, description="candidate must score strictly more than champion + margin")
    metrics: str = "metrics/promotion.json"


class ReportParams(Section):
    """`safurai-csharp report` (stage report): the candidate eval_multipl_e target against the
    baseline, paired over problems, in every eval_multipl_e mode."""

    baseline: str = Field("base", min_length=1, description="the eval_multipl_e target compared against")
    candidate: str = Field("merged", min_length=1, description="the eval_multipl_e target being judged")
    bootstrap_samples: int = Field(2000, ge=100, description="resamples of the pass@1 and difference intervals")
    permutations: int = Field(10000, ge=100, description="random sign flips of the n > 1 permutation test")
    seed: int = 0
    metrics: str = "metrics/report.json"
    per_problem_plot: str = "metrics/eval/per_problem.csv"

    @model_validator(mode="after")
    def _files(self) -> "ReportParams":
        if Path(self.metrics).suffix != ".json":
            raise ValueError(f"metrics must be a .json file (got {self.metrics})")
        if Path(self.per_problem_plot).suffix != ".csv":
            raise ValueError(f"per_problem_plot must be a .csv file: DVC reads a plot by its extension "
                             f"(got {self.per_problem_plot})")
        return self


ACCELERATE_CONFIG_DIR = "configs/accelerate"


class SftQuantizationParams(Section):
    """bitsandbytes 4-bit loading of the base for QLoRA (sft_qlora.quantization)."""

    enabled: bool = Field(True, description="false: plain LoRA on a 16-bit base (more memory, no quantization error)")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="NF4 is the QLoRA paper's data type")
    double_quant: bool = Field(True, description="quantize the block scales too (~0.4 bit/param saved)")
    compute_dtype: Literal[FLOAT_DTYPES] = Field(
        "bfloat16", description="dtype of the matmuls and of the unquantized weights; with enabled: false, "
        "the dtype the 16-bit base is loaded in")
    quant_storage: Literal[STORAGE_DTYPES] | None = Field(
        None, description="container dtype of the packed 4-bit weights (null: uint8); FSDP and DeepSpeed "
        "ZeRO-3 need it equal to the other weights' dtype (bfloat16) to shard them")


class LoraParams(Section):
    r: int = Field(32, ge=1, description="rank of the update: capacity vs trainable parameters")
    alpha: Float = Field(16, gt=0, description="scale of the update is alpha / r")
    dropout: Float = Field(0.05, ge=0, lt=1)
    target_modules: Literal["all-linear"] | list[str] = Field(
        "all-linear", description="all-linear (QLoRA: every linear layer but the output head) or module names")

    @model_validator(mode="after")
    def _targets(self) -> "LoraParams":
        if isinstance(self.target_modules, list) and (not self.target_modules or not all(self.target_modules)):
            raise ValueError("target_modules must be 'all-linear' or a non-empty list of module names "
                             "(e.g. [q_proj, k_proj, v_proj, o_proj])")
        return self


def accelerate_distributed_type(path: str | Path) -> str | None:
    """distributed_type of an accelerate config file (None: no such file or no key)."""
    path = Path(path)
    if not path.is_file():
        return None
    raw = yaml.safe_load(path.read_text()) or {}
    return str(raw.get("distributed_type")) if isinstance(raw, dict) and raw.get("distributed_type") else None


class SftQloraParams(Section):
    """`safurai-csharp sft-qlora` (stage sft_qlora): QLoRA fine-tuning of the base on data/sft."""

    model_dir: str = "models/base"
    data_dir: str = Field("data/sft", description="train.jsonl and validation.jsonl of stage sft_data")
    out_dir: str = Field("models/adapter", description="the PEFT adapter (+ tokenizer, training record)")
    quantization: SftQuantizationParams = SftQuantizationParams()
    lora: LoraParams = LoraParams()
    epochs: Float = Field(3.0, gt=0)
    max_steps: int = Field(-1, ge=-1, description="cap on optimizer steps (whichever of epochs / max_steps "
                           "ends first); -1: no cap")
    # 0 is allowed on purpose: the null control (an adapter that stays zero, through the same
    # merge and evals) measures the noise floor of the whole chain, NF4 round trip included.
    learning_rate: Float = Field(3e-4, ge=0, lt=1)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts"] = "cosine"
    warmup_ratio: Float = Field(0.0, ge=0, lt=1, description="share of the steps the lr ramps up from 0")
    optim: Literal["adamw_torch", "paged_adamw_32bit", "paged_adamw_8bit", "adamw_bnb_8bit"] = Field(
        "adamw_torch", description="paged/8-bit optimizers need CUDA")
    micro_batch_size: int = Field(2, ge=1, description="sequences per forward pass and process")
    gradient_accumulation_steps: int = Field(4, ge=1)
    max_seq_length: int = Field(4096, ge=32, description="tokens per sequence (packing: per packed row)")
    packing: bool = Field(True, description="pack several examples per row (attention stays within each)")
    gradient_checkpointing: bool = Field(True, description="recompute activations: less memory, ~30% slower")
    completion_eos: bool = Field(True, description="end sft_data's completion-format rows (a method body in a "
                                 "file that goes on, cut by MultiPL-E's stop token) with EOS, as every other row")
    eval_steps: int = Field(50, ge=1, description="validation loss every N optimizer steps (and at the end)")
    save_steps: int = Field(50, ge=1, description="resume checkpoint every N optimizer steps")
    logging_steps: int = Field(1, ge=1)
    seed: int = 42
    metrics: str = "metrics/train.json"
    loss_plot: str = "metrics/train_loss.json"
    accelerate_config: str | None = Field(
        None, description="null: one process; else an accelerate config under configs/accelerate/ "
        "(the stage re-runs itself with `accelerate launch --config_file`)")

    @model_validator(mode="after")
    def _consistent(self) -> "SftQloraParams":
        q = self.quantization
        if self.max_steps == 0:
            raise ValueError("max_steps 0 would train nothing: use -1 (no cap, run all epochs) or a positive cap")
        if not q.enabled and q.quant_storage is not None:
            raise ValueError("quantization.quant_storage only applies to 4-bit weights, but quantization.enabled "
                             "is false: set quant_storage: null (or enable quantization)")
        if self.accelerate_config is not None:
            path = Path(self.accelerate_config)
            if path.suffix not in (".yaml", ".yml") or Path(ACCELERATE_CONFIG_DIR) not in path.parents:
                raise ValueError(f"accelerate_config must be a .yaml file under {ACCELERATE_CONFIG_DIR}/ "
                                 f"(e.g. {ACCELERATE_CONFIG_DIR}/ddp.yaml), got {self.accelerate_config}")
            kind = accelerate_distributed_type(path)
            if kind in ("FSDP", "DEEPSPEED") and q.enabled and q.quant_storage != "bfloat16":
                name = "FSDP" if kind == "FSDP" else "DeepSpeed ZeRO-3"
                raise ValueError(f"accelerate_config {self.accelerate_config} shards the model with {name}, which "
                                 f"needs the 4-bit weights stored in the dtype of the other weights: set "
                                 f"quantization.quant_storage: bfloat16 (got {q.quant_storage or 'null = uint8'})")
            if kind in ("FSDP", "DEEPSPEED") and q.enabled and q.compute_dtype != "bfloat16":
                raise ValueError(f"accelerate_config {self.accelerate_config} with quant_storage bfloat16 needs "
                                 f"quantization.compute_dtype: bfloat16 (one dtype for every sharded weight)")
        return self
