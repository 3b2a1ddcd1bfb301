"""The model card of a merged checkpoint (models/merged/README.md), written by stage merge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config import MergeParams


def model_card(cfg: MergeParams, metrics: dict[str, Any], lineage: dict[str, str]) -> str:
    """README.md of the merged checkpoint (also the registered version's description): base,
    adapter and training data (their hashes, from `lineage`), merge params, fidelity metrics."""
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
