"""Stage eval_multipl_e@<target>: sample completions from a model and score them in the sandbox.

MultiPL-E protocol: the prompt is stripped of trailing whitespace, the model continues it
(no chat template), each completion is cut at the first stop token, and the program is
prompt + completion + "\\n" + tests. Both test modes are scored from the same completions,
so official and corrected pass@1 differ only by the tests.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..config import EvalParams, ParamsError, load_params
from ..evaluation import score
from ..jsonl import read_jsonl, write_json, write_jsonl
from ..csharp import make_executor
from ..tracking import flatten, log_metrics, stage_run


def generate(problems: list[dict[str, Any]], model_dir: Path, cfg: EvalParams) -> tuple[list[list[str]], dict]:
    from ..engines import SamplingConfig, make_engine, strip_prompt

    engine = make_engine(cfg.engine, model_dir, seed=cfg.seed, **cfg.engine_options.model_dump())
    # All problems share MultiPL-E's stop tokens in practice, but honour each problem's own.
    by_stops: dict[tuple[str, ...], list[int]] = {}
    for i, p in enumerate(problems):
        by_stops.setdefault(tuple(p["stop_tokens"]), []).append(i)
    completions: list[list[str]] = [[] for _ in problems]
    stats: dict[str, Any] = {"generated_tokens": 0, "prompt_tokens": 0}
    start = time.perf_counter()
    for stops, idx in by_stops.items():
        sampling = SamplingConfig(n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p,
                                  max_new_tokens=cfg.max_new_tokens, stop=list(stops), seed=cfg.seed)
        outs = engine.generate([strip_prompt(problems[i]["prompt"]) for i in idx], sampling)
        for i, texts in zip(idx, outs, strict=True):
            completions[i] = texts
        for key in ("generated_tokens", "prompt_tokens"):
            stats[key] += engine.last_stats.get(key, 0)
        stats.update({k: v for k, v in engine.last_stats.items() if isinstance(v, str)})
    engine.close()
    stats["seconds"] = round(time.perf_counter() - start, 2)
    stats["tokens_per_s"] = round(stats["generated_tokens"] / stats["seconds"], 1) if stats["seconds"] else 0.0
    return completions, stats


def evaluate(problems, completions, params) -> tuple[list[dict], dict]:
    """Pure core after generation: per-problem records and the metrics document."""
    cfg = params.eval_multipl_e
    executor = make_executor(params.sandbox)
    records = [{"name": p["name"], "completions": c, "results": {}} for p, c in zip(problems, completions)]
    metrics: dict[str, Any] = {"problems": len(problems), "n": cfg.n}
    for mode in cfg.modes:
        start = time.perf_counter()
        outcome = score(problems, completions, mode, executor)
        for rec, res in zip(records, outcome.results, strict=True):
            rec["results"][mode] = res
        metrics[mode] = {**outcome.summary, "execution_seconds": round(time.perf_counter() - start, 2)}
    return records, metrics


def run(target: str, params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg = params.eval_multipl_e
    if target not in cfg.targets:
        raise ParamsError(f"eval_multipl_e.targets has no {target!r}; known: {', '.join(cfg.targets)}")
    model_dir = Path(cfg.targets[target].model_dir)
    out = Path(cfg.out_dir) / target / "results.jsonl"
    metrics_path = Path(cfg.metrics_dir) / f"{target}.json"
    problems = read_jsonl(params.benchmark.out)
    logged = {"eval_multipl_e": {k: v for k, v in cfg.model_dump().items() if k != "targets"},
              "sandbox": params.sandbox.model_dump(), "target": target, "model_dir": str(model_dir)}
    with stage_run(params.mlflow, f"eval_multipl_e@{target}", params=logged, run_name=f"eval_multipl_e@{target}",
                   inputs={"model": model_dir, "benchmark": params.benchmark.out},
                   outputs={"results": out, "metrics": metrics_path}) as mlflow:
        completions, gen_stats = generate(problems, model_dir, cfg)
        records, metrics = evaluate(problems, completions, params)
        metrics["generation"] = gen_stats
        write_jsonl(out, records)
        write_json(metrics_path, metrics)
        log_metrics(mlflow, flatten("", {k: metrics[k] for k in (*cfg.modes, "generation")}))
        mlflow.log_artifact(str(out))
        mlflow.log_artifact(str(metrics_path))
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-multipl-e", help="sample and score HumanEval-C# (stage eval_multipl_e)")
    p.add_argument("--target", required=True, help="a key of eval_multipl_e.targets (e.g. base)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.target, a.params))
