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


SCORES_HEADING = "## Scores"


def scores_section(target: str, test: dict[str, Any], dev: dict[str, Any] | None, decision: dict[str, Any]) -> str:
    """What the model scored, for the registered version's description (stage promote, after
    the evals): pass@1 with its 95% interval per test mode on HumanEval-C# (the test set) and
    on the held-out dev set, the sampling behind them, and the promotion decision."""
    def rows(metrics: dict[str, Any]) -> list[str]:
        out = []
        for mode in ("official", "corrected"):
            if mode in metrics:
                m = metrics[mode]
                lo, hi = m.get("pass@1_ci95", [None, None])
                ci = f"[{lo:.1%}, {hi:.1%}]" if lo is not None else "-"
                out.append(f"| {mode} | {m['pass@1']:.1%} | {ci} | {m.get('compile_rate', 0):.1%} | {m.get('problems', '-')} |")
        return out

    head = "| tests | pass@1 | 95% interval | compiles | problems |\n|---|---|---|---|---|"
    lines = [SCORES_HEADING, "",
             f"HumanEval-C# (the test set), stage `eval_multipl_e@{target}`: protocol {test.get('protocol', '?')}, "
             f"n = {test.get('n', '?')} per problem.", "", head, *rows(test), ""]
    if dev:
        lines += [f"Dev set (held-out validated tasks, never trained on), stage `eval_dev@{target}`:", "", head,
                  *rows(dev), ""]
    lines += [f"Promotion: **{decision.get('decision', '?')}**: {decision.get('reason', '')}", "", _SCORES_END, ""]
    return "\n".join(lines)


_SCORES_END = "<!-- end of scores (safurai-csharp promote) -->"


def with_scores(card: str, section: str) -> str:
    """The description with `section` first, replacing the scores a previous promote wrote."""
    if card.startswith(SCORES_HEADING) and _SCORES_END in card:
        card = card.split(_SCORES_END, 1)[1].lstrip("\n")
    return section + "\n" + card
