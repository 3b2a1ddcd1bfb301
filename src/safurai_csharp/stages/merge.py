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

The quantization settings come from the adapter's training record (training_record.json,
written by sft_qlora: {"quantization": {"load_in_4bit": true, "quant_type": "nf4", ...},
"base_model": {"sha256": ...}, "data": ...}; any JSON there holding a transformers
BitsAndBytesConfig dict works too), else from `sft_qlora.quantization`. The record's base
sha256 must match `merge.base_dir`. Then, with `merge.registry`, the checkpoint becomes a new
version of `merge.registered_model` in the MLflow registry with alias `candidate` (registry.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import MergeParams, Params, ParamsError, SftQuantizationParams, load_params
from ..fidelity import FIDELITY_PROMPTS, compare, prompt_logits
from ..jsonl import write_atomic, write_json
from ..tracking import flatten, log_metrics, stage_run
from ..errors import UserError

RECORD = "training_record.json"  # sft_qlora writes it into the adapter directory
_NOT_RECORDS = {"adapter_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                "vocab.json", "added_tokens.json", "generation_config.json", "config.json"}
_DTYPES = ("bfloat16", "float16", "float32")


class MergeError(UserError, ValueError):
    """The merge ran but its result must not be used (e.g. fidelity below merge.min_agreement)."""


@dataclass(frozen=True)
class Quantization:
    """How training loaded the base: what `into: dequantized` and the reference rebuild."""

    load_in_4bit: bool = True
    quant_type: str = "nf4"
    double_quant: bool = True
    blocksize: int = 64              # bitsandbytes' 4-bit default; transformers exposes no other
    dtype: str = "bfloat16"          # the weights' dtype when bitsandbytes quantized them
    compute_dtype: str = "bfloat16"

    @classmethod
    def from_params(cls, q: SftQuantizationParams) -> "Quantization":
        # sft_qlora loads the base in compute_dtype, so that is the dtype bitsandbytes quantized.
        return cls(load_in_4bit=q.enabled, quant_type=q.quant_type, double_quant=q.double_quant,
                   dtype=q.compute_dtype, compute_dtype=q.compute_dtype)

    @classmethod
    def from_record(cls, found: dict, holder: dict, fallback: "Quantization") -> "Quantization":
        """`found`: ours ({load_in_4bit, quant_type, ...}) or transformers' BitsAndBytesConfig dict."""
        values = asdict(fallback)
        aliases = {"bnb_4bit_quant_type": "quant_type", "bnb_4bit_use_double_quant": "double_quant",
                   "bnb_4bit_compute_dtype": "compute_dtype", "bnb_4bit_blocksize": "blocksize",
                   "_load_in_4bit": "load_in_4bit"}
        for key, value in found.items():
            name = aliases.get(key, key)
            if name in values:
                values[name] = value.removeprefix("torch.") if isinstance(value, str) else value
        if "dtype" not in found:  # transformers' dict: the load dtype sits beside it, if anywhere
            for key in ("dtype", "torch_dtype"):
                if _dtype_name(holder.get(key)) in _DTYPES:
                    values["dtype"] = _dtype_name(holder[key])
                    break
        q = cls(**values)
        if (q.quant_type not in ("nf4", "fp4") or q.dtype not in _DTYPES or q.compute_dtype not in _DTYPES
                or not isinstance(q.blocksize, int) or not isinstance(q.load_in_4bit, bool)):
            raise ValueError(f"unusable quantization settings {values}")
        return q


def _dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _dtype_name(value: Any) -> Any:
    return value.removeprefix("torch.") if isinstance(value, str) else value


def _find_quantization(obj: Any, parent: dict | None = None) -> tuple[dict, dict] | None:
    if isinstance(obj, dict):
        if "bnb_4bit_quant_type" in obj or "load_in_4bit" in obj:
            return obj, parent or obj
        items = obj.values()
    elif isinstance(obj, list):
        items = obj
    else:
        return None
    for value in items:
        found = _find_quantization(value, obj if isinstance(obj, dict) else parent)
        if found:
            return found
    return None


def training_record(adapter_dir: Path) -> tuple[Path, dict, dict, dict] | None:
    """(file, whole record, quantization dict, the dict holding it) from the adapter directory:
    sft_qlora's training_record.json first, else any JSON there holding 4-bit settings."""
    files = sorted(Path(adapter_dir).glob("*.json"), key=lambda f: (f.name != RECORD, f.name))
    for path in files:
        if path.name in _NOT_RECORDS:
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found = _find_quantization(record)
        if found:
            return path, record, *found
    return None


def quantization_settings(adapter_dir: Path, fallback: Quantization) -> tuple[Quantization, str, list[str]]:
    """(settings, where they came from, modules training kept in 16 bit)."""
    found = training_record(adapter_dir)
    if found is None:
        return fallback, "params (sft_qlora.quantization)", []
    path, _, quant, holder = found
    try:
        q = Quantization.from_record(quant, holder, fallback)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"{path}: the training record's quantization settings are not usable: {exc}") from None
    return q, str(path), list(quant.get("llm_int8_skip_modules") or [])


def nf4_round_trip(weight: Any, q: Quantization) -> Any:
    """The weight as bitsandbytes' 4-bit forward sees it: quantized, then dequantized."""
    import bitsandbytes.functional as F

    packed, state = F.quantize_4bit(weight.to(_dtype(q.dtype)).contiguous(), blocksize=q.blocksize,
                                    compress_statistics=q.double_quant, quant_type=q.quant_type)
    return F.dequantize_4bit(packed, state).to(weight.dtype)


def quantized_linear_names(model: Any, skip: list[str]) -> list[str]:
    """The linears transformers hands to bitsandbytes: all but the output head and `skip`."""
    import torch

    head = model.get_output_embeddings()
    skip = ["lm_head", *skip]
    return [n for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and m is not head and not any(s in n for s in skip)]


def _dequantize(modules: list[Any], q: Quantization) -> None:
    import torch

    with torch.no_grad():
        for module in modules:
            module.weight.data.copy_(nf4_round_trip(module.weight.data, q))


def _reference_4bit(cfg: MergeParams, q: Quantization, skip: list[str], tokenizer: Any, prompts) -> list:
    """Logits of the model exactly as trained: 4-bit base (bitsandbytes) + adapter."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if q.blocksize != 64:
        raise NotImplementedError("transformers loads 4-bit with blocksize 64 only")
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q.quant_type,
                             bnb_4bit_use_double_quant=q.double_quant,
                             bnb_4bit_compute_dtype=_dtype(q.compute_dtype), llm_int8_skip_modules=skip or None)
    base = AutoModelForCausalLM.from_pretrained(cfg.base_dir, quantization_config=bnb, dtype=_dtype(q.dtype))
    for module in base.modules():
        # An eval-mode no-grad forward on an AVX512-BF16 CPU would repack the weights for a
        # faster bf16 kernel that training never ran: keep the dequantize + matmul path.
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    model = PeftModel.from_pretrained(base, cfg.adapter_dir).eval()
    logits = prompt_logits(model, tokenizer, prompts)
    del model, base
    return logits


def _unmerged(cfg: MergeParams, q: Quantization, skip: list[str], dequantize: str | None) -> tuple[Any, int]:
    """Base in work_dtype (optionally NF4 round-tripped) + the adapter, unmerged."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(cfg.base_dir, dtype=_dtype(cfg.work_dtype))
    count = 0
    if dequantize == "all":
        names = set(quantized_linear_names(base, skip))
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
        raise FileNotFoundError(f"{adapter_dir}/adapter_config.json: no PEFT adapter there (run sft_qlora first)")
    q, q_source, skip = quantization_settings(adapter_dir, fallback)
    found = training_record(adapter_dir)
    trained_on = ((found[1].get("base_model") or {}).get("sha256") if found and isinstance(found[1], dict)
                  else None)
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
            reference = _reference_4bit(cfg, q, skip, tokenizer, prompts)
            reference_kind = f"4-bit base (bitsandbytes {q.quant_type}) + adapter"
        except (ImportError, RuntimeError, NotImplementedError, ValueError) as exc:
            note = f"bitsandbytes 4-bit load failed ({type(exc).__name__}: {exc}); reference rebuilt from " \
                   f"the NF4 round trip of every quantized linear in {cfg.work_dtype}"

    dequantize = cfg.dequantize_modules if cfg.into == "dequantized" else None
    model, dequantized = _unmerged(cfg, q, skip, dequantize)
    unmerged = prompt_logits(model, tokenizer, prompts)
    if reference is None:
        if not q.load_in_4bit or dequantize == "all":
            reference = unmerged
        else:
            ref_model, _ = _unmerged(cfg, q, skip, "all")
            reference = prompt_logits(ref_model, tokenizer, prompts)
            del ref_model
        reference_kind = (f"NF4 round-tripped base ({cfg.work_dtype}) + adapter" if q.load_in_4bit
                          else f"base ({cfg.work_dtype}) + adapter")
    adapter_cfg = model.peft_config["default"]
    merged = model.merge_and_unload()
    del model
    merged = merged.to(_dtype(cfg.dtype))
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    merged_logits = prompt_logits(merged.float(), tokenizer, prompts)  # the saved weights, upcast

    targets = adapter_cfg.target_modules
    metrics: dict[str, Any] = {
        "into": cfg.into, "dequantize_modules": cfg.dequantize_modules if dequantize else None,
        "dequantized_linears": dequantized, "dtype": cfg.dtype, "work_dtype": cfg.work_dtype,
        "quantization": {**asdict(q), "source": q_source, "skip_modules": skip},
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


def dvc_lineage(adapter_dir: str | Path, lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """What DVC recorded about the stage that produced the adapter: its name, the adapter's
    md5 and the md5 of its data dependencies (the training data's DVC hash)."""
    import yaml

    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
    for name, stage in stages.items():
        outs = {Path(o.get("path", "")): o for o in stage.get("outs") or []}
        if Path(adapter_dir) in outs:
            tags = {"dvc.adapter_stage": name, "dvc.adapter.md5": str(outs[Path(adapter_dir)].get("md5"))}
            for dep in stage.get("deps") or []:
                if dep.get("md5") and not dep["path"].startswith("src"):
                    tags[f"dvc.dep.{dep['path']}.md5"] = str(dep["md5"])
            return tags
    return {}


def record_lineage(adapter_dir: str | Path) -> dict[str, str]:
    """Training data hashes and row counts, steps and seed from sft_qlora's training record."""
    found = training_record(Path(adapter_dir))
    if found is None or not isinstance(found[1], dict):
        return {}
    path, record = found[0], found[1]
    tags = {"training.record": str(path)}
    for split, info in (record.get("data") or {}).items():
        if isinstance(info, dict):
            tags.update({f"training.data.{split}.{k}": str(v) for k, v in info.items() if k in ("sha256", "rows")})
    tags.update({f"training.{k}": str(record[k]) for k in ("steps", "seed") if k in record})
    return tags


def model_card(params: Params, metrics: dict[str, Any], lineage: dict[str, str]) -> str:
    cfg = params.merge
    source_file = Path(cfg.base_dir) / "source.json"
    source = json.loads(source_file.read_text()) if source_file.is_file() else {}
    fid, exact = metrics["fidelity"], metrics["merge_exactness"]
    data = {k: v for k, v in lineage.items()
            if k.startswith(("dvc.", "input.data", "training.")) and k != "dvc.stage"}
    lines = [
        "---", f"base_model: {source.get('source', cfg.base_dir)}", "library_name: transformers",
        f"license: {source.get('license', 'other')}", "tags: [safurai-csharp, csharp, lora, merged]", "---", "",
        f"# {cfg.registered_model}", "",
        "A C# code model: the `sft_qlora` LoRA adapter merged into its base by `safurai-csharp merge`.", "",
        "## Base", "",
        f"- source: `{source.get('source', cfg.base_dir)}` ({source.get('kind', 'unknown')}, "
        f"{source.get('parameters', metrics['parameters'])} parameters)",
        f"- sha256 of `{cfg.base_dir}`: `{lineage.get('input.base.sha256', 'unknown')}`", "",
        "## Adapter and data", "",
        f"- adapter `{cfg.adapter_dir}` sha256 `{lineage.get('input.adapter.sha256', 'unknown')}`: "
        f"LoRA r {metrics['adapter']['r']}, alpha {metrics['adapter']['lora_alpha']}, "
        f"targets {metrics['adapter']['target_modules']}",
        f"- training quantization ({metrics['quantization']['source']}): "
        + (f"4-bit {metrics['quantization']['quant_type']}, double quant {metrics['quantization']['double_quant']}"
           if metrics["quantization"]["load_in_4bit"] else "none (16-bit LoRA)"),
        *([f"- {k}: `{v}`" for k, v in sorted(data.items())] or ["- training data hash: not recorded"]),
        f"- git commit: `{lineage.get('git.commit', 'unknown')}`", "",
        "## Merge params", "", "```json", json.dumps(cfg.model_dump(), indent=2), "```", "",
        "## Metrics", "",
        f"Merged into the {metrics['into']} weights, saved in {metrics['dtype']}. Fidelity to the model as "
        f"trained ({metrics['reference']}) on {fid['prompts']} fixed C# prompts ({fid['positions']} positions):", "",
        "| | top-token agreement | max abs Δlogits | mean abs Δlogits |", "|---|---|---|---|",
        f"| vs model as trained | {fid['top1_agreement']:.4f} | {fid['max_abs_logits_diff']:.4g} | "
        f"{fid['mean_abs_logits_diff']:.4g} |",
        f"| vs unmerged adapter, same weights | {exact['top1_agreement']:.4f} | {exact['max_abs_logits_diff']:.4g} | "
        f"{exact['mean_abs_logits_diff']:.4g} |", "",
        "pass@1 on HumanEval-C#: stage `eval_multipl_e@merged` (metrics/eval/merged.json) and the registry tags "
        "written by `safurai-csharp promote`.", "",
        "## Load", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "model = AutoModelForCausalLM.from_pretrained(PATH)  # this directory",
        "# or from the MLflow registry:", "from safurai_csharp.registry import load_registered",
        f"model, tokenizer = load_registered({cfg.registered_model!r}, 'champion')", "```", "",
    ]
    return "\n".join(lines)


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    from .. import registry
    from ..hashing import path_digest

    params = load_params(params_path)
    cfg = params.merge
    out_dir = Path(cfg.out_dir)
    logged = {"merge": cfg.model_dump()}
    inputs = {"base": cfg.base_dir, "adapter": cfg.adapter_dir, "data": params.sft_qlora.data_dir}
    with stage_run(params.mlflow, "merge", params=logged, inputs=inputs, outputs={"model": out_dir}) as mlflow:
        run_tags = mlflow.get_run(mlflow.active_run().info.run_id).data.tags
        lineage = {k: v for k, v in run_tags.items() if k.startswith(("git.", "dvc.", "input."))}
        lineage.update(dvc_lineage(cfg.adapter_dir))
        lineage.update(record_lineage(cfg.adapter_dir))
        mlflow.set_tags({k: v for k, v in lineage.items() if k not in run_tags})
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
        try:
            metrics = merge(cfg, tmp, Quantization.from_params(params.sft_qlora.quantization),
                            lineage.get("input.base.sha256"))
            write_atomic(tmp / "README.md", model_card(params, metrics, lineage))
            log_metrics(mlflow, flatten("", {k: metrics[k] for k in ("fidelity", "merge_exactness", "seconds")}))
            mlflow.log_params({"merge.resolved_quantization": json.dumps(metrics["quantization"], sort_keys=True)})
            if metrics["fidelity"]["top1_agreement"] < cfg.min_agreement:
                metrics["registry"] = None
                write_json(cfg.metrics, metrics)
                mlflow.log_artifact(cfg.metrics)
                raise MergeError(f"top-token agreement with the model as trained is "
                                 f"{metrics['fidelity']['top1_agreement']:.3f}, below merge.min_agreement "
                                 f"{cfg.min_agreement}: not saved, not registered (see {cfg.metrics})")
            if out_dir.exists():
                shutil.rmtree(out_dir)
            tmp.rename(out_dir)
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
