"""Scoring completions against MultiPL-E problems: shared by the eval_multipl_e stage and
the `eval-completions` tool, so a number from either means the same thing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import EvaluationInputError
from .passk import bootstrap_interval, mean_pass_at_k

MODES = ("official", "corrected")


@dataclass(frozen=True)
class ModeOutcome:
    results: list[list[dict[str, Any]]]  # per problem, per completion: {"status", "passed"}
    summary: dict[str, Any]


def check_problems(problems: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Every benchmark row needs the string fields a program is built from, and a unique name:
    a bad row is one plain error before any model or sandbox starts, not a traceback later."""
    seen = set()
    for i, row in enumerate(problems, 1):
        for field in ("name", "prompt", "tests"):
            if not isinstance(row.get(field), str):
                raise EvaluationInputError(f"{path}:{i}: benchmark row lacks the string field {field!r}")
        if row["name"] in seen:
            raise EvaluationInputError(f"{path}:{i}: problem {row['name']!r} appears twice")
        seen.add(row["name"])


def match_completions(
    problems: Sequence[Mapping[str, Any]], completions: Sequence[Mapping[str, Any]],
) -> list[list[str]]:
    """Order the completions like the problems; every completion row must name a known problem."""
    by_name: dict[str, list[str]] = {}
    known = {p["name"] for p in problems}
    for i, row in enumerate(completions, 1):
        name = row.get("name")
        texts = row.get("completions")
        if not isinstance(name, str):
            raise EvaluationInputError(f"completions line {i}: missing string field 'name'")
        if name not in known:
            raise EvaluationInputError(f"completions line {i}: unknown problem {name!r}")
        if name in by_name:
            raise EvaluationInputError(f"completions line {i}: problem {name!r} appears twice")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or not texts:
            raise EvaluationInputError(
                f"completions line {i} ({name}): 'completions' must be a non-empty list of strings"
            )
        by_name[name] = texts
    return [by_name.get(p["name"], []) for p in problems]


def score(
    problems: Sequence[Mapping[str, Any]], completions: Sequence[Sequence[str]], mode: str,
    executor: Any, on_progress: Any = None,
) -> ModeOutcome:
    """Run every (problem, completion) program in the sandbox and summarise one mode.
    `on_progress(decided, passed, total)`: the sandbox's progress (Executor.run)."""
    from .csharp import Program

    if mode not in MODES:
        raise EvaluationInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    programs, owner = [], []
    for pi, (problem, texts) in enumerate(zip(problems, completions, strict=True)):
        for ci, text in enumerate(texts):
            programs.append(Program(prompt=problem["prompt"], completion=text, tests=problem["tests"],
                                    mode=mode, name=f"{problem['name']}#{ci}"))
            owner.append(pi)
    raw = executor.run(programs, on_progress=on_progress)
    results: list[list[dict[str, Any]]] = [[] for _ in problems]
    for pi, res in zip(owner, raw, strict=True):
        results[pi].append({"status": str(res.status.value), "passed": bool(res.passed)})
    return ModeOutcome(results=results, summary=summarise(results, mode))


