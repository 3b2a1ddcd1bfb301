"""Stage report: the paired statistics (stats.py), compare() on hand-built eval records, the
per-problem CSV, and run() end to end against a sqlite MLflow store. No models, no sandbox."""

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from safurai_csharp.evaluation import EvaluationInputError, summarise
from safurai_csharp.stages import report
from safurai_csharp.stats import binomial_two_sided, mcnemar_exact, sign_flip_test

ROOT = Path(__file__).resolve().parents[2]
MODES = ["official", "corrected"]


def rec(name: str, passed: dict[str, list[bool]], compile_errors: int = 0) -> dict:
    """One results.jsonl record as eval_multipl_e writes it; passed[mode] per completion."""
    n = len(next(iter(passed.values())))
    results = {}
    for mode, flags in passed.items():
        statuses = ["compile_error" if i < compile_errors else ("pass" if ok else "assertion_failed")
                    for i, ok in enumerate(flags)]
        results[mode] = [{"status": s, "passed": ok} for s, ok in zip(statuses, flags, strict=True)]
    return {"name": name, "completions": ["..."] * n, "results": results}


def greedy(solved: set[int], problems: int = 10, *, official: set[int] | None = None) -> list[dict]:
    official = solved if official is None else official
    return [rec(f"HumanEval_{i}", {"official": [i in official], "corrected": [i in solved]}) for i in range(problems)]


# --- stats.py --------------------------------------------------------------------------------

@pytest.mark.parametrize("improved,regressed,expected", [
    (0, 0, 1.0),              # no discordant problem: no evidence either way
    (10, 0, 2 / 1024),        # 2 * 0.5^10
    (0, 10, 2 / 1024),        # two-sided: symmetric
    (5, 5, 1.0),
    (1, 0, 1.0),
    (7, 2, 2 * (1 + 9 + 36) / 512),
])
def test_mcnemar_exact_known_values(improved, regressed, expected):
    assert mcnemar_exact(improved, regressed) == pytest.approx(expected, rel=1e-12)


def test_binomial_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for n in (1, 2, 5, 13, 40, 158):
        for k in range(n + 1):
            assert binomial_two_sided(k, n) == pytest.approx(stats.binomtest(k, n, 0.5).pvalue, rel=1e-9, abs=1e-300)


def test_binomial_rejects_bad_counts():
    with pytest.raises(ValueError):
        binomial_two_sided(5, 3)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_sign_flip_exact_enumeration_equals_mcnemar_for_greedy_differences():
    diffs = [1.0] * 7 + [-1.0] * 2 + [0.0] * 50   # the zeros cannot change the statistic
    assert sign_flip_test(diffs, permutations=1000) == pytest.approx(mcnemar_exact(7, 2), rel=1e-12)
    assert sign_flip_test([0.0, 0.0]) == 1.0


def test_sign_flip_monte_carlo_path():
    shift = [0.25] * 30 + [-0.25] * 5 + [0.5] * 5           # 40 nonzero: 2^40 patterns, sampled
    p = sign_flip_test(shift, permutations=2000, seed=3)
    assert 1 / 2001 <= p < 0.01                              # a clear improvement; never 0
    assert sign_flip_test(shift, permutations=2000, seed=3) == p  # seeded: reproducible
    balanced = [0.25, -0.25] * 20
    assert sign_flip_test(balanced, permutations=2000, seed=3) > 0.9


# --- compare -------------------------------------------------------------------------------

