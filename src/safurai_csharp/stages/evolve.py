"""Stage evolve@K: one round of Evol-Instruct (WizardCoder's code methods) on round K-1's pool.

Per parent, a method drawn with a generator seeded by (evolve.seed, K, parent id); the
teacher rewrites the task, then solves the rewritten task with new solution and tests: in
one answer (`evolve.recipe: answer`, WizardCoder's), or as generate's decomposed recipe does
(`decomposed`: a solution only, then more bodies and independent tests sampled with
generate's decomposed knobs, and the agreed ones kept; synth/decomposed.py).
Elimination follows WizardLM (no information gain; refusal or too short; copies the
evolution prompt's scaffolding) plus ours: the evolved example must pass the same
execution check, heuristics and decontamination as a generated one. A parent whose
evolution is eliminated is carried into the next round's pool (`carried: true`), as
WizardLM does; the training set takes only the new examples of each round.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path
from typing import Any

from ..config import (EvolveParams, FilterParams, GenerateParams, ParamsError, SandboxParams, TeacherParams,
                      load_params)
from ..decontam import tokens
from ..jsonl import read_jsonl, write_json, write_jsonl
from ..synth import checkpoint, cost, decomposed
from ..synth.cost import Meter
from ..synth.data import load_fewshot
from ..synth.parse import ParseError, parse_answer
from ..synth import prompts
from ..synth.prompts import SCAFFOLDING, evolution_messages, solve_messages, task_seed
from ..synth.steps import REFUSAL, build_steps, content_id, run_steps
from ..synth.teacher import LazyTeacher, describe
from ..tracking import flatten, live, log_metrics, stage_run

# The filter's checks an evolved example must pass again, built like the filter stage builds
# them (synth/steps.py): a new knob of these steps reaches evolve without an edit here. Their
# params are in evolve's dvc.yaml params (filter.execution, filter.heuristics, filter.decontam).
EVOLVE_STEPS = ("execution", "heuristics", "decontam")
# generate's knobs that evolve's decomposed recipe samples with (one home: the generate section)
DECOMPOSED_KNOBS = ("solutions_per_task", "tests_per_task", "task_attempts", "output_agreement")

_LEAD = re.compile(r"^\s*(?:#+\s*)?(?:\*\*)?\s*(?:new |rewritten |evolved )?(?:question|task|prompt)\s*:?\s*(?:\*\*)?\s*:?\s*\n?",
                   re.IGNORECASE)


def clean_instruction(text: str) -> str:
    return _LEAD.sub("", text.strip(), count=1).strip()


def similarity(a: str, b: str) -> float:
    ta, tb = set(tokens(a.lower())), set(tokens(b.lower()))
    return len(ta & tb) / max(1, len(ta | tb))


def eliminate(parent: str, evolved: str, cfg: EvolveParams, filter_cfg: FilterParams) -> str | None:
    """WizardLM's elimination rules on the evolved task text; None = keep."""
    if len(evolved) < filter_cfg.heuristics.min_instruction_chars or REFUSAL.search(evolved):
        return "refusal_or_too_short"
    low = evolved.lower()
    if any(s in low for s in SCAFFOLDING):
        return "copies_evolution_prompt"
    if similarity(parent, evolved) >= cfg.max_similarity or len(evolved) - len(parent) < cfg.min_growth_chars:
        return "no_information_gain"
    return None


def method_for(parent_id: str, k: int, cfg: EvolveParams) -> str:
    rng = random.Random(f"{cfg.seed}:{k}:{parent_id}")
    return cfg.methods[rng.randrange(len(cfg.methods))]


