"""Stage generate: the teacher writes C# tasks with solutions and tests (self-instruct).

Task i asks for a topic and concept of the shipped taxonomy with few-shot examples of the
exact answer format, both drawn by a generator seeded by (generate.seed, i), and is sampled
with its own seed. Records are written whether or not they parse: the filter counts what
the teacher got wrong (its first funnel step), and `raw` keeps the answer for re-parsing.
With `repair_rounds` > 0, an answer that parses but fails in the sandbox (compile error,
failed assertion, exception) goes back to the teacher once more with what the sandbox saw
(self-debugging); the record keeps the first answer in `raw_first` and the failure in
`repair`. Resumable: see synth/checkpoint.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import GenerateParams, SandboxParams, TeacherParams, load_params
from ..jsonl import write_json, write_jsonl
from ..synth import checkpoint, cost, decomposed
from ..synth.cost import Meter
from ..synth.data import load_fewshot, load_taxonomy
from ..synth.parse import ParseError, parse_answer, parse_record
from ..synth.program import program
from ..synth import prompts
from ..synth.prompts import generation_messages, repair_messages, task_seed, task_spec
from ..synth.steps import content_id
from ..synth.teacher import LazyTeacher, describe
from ..tracking import flatten, live, log_metrics, stage_run


def make_record(spec, seed: int, raw: str, teacher: str, sampling: dict[str, Any],
                repair: dict | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"index": spec.index, "topic": spec.topic, "concept": spec.concept,
                           "teacher": teacher, "sampling": sampling, "seed": seed, "repair": repair}
    try:
        p = parse_record(raw, repair)
        rec.update(id=content_id(p.instruction, p.solution, p.tests), instruction=p.instruction,
                   solution=p.solution, tests=p.tests, parse_error=None)
    except ParseError as exc:
        rec.update(id=content_id(raw, "", ""), instruction=None, solution=None, tests=None,
                   parse_error=exc.reason)
    rec["raw"] = raw
    return rec


REPAIRABLE = ("compile_error", "assertion_failed", "exception", "no_verdict")


def repair(meter, executor, convs: list[list[dict]], answers: list[str], seeds: list[int], sampling, rounds: int
           ) -> tuple[list[str], list[dict | None]]:
    """Feedback turns for answers that parse but fail in the sandbox. Returns the final
    answers and, per answer, the repair record (None when untouched)."""
    log: list[dict | None] = [None] * len(answers)
    for r in range(rounds):
        todo, runs = [], []
        for i, a in enumerate(answers):
            try:
                p = parse_answer(a)
            except ParseError:
                continue
            todo.append(i)
            runs.append(program(p.solution, p.tests))
        with meter.counting():
            results = executor.run(runs) if runs else []
        failed = [(i, res) for i, res in zip(todo, results, strict=True) if res.status.value in REPAIRABLE]
        if not failed:
            break
        outs = meter.chat([repair_messages(convs[i], answers[i], res.status.value, res.detail) for i, res in failed],
                          sampling, seeds=[seeds[i] + r + 1 for i, _ in failed])
        for (i, res), out in zip(failed, outs, strict=True):
            log[i] = {"rounds": r + 1, "first_status": (log[i] or {}).get("first_status", res.status.value),
                      "raw_first": (log[i] or {}).get("raw_first", answers[i])}
            answers[i] = out[0]
    return answers, log


def generate(cfg: GenerateParams, tcfg: TeacherParams, sandbox_cfg: SandboxParams,
             checkpoint_root: Path = checkpoint.ROOT, stop_after_chunks: int | None = None,
             on_chunk: Any = None) -> tuple[list[dict], dict[str, Any]]:
    """Pure core: returns the records (by task index) and generation stats (tokens and
    seconds of the whole run, resumed chunks included).

    `stop_after_chunks` ends the run early after that many new chunks (for tests of resume);
    `on_chunk(records, tallies)` sees the run so far after each chunk (live metrics).
    """
    from ..engines import SamplingConfig
    from ..hashing import path_digest

    taxonomy, fewshot = load_taxonomy(), load_fewshot()
    teacher = describe(tcfg)
    sampling = {"temperature": cfg.temperature, "top_p": cfg.top_p, "top_k": cfg.top_k,
                "max_new_tokens": cfg.max_new_tokens}
    sampler = SamplingConfig(n=1, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                             max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    key = {"teacher": path_digest(Path(tcfg.model_dir)), "engine": tcfg.engine,
           "engine_options": tcfg.engine_options.of(tcfg.engine), "generate": cfg.model_dump(exclude={"num_tasks", "out", "metrics"}),
           "taxonomy": taxonomy, "fewshot": fewshot, "prompts": checkpoint.source_digest(prompts),
           "record_code": checkpoint.record_code(cfg.recipe)}
    path = checkpoint.checkpoint_path(checkpoint_root, "generate", key)
    sandbox: dict[str, Any] = {}  # built on first use: a fully resumed run needs none

    with LazyTeacher(tcfg, cfg.seed) as lazy:
        def executor(kind: str):
            if kind not in sandbox:
                from ..csharp import make_executor

                sandbox[kind] = (decomposed.check_executor(sandbox_cfg) if kind == "check"
                                 else make_executor(sandbox_cfg))
            return sandbox[kind]

        def work(idx: range) -> tuple[list[dict], dict]:
            meter = Meter(lazy.engine)
            specs = [task_spec(i, cfg.seed, taxonomy, fewshot, cfg.fewshot) for i in idx]
            seeds = [task_seed(cfg.seed, i) for i in idx]
            if cfg.recipe == "decomposed":
                done = decomposed.run_chunk(meter, executor("check"), specs, seeds, sampler,  # + its sandbox time
                                            cfg.solutions_per_task, cfg.tests_per_task, cfg.task_attempts,
                                            cfg.output_agreement)
                return [{**make_record(s, sd, raw, teacher, sampling), "recipe": "decomposed", "steps": steps}
                        for s, sd, (raw, steps) in zip(specs, seeds, done, strict=True)], meter.tally
            convs = [generation_messages(s, fewshot) for s in specs]
            answers = [o[0] for o in meter.chat(convs, sampler, seeds=seeds)]
            repairs: list[dict | None] = [None] * len(answers)
            if cfg.repair_rounds:
                answers, repairs = repair(meter, executor("full"), convs, answers, seeds, sampler, cfg.repair_rounds)
            records = [make_record(s, sd, a, teacher, sampling, rep)
                       for s, sd, a, rep in zip(specs, seeds, answers, repairs, strict=True)]
            return records, meter.tally

        records, resumed, tallies = checkpoint.run_chunks(path, cfg.num_tasks, cfg.chunk_size, work,
                                                          stop_after_chunks, on_chunk)
    stats = {**cost.total(tallies), "resumed_tasks": resumed, "checkpoint": str(path)}
    return records, stats


def live_summary(records: list[dict], tallies: list[dict]) -> dict[str, Any]:
    """What the MLflow UI charts while generate runs: answers parsed (the decomposed recipe:
    examples assembled) so far, and the teacher's tokens and tokens/s."""
    ok = sum((r["steps"]["dropped_at"] is None) if r.get("recipe") == "decomposed" else r["parse_error"] is None
             for r in records)
    return {"assembled": ok, **cost.total(tallies)}


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg = params.generate
    logged = {"generate": cfg.model_dump(), "teacher": params.teacher.model_dump()}
    with stage_run(params.mlflow, "generate", params=logged, inputs={"teacher": params.teacher.model_dir},
                   outputs={"generated": cfg.out}) as mlflow:
        records, stats = generate(cfg, params.teacher, params.sandbox, on_chunk=live(mlflow, live_summary))
        parsed = sum(r["parse_error"] is None for r in records)
        repaired = sum(r.get("repair") is not None for r in records)
        metrics = {"tasks": len(records), "parsed": parsed, "parse_rate": round(parsed / max(1, len(records)), 4),
                   "repair_turns": repaired, "recipe": cfg.recipe,
                   "topics": len({r["topic"] for r in records}), "generation": stats}
        if cfg.recipe == "decomposed":
            drops = [r["steps"]["dropped_at"] for r in records]
            metrics["decomposed"] = {f"dropped_at_{s}": drops.count(s) for s in decomposed.STEPS}
            metrics["decomposed"]["assembled"] = drops.count(None)
            # drafts (task step passed) that needed more than one task-step answer
            metrics["decomposed"]["drafts_from_retries"] = sum(
                r["steps"].get("attempts", 1) > 1 and r["steps"]["dropped_at"] not in ("task", "render")
                for r in records)
            # assembled from the bodies' outputs (output_agreement) instead of the tests' agreement
            metrics["decomposed"]["assembled_from_outputs"] = sum(
                r["steps"]["dropped_at"] is None and r["steps"].get("agreement") == "outputs" for r in records)
        write_jsonl(cfg.out, records)
        write_json(cfg.metrics, metrics)
        log_metrics(mlflow, flatten("", metrics))
        mlflow.log_artifact(cfg.metrics)
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="teacher writes C# tasks, solutions and tests (stage generate)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.params))