def evaluate(problems: Sequence[Mapping[str, Any]], completions: Sequence[Sequence[str]], modes: Sequence[str],
             executor: Any, progress: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score the completions in every mode: the per-problem records ({name, completions,
    results: {mode: [...]}}) and the metrics document ({problems, <mode>: summary}).
    `progress` (a tracking.LiveProgress) watches each mode's sandbox run as live.<mode>.*."""
    records = [{"name": p["name"], "completions": list(c), "results": {}}
               for p, c in zip(problems, completions, strict=True)]
    metrics: dict[str, Any] = {"problems": len(problems)}
    for mode in modes:
        start = time.perf_counter()
        outcome = score(problems, completions, mode, executor,
                        on_progress=None if progress is None else progress.programs(mode))
        for rec, res in zip(records, outcome.results, strict=True):
            rec["results"][mode] = res
        metrics[mode] = {**outcome.summary, "execution_seconds": round(time.perf_counter() - start, 2)}
    return records, metrics


def summarise(results: Sequence[Sequence[Mapping[str, Any]]], mode: str) -> dict[str, Any]:
    scored = [r for r in results if r]
    counts = [(len(r), sum(1 for x in r if x["passed"])) for r in scored]
    status = Counter(x["status"] for r in scored for x in r)
    programs = sum(status.values())
    n_min = min((n for n, _ in counts), default=0)
    summary: dict[str, Any] = {
        "mode": mode,
        "problems": len(scored),
        "programs": programs,
        "status": dict(sorted(status.items())),
        "compile_rate": (programs - status.get("compile_error", 0)) / programs if programs else 0.0,
        "problems_solved": sum(1 for _, c in counts if c > 0),
    }
    for k in (1, 10, 100):
        if counts and n_min >= k:
            summary[f"pass@{k}"] = mean_pass_at_k(counts, k)
    if counts:
        lo, hi = bootstrap_interval(counts, 1)
        summary["pass@1_ci95"] = [lo, hi]
    return summary


def sample_completions(
    problems: Sequence[Mapping[str, Any]], model_dir: str | Path | None, *, engine: str,
    engine_options: Mapping[str, Any], sampling: Any, protocol: str = "completion", on_progress: Any = None,
) -> tuple[list[list[str]], dict[str, Any]]:
    """`sampling.n` completions per problem from the model in `model_dir`, asked by `protocol`
    (protocols.py), and the generation statistics (tokens, seconds, tokens/s).
    `on_progress(done, total, generated_tokens)` sees the problems sampled so far of all of
    them, however many engine calls the protocol makes (engines.base.Progress, AcrossCalls)."""
    from .engines import make_engine
    from .engines.base import AcrossCalls
    from .protocols import get_protocol

    how = get_protocol(protocol)
    if not problems:  # e.g. an empty dev set: no engine start-up (a minute of vLLM) for nothing
        return [], {"generated_tokens": 0, "prompt_tokens": 0, "protocol": protocol, "seconds": 0.0,
                    "tokens_per_s": 0.0}
    model = make_engine(engine, None if model_dir is None else Path(model_dir), seed=sampling.seed,
                        **dict(engine_options))
    if on_progress is not None:
        model.on_progress = AcrossCalls(len(problems), on_progress)
    start = time.perf_counter()
    try:
        completions = how.sample(model, problems, sampling)
        stats: dict[str, Any] = {"generated_tokens": 0, "prompt_tokens": 0, **dict(model.last_stats or {})}
    finally:
        model.close()
    stats.pop("seconds", None)
    stats["protocol"] = protocol
    stats["seconds"] = round(time.perf_counter() - start, 2)
    stats["tokens_per_s"] = round(stats["generated_tokens"] / stats["seconds"], 1) if stats["seconds"] else 0.0
    return completions, stats


def sample_and_score(problems: Sequence[Mapping[str, Any]], model_dir: str | Path, cfg: Any, *, engine: str,
                     engine_options: Mapping[str, Any], executor: Any,
                     progress: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One evaluation: `cfg` (config.SamplingParams: protocol, n, temperature, ..., modes) says
    how to sample and score; returns the per-problem records and the metrics document.
    `progress` (a tracking.LiveProgress) logs live.generation.* and live.<mode>.* as it goes."""
    completions, gen = sample_completions(
        problems, model_dir, engine=engine, engine_options=engine_options, sampling=cfg.sampling(),
        protocol=cfg.protocol, on_progress=None if progress is None else progress.generation())
    records, metrics = evaluate(problems, completions, cfg.modes, executor, progress)
    metrics.update(n=cfg.n, protocol=cfg.protocol, generation=gen)
    return records, metrics


def run_stage(stage: str, problems: tuple[str, str | Path], model_dir: str | Path, cfg: Any, *, engine: str,
              engine_options: Mapping[str, Any], sandbox: Any, mlflow_cfg: Any, logged: Mapping[str, Any],
              out: Path, metrics_path: Path,
              select: Callable[[list[dict]], list[dict]] | None = None) -> dict[str, Any]:
    """The body of an eval stage (eval_multipl_e@t, eval_dev@t): one MLflow run that reads the
    problems file (`problems` = (lineage name, path)), keeps the rows `select` returns (all
    when None), samples and scores, and writes the per-problem records to `out` and the metrics
    document to `metrics_path`. While it runs, live.generation.* and live.<mode>.* metrics
    (tracking.LiveProgress) show how far it got."""
    from .csharp import make_executor
    from .jsonl import read_jsonl, write_json, write_jsonl
    from .tracking import flatten, live_progress, log_metrics, stage_run

    name, path = problems
    with (stage_run(mlflow_cfg, stage, params=dict(logged), run_name=stage, inputs={"model": model_dir, name: path},
                    outputs={"results": out, "metrics": metrics_path}) as mlflow,
          live_progress(mlflow) as live):
        rows = read_jsonl(path)
        check_problems(rows, path)
        if select is not None:
            try:
                rows = select(rows)
            except EvaluationInputError:
                raise
            except ValueError as e:  # e.g. a name outside the selection's scheme
                raise EvaluationInputError(f"{path}: {e}") from e
            if not rows:
                raise EvaluationInputError(f"{path}: the selection leaves no problem to score")
        records, metrics = sample_and_score(rows, model_dir, cfg, engine=engine, engine_options=engine_options,
                                            executor=make_executor(sandbox), progress=live)
        write_jsonl(out, records)
        write_json(metrics_path, metrics)
        log_metrics(mlflow, flatten("", {k: metrics[k] for k in (*cfg.modes, "generation")}))
        mlflow.log_artifact(str(out))
        mlflow.log_artifact(str(metrics_path))
    return metrics
