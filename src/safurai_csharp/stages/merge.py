"""Stage merge: the sft_qlora adapter merged into its base -> one standalone checkpoint.

The base is loaded in `merge.work_dtype` (float32 by default, never 4-bit), the adapter applied
and `merge_and_unload`ed, the result saved in `merge.dtype` with the base's tokenizer and
generation config and a model card (README.md: base, adapter, data, params, metrics).

`merge.into: dequantized` first replaces each linear weight with its NF4 round trip
(bitsandbytes.functional quantize_4bit -> dequantize_4bit, the settings training used): the
adapter was trained against those weights, so the merged model is the model as trained.
`original` merges into the full-precision weights.

Fidelity, on every merge: logits of the merged checkpoint (as saved) vs the model as trained
(the base as training loaded it - 4-bit through bitsandbytes when it was - plus the unmerged
adapter) on fixed C# prompts (fidelity.py): `fidelity`; and vs the unmerged adapter on the
very weights that were merged: `merge_exactness` (the merge arithmetic and the final cast).

The quantization settings come from the adapter's training record (training/record.py, which
sft_qlora writes into the adapter directory), else from `sft_qlora.quantization`; the record's
base sha256 must match `merge.base_dir`. Then, with `merge.registry`, the checkpoint becomes a
new version of `merge.registered_model` in the MLflow registry with alias `candidate`
(registry.py), its description the model card (model_card.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..atomic import publish_dir, staging_dir
from ..config import MergeParams, ParamsError, load_params
from ..dtypes import torch_dtype
from ..errors import UserError
from ..fidelity import FIDELITY_PROMPTS, compare, prompt_logits
from ..jsonl import write_atomic, write_json
from ..tracking import flatten, log_metrics, stage_run
from ..training import record as training_record
from ..training.record import Quantization


class MergeError(UserError, ValueError):
    """The merge ran but its result must not be used (e.g. fidelity below merge.min_agreement)."""


def nf4_round_trip(weight: Any, q: Quantization) -> Any:
    """The weight as bitsandbytes' 4-bit forward sees it: quantized, then dequantized."""
    import bitsandbytes.functional as F

    packed, state = F.quantize_4bit(weight.to(torch_dtype(q.dtype)).contiguous(), blocksize=q.blocksize,
                                    compress_statistics=q.double_quant, quant_type=q.quant_type)
    return F.dequantize_4bit(packed, state).to(weight.dtype)


def quantized_linear_names(model: Any) -> list[str]:
    """The linears transformers hands to bitsandbytes: all but the output head (sft_qlora sets no
    llm_int8_skip_modules)."""
    import torch

    head = model.get_output_embeddings()
    return [n for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and m is not head and "lm_head" not in n]


def _dequantize(modules: list[Any], q: Quantization) -> None:
    import torch

    with torch.no_grad():
        for module in modules:
            module.weight.data.copy_(nf4_round_trip(module.weight.data, q))


def _reference_4bit(cfg: MergeParams, q: Quantization, tokenizer: Any, prompts) -> list:
    """Logits of the model exactly as trained: 4-bit base (bitsandbytes) + adapter."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if q.blocksize != 64:
        raise NotImplementedError("transformers loads 4-bit with blocksize 64 only")
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q.quant_type,
                             bnb_4bit_use_double_quant=q.double_quant,
                             bnb_4bit_compute_dtype=torch_dtype(q.compute_dtype), llm_int8_skip_modules=None)
    base = AutoModelForCausalLM.from_pretrained(cfg.base_dir, quantization_config=bnb, dtype=torch_dtype(q.dtype))
    for module in base.modules():
        # An eval-mode no-grad forward on an AVX512-BF16 CPU would repack the weights for a
        # faster bf16 kernel that training never ran: keep the dequantize + matmul path.
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    model = PeftModel.from_pretrained(base, cfg.adapter_dir).eval()
    logits = prompt_logits(model, tokenizer, prompts)
    del model, base
    return logits


def _unmerged(cfg: MergeParams, q: Quantization, dequantize: str | None) -> tuple[Any, int]:
    """Base in work_dtype (optionally NF4 round-tripped) + the adapter, unmerged."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(cfg.base_dir, dtype=torch_dtype(cfg.work_dtype))
    count = 0
    if dequantize == "all":
        names = set(quantized_linear_names(base))
        _dequantize([m for n, m in base.named_modules() if n in names], q)
        count = len(names)
    model = PeftModel.from_pretrained(base, cfg.adapter_dir).eval()
    if dequantize == "targets":
        layers = [m.get_base_layer() for m in model.modules() if isinstance(m, LoraLayer)]
        _dequantize(layers, q)
        count = len(layers)
    return model, count


