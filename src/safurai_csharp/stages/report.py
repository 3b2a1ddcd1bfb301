"""Stage report: the fine-tuned model against the base model on HumanEval-C#.

Reads what eval_multipl_e wrote for report.baseline and report.candidate (both targets'
results.jsonl and metrics json) and, per test mode, compares them paired over problems: both
models answered the same problems, so the uncertainty of the difference comes from the
problems on which they disagree, not from two independent intervals.

- pass@1 of each (unbiased estimator, passk.py) with its 95% bootstrap interval over problems;
- delta = candidate - baseline, with a paired bootstrap interval (a problem is resampled with
  both of its scores);
- a two-sided p-value: with one completion per problem (greedy) the exact McNemar test on the
  problems only one model solves (`improved`: only the candidate, `regressed`: only the
  baseline); with n > 1 a sign-flip permutation test on the per-problem pass-rate differences
  (stats.py). `improved` / `regressed` then count problems whose pass rate went up / down.

The same comparison on the dev set (eval_dev's results of both targets) is the report's `dev`
section ({"problems": 0} while there is no dev set): recipes are chosen on it, not on the test set.

Written: report.metrics (JSON, `dvc exp show` columns) and report.per_problem_plot (CSV: one row
per problem in benchmark order, the pass rate of each target in each mode; `dvc plots show`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import load_params
from ..errors import EvaluationInputError
from ..passk import bootstrap_interval, bootstrap_mean_interval, pass_at_k, problem_counts
from ..stats import mcnemar_exact, sign_flip_test
from ..tracking import flatten, log_metrics, stage_run


def _align(baseline_records, candidate_records, modes, baseline: str, candidate: str):
    base = problem_counts(baseline_records, modes, f"eval_multipl_e@{baseline}")
    cand = problem_counts(candidate_records, modes, f"eval_multipl_e@{candidate}")
    if base.keys() != cand.keys():
        only_b, only_c = sorted(base.keys() - cand.keys()), sorted(cand.keys() - base.keys())
        parts = [f"{len(names)} only in {who} (e.g. {', '.join(names[:3])})"
                 for who, names in ((baseline, only_b), (candidate, only_c)) if names]
        raise EvaluationInputError(
            f"{baseline} and {candidate} were evaluated on different problems: {'; '.join(parts)}. "
            f"Rerun both eval_multipl_e targets on the same benchmark")
    return base, cand


def _interval(bounds: tuple[float, float]) -> dict[str, float]:
    # {lo, hi} rather than eval's [lo, hi]: `dvc exp show` / `dvc metrics show` drop list leaves.
    return dict(zip(("lo", "hi"), bounds, strict=True))


def compare(baseline_records: Sequence[Mapping[str, Any]], candidate_records: Sequence[Mapping[str, Any]],
            modes: Sequence[str], *, baseline: str = "base", candidate: str = "merged",
            bootstrap_samples: int = 2000, permutations: int = 10000, seed: int = 0) -> dict[str, Any]:
    """Pure: the report document (see the module docstring); problems are matched by name."""
    base, cand = _align(baseline_records, candidate_records, modes, baseline, candidate)
    names = list(base)
    report: dict[str, Any] = {"baseline": baseline, "candidate": candidate, "problems": len(names),
                              "n": {baseline: max(base[p][modes[0]][0] for p in names),
                                    candidate: max(cand[p][modes[0]][0] for p in names)}}
    for mode in modes:
        row: dict[str, Any] = {}
        rates = {}
        for target, counts in ((baseline, base), (candidate, cand)):
            nc = [counts[p][mode][:2] for p in names]
            rates[target] = [pass_at_k(n, c, 1) for n, c in nc]
            programs = sum(n for n, _ in nc)
            row[f"{target}_pass@1"] = sum(rates[target]) / len(names)
            row[f"{target}_pass@1_ci95"] = _interval(bootstrap_interval(nc, 1, resamples=bootstrap_samples, seed=seed))
            row[f"{target}_compile_rate"] = (programs - sum(counts[p][mode][2] for p in names)) / programs
        diffs = [c - b for b, c in zip(rates[baseline], rates[candidate], strict=True)]
        improved, regressed = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
        greedy = all(base[p][mode][0] == 1 and cand[p][mode][0] == 1 for p in names)
        row.update({
            "delta": row[f"{candidate}_pass@1"] - row[f"{baseline}_pass@1"],
            "delta_ci95": _interval(bootstrap_mean_interval(diffs, resamples=bootstrap_samples, seed=seed)),
            "test": "mcnemar_exact" if greedy else "sign_flip_permutation",
            "p_value": mcnemar_exact(improved, regressed) if greedy else sign_flip_test(diffs, permutations, seed),
            "improved": improved, "regressed": regressed, "unchanged": len(names) - improved - regressed,
        })
        report[mode] = row
    return report


def per_problem_rows(baseline_records, candidate_records, modes: Sequence[str], *, baseline: str = "base",
                     candidate: str = "merged") -> list[dict[str, Any]]:
    """One row per problem (the baseline's order, i.e. the benchmark's): `problem` and, per mode
    and target, `<target>_<mode>` = its pass rate (passed / n)."""
    base, cand = _align(baseline_records, candidate_records, modes, baseline, candidate)
    rows = []
    for name in base:
        row: dict[str, Any] = {"problem": name}
        for mode in modes:
            for target, counts in ((baseline, base), (candidate, cand)):
                n, c, _ = counts[name][mode]
                row[f"{target}_{mode}"] = round(pass_at_k(n, c, 1), 6)
        rows.append(row)
    return rows


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _check_against_eval_metrics(report: Mapping[str, Any], target: str, path: Path, modes: Sequence[str]) -> None:
    """results.jsonl and metrics json of a target come from one eval run; refuse a mixture."""
    metrics = json.loads(path.read_text())
    for mode in modes:
        logged = (metrics.get(mode) or {}).get("pass@1")
        ours = report[mode][f"{target}_pass@1"]
        if logged is None or abs(float(logged) - ours) > 1e-9:
            raise EvaluationInputError(
                f"{path} gives {mode} pass@1 {logged}, but the completions in its results.jsonl score {ours:.6f}: "
                f"the two files come from different runs; rerun eval_multipl_e@{target}")


def run(params_path: str = "params.yaml") -> dict[str, Any]:
    from ..jsonl import read_jsonl, write_atomic, write_json

    params = load_params(params_path)
    cfg, ev = params.report, params.eval_multipl_e
    targets = (cfg.baseline, cfg.candidate)
    results = {t: ev.results_path(t) for t in targets}
    evals = {t: ev.metrics_path(t) for t in targets}
    for t in targets:
        for path in (results[t], evals[t]):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: run `safurai-csharp eval-multipl-e --target {t}` first")
    records = {t: read_jsonl(results[t]) for t in targets}
    names = {"baseline": cfg.baseline, "candidate": cfg.candidate}
    report = compare(records[cfg.baseline], records[cfg.candidate], ev.modes, **names,
                     bootstrap_samples=cfg.bootstrap_samples, permutations=cfg.permutations, seed=cfg.seed)
    for t in targets:
        _check_against_eval_metrics(report, t, evals[t], ev.modes)
    rows = per_problem_rows(records[cfg.baseline], records[cfg.candidate], ev.modes, **names)
    # The same comparison on the dev set (eval_dev): where recipes are chosen.
    dev_results = {t: params.eval_dev.results_path(t) for t in targets}
    dev_records = {t: read_jsonl(p) if p.is_file() else [] for t, p in dev_results.items()}
    if all(dev_records.values()):
        report["dev"] = compare(dev_records[cfg.baseline], dev_records[cfg.candidate], params.eval_dev.modes,
                                **names, bootstrap_samples=cfg.bootstrap_samples, permutations=cfg.permutations,
                                seed=cfg.seed)
    else:
        report["dev"] = {"problems": 0}
    inputs = {**{f"{t}_results": results[t] for t in targets}, **{f"{t}_metrics": evals[t] for t in targets},
              **{f"{t}_dev_results": dev_results[t] for t in targets if dev_results[t].is_file()}}
    logged = {"report": cfg.model_dump(), "modes": list(ev.modes)}
    with stage_run(params.mlflow, "report", params=logged, inputs=inputs,
                   outputs={"report": cfg.metrics, "per_problem": cfg.per_problem_plot}) as mlflow:
        write_json(cfg.metrics, report)
        write_atomic(cfg.per_problem_plot, to_csv(rows))
        log_metrics(mlflow, flatten("", {**{m: report[m] for m in ev.modes}, "dev": report["dev"]}))
        mlflow.set_tags({f"report.{m}.test": report[m]["test"] for m in ev.modes})
        mlflow.log_artifact(cfg.metrics)
        mlflow.log_artifact(cfg.per_problem_plot)
    sections = [(m, report[m]) for m in ev.modes]
    sections += [(f"dev {m}", report["dev"][m]) for m in params.eval_dev.modes if m in report["dev"]]
    _print_sections(sections, cfg.baseline, cfg.candidate)
    return report


def _print_sections(sections: Sequence[tuple[str, Mapping[str, Any]]], baseline: str, candidate: str) -> None:
    for m, r in sections:
        ci = r["delta_ci95"]
        print(f"report {m}: {baseline} {r[f'{baseline}_pass@1']:.4f} -> {candidate} "
              f"{r[f'{candidate}_pass@1']:.4f} (delta {r['delta']:+.4f}, 95% [{ci['lo']:+.4f}, {ci['hi']:+.4f}]; "
              f"+{r['improved']} -{r['regressed']} problems, {r['test']} p={r['p_value']:.4g})")


def compare_files(baseline_path: str, candidate_path: str, modes: Sequence[str] | None = None, *,
                  permutations: int = 10000, seed: int = 0) -> dict[str, Any]:
    """The report's paired comparison of two results.jsonl files (eval_multipl_e's, eval_dev's, or
    the per-problem verdicts committed under benchmarks/), outside the pipeline: nothing is
    written or logged. Modes default to those both files score."""
    from ..jsonl import read_jsonl

    base, cand = read_jsonl(Path(baseline_path)), read_jsonl(Path(candidate_path))
    if not base or not cand:
        raise EvaluationInputError(f"{baseline_path if not base else candidate_path}: no records")
    if modes is None:
        modes = [m for m in base[0]["results"] if m in cand[0]["results"]]
    report = compare(base, cand, modes, baseline="baseline", candidate="candidate",
                     permutations=permutations, seed=seed)
    _print_sections([(m, report[m]) for m in modes], "baseline", "candidate")
    return report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="compare two eval_multipl_e targets, paired over problems (stage report)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--files", nargs=2, metavar=("BASELINE", "CANDIDATE"),
                   help="compare two results.jsonl files instead (no params read, nothing written)")
    p.add_argument("--modes", nargs="+", help="with --files: the modes to compare (default: those both score)")
    p.set_defaults(func=lambda a: compare_files(*a.files, a.modes) if a.files else run(a.params))
