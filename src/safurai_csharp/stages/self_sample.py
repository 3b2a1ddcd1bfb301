"""Stage self_sample: on-policy data. The student (self_sample.model_dir, the base model)
solves each training task of stage split k times in the format it is measured in (MultiPL-E
completion), the sandbox runs every sample against the task's tests, and the passing ones,
deduplicated, become training targets (rejection-sampling fine-tuning: STaR, ReST-EM).

Why: SFT on another model's style moves an instruct model off its own distribution and it
forgets (the teacher-only runs lost 7-12 points, docs/results.md); its own passing solutions
teach it what worked without that shift. Dev tasks are never sampled (split keeps them apart).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import EvalParams, SelfSampleParams, load_params
from ..csharp import make_executor
from ..engines.base import SamplingConfig
from ..evaluation import sample_completions
from ..jsonl import read_jsonl, write_json, write_jsonl
from ..synth.completion_format import CompletionTask, closes_early, normalise
from ..synth.split import SIDES
from ..tracking import flatten, live_progress, log_metrics, stage_run


def keep(problems: list[dict], samples: list[list[str]], executor: Any,
         max_per_task: int, progress: Any = None) -> tuple[list[dict], list[list[bool]]]:
    """Runs every sample against its task's tests in the sandbox; returns the passing, distinct
    samples of each task (at most max_per_task, in sample order) and every verdict. A passing
    sample that closes its own method (synth/completion_format.closes_early) is not kept.
    `progress` (a tracking.LiveProgress) watches the sandbox run as live.programs_done/pass_rate."""
    tasks = [CompletionTask.from_problem(p) for p in problems]
    programs = [(i, text) for i, texts in enumerate(samples) for text in texts]
    hook = None if progress is None else progress.programs()
    verdicts = executor.run([tasks[i].program(text) for i, text in programs], on_progress=hook) if programs else []
    passed: list[list[bool]] = [[] for _ in problems]
    for (i, _text), res in zip(programs, verdicts, strict=True):
        passed[i].append(res.passed)
    rows = []
    for problem, texts, oks in zip(problems, samples, passed, strict=True):
        seen: set[str] = set()
        for j, (text, ok) in enumerate(zip(texts, oks, strict=True)):
            key = normalise(text)
            if not ok or not key or key in seen or len(seen) >= max_per_task or closes_early(text):
                continue
            seen.add(key)
            rows.append({"task_id": problem["source_id"], "name": problem["name"], "sample": j,
                         "completion": text, "same_as_teacher": key == normalise(problem.get("completion", ""))})
    return rows, passed


def verdict_rows(problems: list[dict], samples: list[list[str]], passed: list[list[bool]]) -> list[dict]:
    """Every sample with its verdict, in sampling order: stage dpo's pairs of a passing and a
    failing answer to one task come from here (synth/preference.py)."""
    return [{"task_id": problem["source_id"], "name": problem["name"], "sample": j, "completion": text,
             "passed": ok}
            for problem, texts, oks in zip(problems, samples, passed, strict=True)
            for j, (text, ok) in enumerate(zip(texts, oks, strict=True))]


def sample(train: list[dict], cfg: SelfSampleParams, ev: EvalParams, executor: Any,
           progress: Any = None) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(kept rows, every sample's verdict, metrics) for the training examples of split that carry
    a task, sampled with eval_multipl_e's engine and engine options (`ev`); `progress` (a
    tracking.LiveProgress) logs live.generation.* and live.* while it runs."""
    problems = [{**ex["task"], "source_id": ex["id"]} for ex in train if ex.get("task")]
    sampling = SamplingConfig(n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                              max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    samples, gen = sample_completions(problems, cfg.model_dir, engine=ev.engine,
                                      engine_options=ev.engine_options.of(ev.engine),
                                      sampling=sampling, protocol="completion",
                                      on_progress=None if progress is None else progress.generation())
    rows, passed = keep(problems, samples, executor, cfg.max_per_task, progress)
    n_samples, n_pass = sum(map(len, passed)), sum(map(sum, passed))
    early = sum(ok and closes_early(t) for texts, oks in zip(samples, passed) for t, ok in zip(texts, oks))
    metrics = {"tasks": len(problems), "samples": n_samples, "passing": n_pass,
               "pass_rate": round(n_pass / max(1, n_samples), 4),
               "tasks_solved": sum(1 for p in passed if any(p)), "kept": len(rows),
               "kept_same_as_teacher": sum(r["same_as_teacher"] for r in rows),
               "passing_closes_early": early, "generation": gen}
    return rows, verdict_rows(problems, samples, passed), metrics


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg = params.self_sample
    train_path = Path(params.split.out_dir) / f"{SIDES[0]}.jsonl"
    logged = {"self_sample": cfg.model_dump(), "engine": params.eval_multipl_e.engine,
              "engine_options": params.eval_multipl_e.engine_options.of(params.eval_multipl_e.engine)}
    with (stage_run(params.mlflow, "self_sample", params=logged,
                    inputs={"model": cfg.model_dir, "train_tasks": train_path},
                    outputs={"samples": cfg.out, "verdicts": cfg.verdicts}) as mlflow,
          live_progress(mlflow) as live):
        rows, verdicts, metrics = sample(read_jsonl(train_path), cfg, params.eval_multipl_e,
                                         make_executor(params.sandbox), live)
        write_jsonl(cfg.out, rows)
        write_jsonl(cfg.verdicts, verdicts)
        write_json(cfg.metrics, metrics)
        log_metrics(mlflow, flatten("", metrics))
        mlflow.log_artifact(cfg.metrics)
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("self-sample", help="the student's own passing solutions to its training tasks (stage self_sample)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