def test_compare_greedy_uses_exact_mcnemar():
    base = greedy({0, 1, 2})
    cand = greedy({0, 1, 3, 4, 5, 6, 7, 8, 9})                  # 7 improved, 1 regressed (2)
    out = report.compare(base, cand, MODES)
    c = out["corrected"]
    assert out["problems"] == 10 and out["n"] == {"base": 1, "merged": 1}
    assert c["base_pass@1"] == pytest.approx(0.3) and c["merged_pass@1"] == pytest.approx(0.9)
    assert c["delta"] == pytest.approx(0.6)
    assert (c["improved"], c["regressed"], c["unchanged"]) == (7, 1, 2)
    assert c["test"] == "mcnemar_exact" and c["p_value"] == pytest.approx(mcnemar_exact(7, 1))
    lo, hi = c["delta_ci95"]["lo"], c["delta_ci95"]["hi"]
    assert lo <= 0.6 <= hi and -1 <= lo and hi <= 1
    for target in ("base", "merged"):
        lo, hi = c[f"{target}_pass@1_ci95"].values()
        assert lo <= c[f"{target}_pass@1"] <= hi
    assert c["base_compile_rate"] == 1.0

    def leaves(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from leaves(v)
        else:
            yield value
    # `dvc exp show` / `dvc metrics show` make a column of every scalar leaf, and drop lists
    assert all(isinstance(v, (int, float, str)) for v in leaves(out))


def test_compare_no_difference_gives_p_one():
    base = greedy({0, 1, 2})
    out = report.compare(base, greedy({0, 1, 2}), MODES)
    assert out["corrected"]["p_value"] == 1.0 and out["corrected"]["delta"] == 0.0
    assert out["corrected"]["delta_ci95"] == {"lo": 0.0, "hi": 0.0}


def test_compare_ten_improved_none_regressed():
    out = report.compare(greedy(set(), 12), greedy(set(range(10)), 12), ["corrected"])
    assert out["corrected"]["p_value"] == pytest.approx(2 / 1024)
    assert (out["corrected"]["improved"], out["corrected"]["regressed"]) == (10, 0)
    assert "official" not in out


def test_compare_per_target_interval_is_the_eval_stages():
    """Default bootstrap (2000 resamples, seed 0) = the interval metrics/eval/<target>.json holds."""
    base = greedy({i for i in range(40) if i % 3 == 0}, 40)
    results = [r["results"]["corrected"] for r in base]
    out = report.compare(base, greedy(set(range(20)), 40), MODES)
    assert list(out["corrected"]["base_pass@1_ci95"].values()) == summarise(results, "corrected")["pass@1_ci95"]
    assert out["corrected"]["base_pass@1"] == summarise(results, "corrected")["pass@1"]


def test_compare_sampled_uses_the_permutation_test():
    n = 4
    base = [rec(f"P{i}", {"corrected": [j < (i % 3) for j in range(n)]}) for i in range(30)]
    cand = [rec(f"P{i}", {"corrected": [j < (i % 3) + 1 for j in range(n)]}, compile_errors=1 if i < 6 else 0)
            for i in range(30)]
    out = report.compare(base, cand, ["corrected"], permutations=500, seed=5)
    c = out["corrected"]
    assert out["n"] == {"base": 4, "merged": 4}
    assert c["test"] == "sign_flip_permutation"
    assert c["delta"] == pytest.approx(0.25) and (c["improved"], c["regressed"]) == (30, 0)
    assert c["p_value"] == pytest.approx(sign_flip_test([0.25] * 30, 500, 5))
    assert c["p_value"] == pytest.approx(1 / 501)  # no random flip reaches an all-positive sum
    assert c["merged_compile_rate"] == pytest.approx(1 - 6 / 120)
    # n = 1 against n = 4 is no longer McNemar's 2x2 table
    greedy_base = [rec(f"P{i}", {"corrected": [i % 2 == 0]}) for i in range(30)]
    assert report.compare(greedy_base, cand, ["corrected"], permutations=500)["corrected"]["test"] == \
        "sign_flip_permutation"


def test_target_names_are_the_keys():
    out = report.compare(greedy({0}), greedy({0, 1}), ["corrected"], baseline="v1", candidate="v2")
    assert {"v1_pass@1", "v2_pass@1", "v1_compile_rate", "v2_pass@1_ci95"} <= set(out["corrected"])
    assert out["baseline"] == "v1" and out["candidate"] == "v2"


def test_problems_are_matched_by_name_not_position():
    base = greedy({0, 1})
    cand = list(reversed(greedy({0, 1})))
    out = report.compare(base, cand, MODES)
    assert out["corrected"]["improved"] == out["corrected"]["regressed"] == 0


def test_mismatched_problem_sets_are_a_plain_error():
    base = greedy({0}, 10)
    cand = greedy({0}, 12)[2:]   # HumanEval_0/1 missing, 10/11 extra
    with pytest.raises(EvaluationInputError, match="evaluated on different problems") as exc:
        report.compare(base, cand, MODES)
    msg = str(exc.value)
    assert "2 only in base (e.g. HumanEval_0, HumanEval_1)" in msg
    assert "2 only in merged (e.g. HumanEval_10, HumanEval_11)" in msg


def test_bad_records_are_plain_errors():
    base = greedy({0})
    with pytest.raises(EvaluationInputError, match="appears twice"):
        report.compare(base + base[:1], greedy({0}), MODES)
    no_official = [rec(r["name"], {"corrected": [True]}) for r in greedy({0})]
    with pytest.raises(EvaluationInputError, match="no scored completions for mode 'official'"):
        report.compare(base, no_official, MODES)


# --- per-problem plot ------------------------------------------------------------------------

def test_per_problem_csv():
    base = greedy({0, 2}, 3, official={0})
    cand = [rec("HumanEval_2", {"official": [True, True], "corrected": [True, True]}),
            rec("HumanEval_0", {"official": [False, False], "corrected": [True, False]}),
            rec("HumanEval_1", {"official": [False, True], "corrected": [True, True]})]
    rows = report.per_problem_rows(base, cand, ["corrected", "official"])
    text = report.to_csv(rows)
    assert text.splitlines() == [
        "problem,base_corrected,merged_corrected,base_official,merged_official",
        "HumanEval_0,1.0,0.5,1.0,0.0",     # benchmark order (the baseline's), matched by name
        "HumanEval_1,0.0,1.0,0.0,0.5",
        "HumanEval_2,1.0,1.0,0.0,1.0",
    ]
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [r["problem"] for r in parsed] == ["HumanEval_0", "HumanEval_1", "HumanEval_2"]


# --- run() end to end ------------------------------------------------------------------------

def write_project(proj: Path, base: list[dict], cand: list[dict], **report_cfg) -> None:
    params = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    params["report"].update(report_cfg)
    params["mlflow"]["tracking_uri"] = f"sqlite:///{proj / 'mlflow.db'}"
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for target, records in (("base", base), ("merged", cand)):
        out = proj / "data/eval" / target / "results.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r) + "\n" for r in records))
        metrics = {"problems": len(records), "n": 1,
                   **{m: summarise([r["results"][m] for r in records], m) for m in MODES}}
        path = proj / "metrics/eval" / f"{target}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics))


@pytest.fixture()
def proj(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_writes_report_plot_and_mlflow_run(proj, capsys):
    from mlflow import MlflowClient

    base = greedy({0, 1, 2, 3}, 16, official={0, 1})
    cand = greedy({0, 1, 3, 5, 6, 7, 8, 9, 10, 11}, 16, official={0, 1, 5})
    write_project(proj, base, cand)
    out = report.run()
    saved = json.loads((proj / "metrics/report.json").read_text())
    assert saved == json.loads(json.dumps(out))
    c = saved["corrected"]
    assert (c["improved"], c["regressed"]) == (7, 1)
    assert c["p_value"] == pytest.approx(mcnemar_exact(7, 1)) and c["test"] == "mcnemar_exact"
    assert c["merged_pass@1"] == pytest.approx(10 / 16) and c["delta"] == pytest.approx(6 / 16)
    assert saved["official"]["improved"] == 1 and saved["official"]["regressed"] == 0
    lines = (proj / "metrics/eval/per_problem.csv").read_text().splitlines()
    assert lines[0] == "problem,base_official,merged_official,base_corrected,merged_corrected"
    assert lines[1:3] == ["HumanEval_0,1.0,1.0,1.0,1.0", "HumanEval_1,1.0,1.0,1.0,1.0"]
    assert lines[3] == "HumanEval_2,0.0,0.0,1.0,0.0" and len(lines) == 17
    assert "report corrected: base 0.2500 -> merged 0.6250" in capsys.readouterr().out

    client = MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("safurai-csharp-tiny")
    (run,) = client.search_runs([exp.experiment_id], "tags.`dvc.stage` = 'report'")
    m = run.data.metrics
    assert m["corrected.merged_pass_at_1"] == pytest.approx(10 / 16)
    assert m["corrected.p_value"] == pytest.approx(c["p_value"])
    assert m["corrected.delta_ci95.lo"] == pytest.approx(c["delta_ci95"]["lo"])
    assert m["official.merged_pass_at_1_ci95.hi"] == pytest.approx(saved["official"]["merged_pass@1_ci95"]["hi"])
    assert m["official.improved"] == 1
    assert run.data.params["report.baseline"] == "base" and run.data.tags["report.corrected.test"] == "mcnemar_exact"
    tags = run.data.tags
    for key in ("input.base_results.sha256", "input.merged_metrics.sha256",
                "output.report.sha256", "output.per_problem.sha256"):
        assert len(tags[key]) == 64, key


def test_run_refuses_results_and_metrics_of_different_runs(proj):
    write_project(proj, greedy({0, 1}), greedy({0, 1, 2}))
    metrics = proj / "metrics/eval/merged.json"
    stale = json.loads(metrics.read_text())
    stale["corrected"]["pass@1"] = 0.9
    metrics.write_text(json.dumps(stale))
    with pytest.raises(EvaluationInputError, match="come from different runs; rerun eval_multipl_e@merged"):
        report.run()
    assert not (proj / "metrics/report.json").exists()


def test_cli_errors_are_one_plain_line(proj, capsys):
    from safurai_csharp.cli import main

    write_project(proj, greedy({0}, 4), greedy({0}, 5))
    assert main(["report"]) == 2
    err = capsys.readouterr().err
    assert "safurai-csharp report: error:" in err and "evaluated on different problems" in err
    (proj / "data/eval/merged/results.jsonl").unlink()
    assert main(["report"]) == 2
    assert "run `safurai-csharp eval-multipl-e --target merged` first" in capsys.readouterr().err


def test_cli_compares_two_results_files_without_params(tmp_path, monkeypatch, capsys):
    """`report --files`: the committed verdict files (benchmarks/*.jsonl: name + results, no
    completions) compared outside the pipeline; no params.yaml, nothing written."""
    from safurai_csharp.cli import main

    monkeypatch.chdir(tmp_path)
    base = [{"name": r["name"], "results": r["results"]} for r in greedy(set(range(3)), 20)]
    cand = greedy(set(range(12)), 20)
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in base))
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in cand))
    assert main(["report", "--files", "b.jsonl", "c.jsonl"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["report official", "report corrected"]
    assert "+9 -0 problems, mcnemar_exact p=0.003906" in out[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.jsonl", "c.jsonl"]
    assert main(["report", "--files", "b.jsonl", "c.jsonl", "--modes", "corrected"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["report", "--files", "b.jsonl", "c.jsonl", "--modes", "strict"]) == 2
    assert "no scored completions for mode 'strict'" in capsys.readouterr().err
    (tmp_path / "e.jsonl").write_text("")
    assert main(["report", "--files", "e.jsonl", "c.jsonl"]) == 2
    assert "e.jsonl: no records" in capsys.readouterr().err


def test_readme_files_command_reproduces_the_documented_distillation_result(monkeypatch, capsys):
    """The README's `report --files` line, as written, on the committed verdicts: the numbers
    docs/results.md reports for the 1.5B -> 0.5B distillation (46.2% -> 39.1% corrected)."""
    from safurai_csharp.cli import main

    command = ("safurai-csharp report --files benchmarks/results_qwen05_base_n10.jsonl "
               "benchmarks/results_qwen05_distill15_n10.jsonl")
    assert command in (ROOT / "README.md").read_text()
    monkeypatch.chdir(ROOT)
    assert main(command.split()[1:]) == 0
    corrected = capsys.readouterr().out.splitlines()[1]
    assert corrected.startswith("report corrected: baseline 0.4620 -> candidate 0.3911")
    assert "+15 -46 problems" in corrected


def test_report_stage_in_dvc_yaml_reads_both_targets():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]
    assert stage["cmd"] == "safurai-csharp report"
    for role in ("baseline", "candidate"):
        assert f"${{eval_multipl_e.out_dir}}/${{report.{role}}}/results.jsonl" in stage["deps"]
        assert f"${{eval_multipl_e.metrics_dir}}/${{report.{role}}}.json" in stage["deps"]
    assert "report" in stage["params"] and "eval_multipl_e.modes" in stage["params"]
    # the CSV is drawn by the top-level plots with the repo's template (x: problem names)
    plots = {k: v for entry in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"] for k, v in entry.items()}
    for mode in MODES:
        plot = plots[f"per_problem_{mode}"]
        assert plot["x"] == "problem" and plot["template"] == "per_problem_bars"
        assert plot["y"] == {"${report.per_problem_plot}": [f"${{report.baseline}}_{mode}",
                                                            f"${{report.candidate}}_{mode}"]}
    # DVC's x (the problem names) runs down the page, the pass rates across: 158 problems fit
    # the page's height, not its width
    template = json.loads((ROOT / ".dvc/plots/per_problem_bars.json").read_text())
    enc = template["encoding"]
    assert enc["y"] == {**enc["y"], "field": "<DVC_METRIC_X>", "type": "nominal"}
    assert enc["x"] == {**enc["x"], "field": "<DVC_METRIC_Y>", "type": "quantitative"}


def test_run_compares_the_dev_set_too(proj, capsys):
    write_project(proj, greedy({0, 1}, 8), greedy({0, 1, 2}, 8))
    assert report.run()["dev"] == {"problems": 0}  # no dev results yet
    for target, solved in (("base", {0}), ("merged", {0, 1, 2, 3})):
        out = proj / "data/eval_dev" / target / "results.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"name": f"dev_{i}", "completions": ["x"],
                 "results": {"official": [{"status": "pass" if i in solved else "assertion_failed",
                                           "passed": i in solved}]}} for i in range(6)]
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dev = report.run()["dev"]
    assert dev["problems"] == 6 and set(dev) >= {"official"} and "corrected" not in dev  # eval_dev.modes
    assert (dev["official"]["improved"], dev["official"]["regressed"]) == (3, 0)
    assert dev["official"]["delta"] == pytest.approx(3 / 6)
    assert "report dev official: base 0.1667 -> merged 0.6667" in capsys.readouterr().out