def evolve_candidates(parents: list[dict], k: int, cfg: EvolveParams, tcfg: TeacherParams, filter_cfg: FilterParams,
                      gen: GenerateParams, sandbox: SandboxParams, checkpoint_root: Path = checkpoint.ROOT,
                      stop_after_chunks: int | None = None, on_chunk: Any = None) -> tuple[list[dict], dict[str, Any]]:
    """Teacher calls (resumable, chunked like generate): one candidate per parent, and the
    tokens and seconds they cost (the whole round's, resumed chunks included; the decomposed
    recipe's cross-check in the sandbox counts in its seconds, as in generate). `on_chunk`:
    live metrics after each chunk."""
    from ..engines import SamplingConfig
    from ..hashing import path_digest

    fewshot = load_fewshot()
    size = gen.chunk_size  # chunked like generate
    key = {"teacher": path_digest(Path(tcfg.model_dir)), "engine": tcfg.engine,
           "engine_options": tcfg.engine_options.of(tcfg.engine), "evolve": cfg.model_dump(exclude={"rounds", "metrics_dir"}),
           "round": k, "parents": [p["id"] for p in parents], "chunk": size, "fewshot": fewshot,
           "prompts": checkpoint.source_digest(prompts)}
    if cfg.recipe == "decomposed":  # its raw answers are assembled by code and generate's knobs
        key["decomposed"] = {"knobs": gen.model_dump(include=set(DECOMPOSED_KNOBS)),
                             "record_code": checkpoint.record_code("decomposed")}
    path = checkpoint.checkpoint_path(checkpoint_root, "evolve", key)
    sampling = SamplingConfig(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                              max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    shots = tuple(range(min(cfg.fewshot, len(fewshot))))

    executors: list[Any] = []  # the cross-check's sandbox, built on first use

    with LazyTeacher(tcfg, cfg.seed) as lazy:
        def solve(engine: Meter, evolved: list[str], seeds: list[int]) -> list[tuple[str | None, dict | None]]:
            """(raw answer, decomposed steps or None) per evolved task."""
            if cfg.recipe == "answer":
                answers = engine.chat([solve_messages(e, fewshot, shots) for e in evolved], sampling, seeds=seeds)
                return [(a[0], None) for a in answers]
            if not executors:
                executors.append(decomposed.check_executor(sandbox))
            done = decomposed.run_chunk(engine, executors[0], [decomposed.Given(e) for e in evolved], seeds, sampling,
                                        gen.solutions_per_task, gen.tests_per_task, gen.task_attempts,
                                        gen.output_agreement)  # its sandbox time counts in engine's seconds
            # a dropped task's raw is its last chat answer: no example, the steps say why
            return [(raw if steps["dropped_at"] is None else None, steps) for raw, steps in done]

        def work(idx: range) -> tuple[list[dict], dict]:
            engine = Meter(lazy.engine)
            chunk = [parents[i] for i in idx]
            seeds = [task_seed(cfg.seed * 1000 + k, i) for i in idx]
            methods = [method_for(p["id"], k, cfg) for p in chunk]
            rewritten = engine.chat([evolution_messages(m, p["instruction"]) for m, p in zip(methods, chunk)],
                                    sampling, seeds=seeds)
            evolved = [clean_instruction(r[0]) for r in rewritten]
            reasons = [eliminate(p["instruction"], e, cfg, filter_cfg) for p, e in zip(chunk, evolved)]
            todo = [j for j, r in enumerate(reasons) if r is None]
            solved = solve(engine, [evolved[j] for j in todo], [seeds[j] for j in todo]) if todo else []
            answer_of = dict(zip(todo, solved, strict=True))
            records = []
            for j, (i, p, m, sd, e, r) in enumerate(zip(idx, chunk, methods, seeds, evolved, reasons)):
                raw, steps = answer_of.get(j, (None, None))
                records.append({"index": i, "parent_id": p["id"], "method": m, "seed": sd, "evolved_instruction": e,
                                "elimination": r, "raw": raw,
                                **({"steps": steps} if cfg.recipe == "decomposed" else {})})
            return records, engine.tally

        candidates, _resumed, tallies = checkpoint.run_chunks(path, len(parents), size, work, stop_after_chunks,
                                                              on_chunk)
    return candidates, cost.total(tallies)


def to_example(cand: dict, parent: dict, k: int, teacher: str, cfg: EvolveParams) -> dict | str:
    """The evolved example, or the reason it cannot be one."""
    if cand["elimination"]:
        return cand["elimination"]
    steps = cand.get("steps") or {}
    if steps.get("dropped_at"):  # the decomposed recipe's own steps, named like the answer recipe's parse
        return f"{'parse' if steps['dropped_at'] == 'task' else steps['dropped_at']}_{steps.get('reason')}"
    raw = cand["raw"] or ""
    try:
        p = parse_answer(raw)
    except ParseError:
        try:  # the answer skipped repeating the task: the rewritten task is known anyway
            p = parse_answer(f"### Task\n{cand['evolved_instruction']}\n\n{raw}")
        except ParseError as exc:
            return f"parse_{exc.reason}"
    ins = cand["evolved_instruction"]
    return {"id": content_id(ins, p.solution, p.tests), "instruction": ins, "solution": p.solution, "tests": p.tests,
            "topic": parent.get("topic"), "concept": parent.get("concept"), "teacher": teacher,
            "sampling": {"temperature": cfg.temperature, "top_p": cfg.top_p,
                         "top_k": cfg.top_k, "max_new_tokens": cfg.max_new_tokens},
            "seed": cand["seed"], "raw": raw, "round": k, "method": cand["method"], "parent_id": parent["id"],
            "recipe": cfg.recipe}


def evolve_round(parents: list[dict], k: int, cfg: EvolveParams, tcfg: TeacherParams, filter_cfg: FilterParams,
                 gen: GenerateParams, sandbox: SandboxParams, benchmark: list[str],
                 on_chunk: Any = None, checkpoint_root: Path = checkpoint.ROOT) -> tuple[list[dict], dict[str, Any]]:
    """Pure core: the round's pool (new examples + carried parents) and its metrics. `benchmark`
    lists the problems files the decontam step blocks (the test set and DevBench, deps of the stage)."""
    from ..csharp import make_executor

    teacher = describe(tcfg)
    candidates, generation = evolve_candidates(parents, k, cfg, tcfg, filter_cfg, gen, sandbox,
                                               checkpoint_root=checkpoint_root, on_chunk=on_chunk)
    start = time.perf_counter()
    outcomes = [to_example(c, p, k, teacher, cfg) for c, p in zip(candidates, parents, strict=True)]
    examples = [o for o in outcomes if isinstance(o, dict)]
    steps = build_steps(EVOLVE_STEPS, filter_cfg, {"executor": make_executor(sandbox), "benchmark": benchmark})
    kept, funnel = run_steps(examples, steps)
    checks_s = time.perf_counter() - start
    kept_parents = {e["parent_id"] for e in kept}
    carried = [{**p, "carried": True} for p in parents if p["id"] not in kept_parents]
    pool = [{**e, "carried": False} for e in kept] + carried
    eliminated: dict[str, int] = {}
    for o in outcomes:
        if isinstance(o, str):
            eliminated[o] = eliminated.get(o, 0) + 1
    for step in funnel[1:]:
        for reason, n in step["dropped"].items():
            eliminated[reason] = eliminated.get(reason, 0) + n
    methods: dict[str, dict[str, int]] = {}
    for c in candidates:
        m = methods.setdefault(c["method"], {"tried": 0, "kept": 0})
        m["tried"] += 1
    for e in kept:
        methods[e["method"]]["kept"] += 1
    metrics = {"round": k, "parents": len(parents), "evolved": len(kept), "carried": len(carried),
               "pool": len(pool), "survival": round(len(kept) / max(1, len(parents)), 4),
               "eliminated": dict(sorted(eliminated.items())), "methods": methods, "generation": generation,
               "cost": cost.per_kept(len(kept), generation["generated_tokens"], generation["seconds"] + checks_s)}
    return pool, metrics


def live_summary(candidates: list[dict], tallies: list[dict]) -> dict[str, Any]:
    """What the MLflow UI charts while a round runs: rewrites that survived elimination so
    far, and the teacher's tokens and tokens/s."""
    return {"not_eliminated": sum(c["elimination"] is None for c in candidates), **cost.total(tallies)}


def run(round_k: int, params_path: str = "params.yaml") -> dict[str, Any]:
    params = load_params(params_path)
    cfg = params.evolve
    if str(round_k) not in cfg.rounds:
        raise ParamsError(f"evolve.rounds has no round {round_k}; known: {', '.join(cfg.rounds)}")
    rnd = cfg.rounds[str(round_k)]
    parents = read_jsonl(rnd.parent)
    logged = {"evolve": cfg.model_dump(exclude={"rounds"}), "round": round_k, "parent": rnd.parent,
              "teacher": params.teacher.model_dump(), "filter.execution": params.filter.execution.model_dump()}
    with stage_run(params.mlflow, f"evolve@{round_k}", params=logged, run_name=f"evolve@{round_k}",
                   inputs={"parents": rnd.parent, "teacher": params.teacher.model_dir},
                   outputs={"evolved": rnd.out}) as mlflow:
        pool, metrics = evolve_round(parents, round_k, cfg, params.teacher, params.filter, params.generate,
                                      params.sandbox, params.benchmark.evaluation_files(), on_chunk=live(mlflow, live_summary))
        metrics_path = Path(cfg.metrics_dir) / f"round{round_k}.json"
        write_jsonl(rnd.out, pool)
        write_json(metrics_path, metrics)
        log_metrics(mlflow, flatten("", {k: v for k, v in metrics.items() if k != "round"}))
        mlflow.log_artifact(str(metrics_path))
    return metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evolve", help="one Evol-Instruct round (stages evolve@1..N)")
    p.add_argument("--round", type=int, required=True, dest="round_k", help="a key of evolve.rounds")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=lambda a: run(a.round_k, a.params))
