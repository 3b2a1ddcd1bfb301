"""Has a model seen HumanEval? A likelihood probe, HumanEval against DevBench (issue #10).

DevBench (src/safurai_csharp/benchmark/devbench/) has HumanEval's format and goes through the same
translator, and it was written for this project, so no model was trained on it. For each model,
the probe prints the mean token negative log-likelihood and the Min-20% NLL (the mean of the 20%
least likely tokens; Shi et al. 2023, "Detecting Pretraining Data from Large Language Models") of
(a) each problem's Python reference solution given its Python prompt and (b) each translated C#
prompt (stripped, as evaluated). A model that memorised HumanEval finds its texts unusually
likely; fine-tuning that erodes memorised answers raises their NLL more than DevBench's.

    python benchmarks/probe_contamination.py models/base models/merged

About 7 min per 0.5B model on 2 idle cores (bf16). Results: docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def nll(model, tok, context: str, target: str) -> tuple[float, float]:
    import torch

    ctx = tok(context)["input_ids"] if context else [tok.eos_token_id]
    tgt = tok(target, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + tgt])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
    losses = -logp[torch.arange(len(ctx) - 1, ids.shape[1] - 1), ids[0, len(ctx):]]
    k = max(1, int(0.2 * len(losses)))
    return float(losses.mean()), float(losses.sort(descending=True).values[:k].mean())


def probe(model_dir: str, benchmark_dir: Path) -> dict[str, dict[str, float]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from safurai_csharp.benchmark.devbench import load_devbench
    from safurai_csharp.benchmark.humaneval import load_humaneval

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()
    sets = {
        "humaneval_py_solution": [(p["prompt"], p["canonical_solution"]) for p in load_humaneval()],
        "devbench_py_solution": [(p["prompt"], p["canonical_solution"]) for p in load_devbench()],
        **{f"{name}_cs_prompt": [("", json.loads(line)["prompt"].strip())
                                 for line in (benchmark_dir / f"{name}-cs.jsonl").open()]
           for name in ("humaneval", "devbench")},
    }
    out = {}
    for key, pairs in sets.items():
        scores = [nll(model, tok, c, t) for c, t in pairs]
        out[key] = {"n": len(scores), "mean_nll": round(statistics.mean(s[0] for s in scores), 4),
                    "median_nll": round(statistics.median(s[0] for s in scores), 4),
                    "min20_nll": round(statistics.mean(s[1] for s in scores), 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="model directories (e.g. models/base models/merged)")
    ap.add_argument("--benchmark-dir", type=Path, default=Path("data/benchmark"),
                    help="stage benchmark's outputs (humaneval-cs.jsonl, devbench-cs.jsonl)")
    args = ap.parse_args()
    print(json.dumps({m: probe(m, args.benchmark_dir) for m in args.models}, indent=1))


if __name__ == "__main__":
    main()