def merge(cfg: MergeParams, out_dir: Path, fallback: Quantization = Quantization(),
          base_sha256: str | None = None) -> dict[str, Any]:
    """Pure core: writes the merged checkpoint to `out_dir`; returns the metrics document.

    `fallback`: the quantization when the adapter carries no training record;
    `base_sha256`: checked against the base the record says the adapter was trained on."""
    import torch
    from transformers import AutoTokenizer

    start = time.perf_counter()
    adapter_dir = Path(cfg.adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir}/adapter_config.json: no PEFT adapter there (run sft_qlora and dpo first)")
    record = training_record.read(adapter_dir)  # how sft_qlora trained it; None: an adapter made elsewhere
    q, q_source = ((record.quantization, str(adapter_dir / training_record.FILE)) if record
                   else (fallback, "params (sft_qlora.quantization)"))
    trained_on = record.base_model.sha256 if record else None
    if base_sha256 and trained_on and trained_on != base_sha256:
        raise ParamsError(f"the adapter in {adapter_dir} was trained on a base with sha256 {trained_on[:12]}, but "
                          f"merge.base_dir {cfg.base_dir} has sha256 {base_sha256[:12]}: merge.base_dir must be the "
                          f"model sft_qlora trained on (sft_qlora.model_dir)")
    if cfg.into == "dequantized" and not q.load_in_4bit:
        raise ParamsError(f"merge.into is dequantized, but {q_source} says the adapter was trained on a 16-bit "
                          f"base: there is no 4-bit round trip to merge into; set merge.into: original")
    tokenizer = AutoTokenizer.from_pretrained(cfg.base_dir)
    prompts = FIDELITY_PROMPTS[:cfg.fidelity_prompts]
    torch.manual_seed(0)

    reference, reference_kind, note = None, None, None
    if q.load_in_4bit:
        try:
            reference = _reference_4bit(cfg, q, tokenizer, prompts)
            reference_kind = f"4-bit base (bitsandbytes {q.quant_type}) + adapter"
        except (ImportError, RuntimeError, NotImplementedError, ValueError) as exc:
            note = f"bitsandbytes 4-bit load failed ({type(exc).__name__}: {exc}); reference rebuilt from " \
                   f"the NF4 round trip of every quantized linear in {cfg.work_dtype}"

    dequantize = cfg.dequantize_modules if cfg.into == "dequantized" else None
    model, dequantized = _unmerged(cfg, q, dequantize)
    unmerged = prompt_logits(model, tokenizer, prompts)
    if reference is None:
        if not q.load_in_4bit or dequantize == "all":
            reference = unmerged
        else:
            ref_model, _ = _unmerged(cfg, q, "all")
            reference = prompt_logits(ref_model, tokenizer, prompts)
            del ref_model
        reference_kind = (f"NF4 round-tripped base ({cfg.work_dtype}) + adapter" if q.load_in_4bit
                          else f"base ({cfg.work_dtype}) + adapter")
    adapter_cfg = model.peft_config["default"]
    merged = model.merge_and_unload()
    del model
    merged = merged.to(torch_dtype(cfg.dtype))
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    merged_logits = prompt_logits(merged.float(), tokenizer, prompts)  # the saved weights, upcast

    targets = adapter_cfg.target_modules
    metrics: dict[str, Any] = {
        "into": cfg.into, "dequantize_modules": cfg.dequantize_modules if dequantize else None,
        "dequantized_linears": dequantized, "dtype": cfg.dtype, "work_dtype": cfg.work_dtype,
        # skip_modules: always [] (training quantizes every linear but the head); kept for merge.json's readers
        "quantization": {**q.model_dump(exclude={"quant_storage"}), "source": q_source, "skip_modules": []},
        "reference": reference_kind,
        "fidelity": compare(reference, merged_logits),
        "merge_exactness": compare(unmerged, merged_logits),
        "adapter": {"r": adapter_cfg.r, "lora_alpha": adapter_cfg.lora_alpha, "lora_dropout": adapter_cfg.lora_dropout,
                    "target_modules": sorted({t.rsplit(".", 1)[-1] for t in targets})
                    if isinstance(targets, (set, list)) else targets,
                    "modules_to_save": sorted(adapter_cfg.modules_to_save or [])},
        "parameters": sum(p.numel() for p in merged.parameters()),
        "seconds": round(time.perf_counter() - start, 2),
    }
    if note:
        metrics["reference_note"] = note
    return metrics


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    from .. import registry
    from ..hashing import path_digest
    from ..lineage import dvc_lock_tags
    from ..model_card import model_card

    params = load_params(params_path)
    cfg = params.merge
    out_dir = Path(cfg.out_dir)
    logged = {"merge": cfg.model_dump()}
    inputs = {"base": cfg.base_dir, "adapter": cfg.adapter_dir, "data": params.sft_qlora.data_dir}
    with stage_run(params.mlflow, "merge", params=logged, inputs=inputs, outputs={"model": out_dir}) as mlflow:
        run_tags = mlflow.get_run(mlflow.active_run().info.run_id).data.tags
        lineage = {k: v for k, v in run_tags.items() if k.startswith(("git.", "dvc.", "input."))}
        lineage.update(dvc_lock_tags(cfg.adapter_dir))
        record = training_record.read(cfg.adapter_dir)
        lineage.update(record.lineage_tags(Path(cfg.adapter_dir) / training_record.FILE) if record else {})
        mlflow.set_tags({k: v for k, v in lineage.items() if k not in run_tags})
        tmp = staging_dir(out_dir)
        try:
            metrics = merge(cfg, tmp, Quantization.from_params(params.sft_qlora.quantization),
                            lineage.get("input.base.sha256"))
            write_atomic(tmp / "README.md", model_card(cfg, metrics, lineage))
            log_metrics(mlflow, flatten("", {k: metrics[k] for k in ("fidelity", "merge_exactness", "seconds")}))
            mlflow.log_params({"merge.resolved_quantization": json.dumps(metrics["quantization"], sort_keys=True)})
            if metrics["fidelity"]["top1_agreement"] < cfg.min_agreement:
                metrics["registry"] = None
                write_json(cfg.metrics, metrics)
                mlflow.log_artifact(cfg.metrics)
                raise MergeError(f"top-token agreement with the model as trained is "
                                 f"{metrics['fidelity']['top1_agreement']:.3f}, below merge.min_agreement "
                                 f"{cfg.min_agreement}: not saved, not registered (see {cfg.metrics})")
            publish_dir(tmp, out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        metrics["model_sha256"] = path_digest(out_dir)
        metrics["registry"] = None
        if cfg.registry:
            tags = {**lineage, "dvc.stage": "merge", "model.sha256": metrics["model_sha256"],
                    "merge.into": cfg.into, "merge.dtype": cfg.dtype, "quantization.source": metrics["quantization"]["source"],
                    **{f"fidelity.{k}": v for k, v in metrics["fidelity"].items()},
                    **{f"merge_exactness.{k}": v for k, v in metrics["merge_exactness"].items()}}
            mv = registry.register(out_dir, cfg.registered_model, tags=tags,
                                   card=(out_dir / "README.md").read_text(), alias=registry.CANDIDATE)
            metrics["registry"] = {"registered_model": cfg.registered_model, "version": int(mv.version),
                                   "alias": registry.CANDIDATE, "source": mv.source}
        write_json(cfg.metrics, metrics)
        mlflow.log_artifact(cfg.metrics)
        mlflow.log_artifact(str(out_dir / "README.md"))
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge the LoRA adapter into its base, measure fidelity, register (stage merge)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
