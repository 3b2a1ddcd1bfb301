"""The pipeline as a user drives it: the real CLI through `dvc repro`, on a tiny model built
here and the first few benchmark problems, with MLflow logging to a local sqlite store.

The teacher is a scripted OpenAI-compatible server (tests/_scripted_teacher.py) reached through
the real `openai` engine: a tiny random model writes no valid C#, and the data, training and
merge stages need examples to chew on. The hf/vllm teacher paths are tested in
tests/stages/test_generate_stage.py and tests/engines."""

import csv
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


def sh(args, cwd, env=None, **kw):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1", **(env or {})}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, **kw)
    assert out.returncode == 0, f"{args} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def teacher_server():
    from _scripted_teacher import ScriptedTeacher

    with ScriptedTeacher() as server:
        yield server


@pytest.fixture(scope="module")
def project(tmp_path_factory, teacher_server):
    from safurai_csharp.testing import make_tiny_model

    tmp = tmp_path_factory.mktemp("e2e")
    model = make_tiny_model(tmp / "tiny-model")
    proj = tmp / "proj"
    proj.mkdir()
    shutil.copy(ROOT / "dvc.yaml", proj)
    shutil.copytree(ROOT / "src", proj / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    params = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    params["base_model"]["source"] = str(model)
    params["base_model"]["dtype"] = "float32"
    params["benchmark"]["limit"] = 3
    params["eval_multipl_e"]["max_new_tokens"] = 24
    params["generate"].update(max_new_tokens=64, num_tasks=8, chunk_size=4)
    params["evolve"]["max_new_tokens"] = 64
    params["teacher"].update(source="none", engine="openai")
    params["teacher"]["engine_options"]["openai"].update(base_url=teacher_server.base_url, served_model="scripted")
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "init", "-q"], proj)
    sh(["dvc", "init", "-q"], proj)
    shutil.copytree(ROOT / ".dvc" / "plots", proj / ".dvc" / "plots")  # dvc.yaml's custom plot templates
    sh(["dvc", "config", "plots.html_template", "plots/offline.html"], proj)  # as the repo's .dvc/config
    start = time.perf_counter()
    sh(["dvc", "repro"], proj)
    return proj, time.perf_counter() - start


def test_repro_builds_every_output(project):
    proj, _ = project
    record = json.loads((proj / "models/base/source.json").read_text())
    assert record["kind"] == "local" and record["parameters"] > 0
    problems = [json.loads(line) for line in (proj / "data/benchmark/humaneval-cs.jsonl").read_text().splitlines()]
    assert len(problems) == 3 and all({"name", "prompt", "tests", "stop_tokens"} <= set(p) for p in problems)
    metrics = json.loads((proj / "metrics/eval/base.json").read_text())
    for mode in ("official", "corrected"):
        assert metrics[mode]["problems"] == 3 and metrics[mode]["programs"] == 3
        assert 0.0 <= metrics[mode]["pass@1"] <= 1.0
        assert sum(metrics[mode]["status"].values()) == 3
    results = [json.loads(line) for line in (proj / "data/eval/base/results.jsonl").read_text().splitlines()]
    assert [r["name"] for r in results] == [p["name"] for p in problems]
    assert all(len(r["completions"]) == 1 and set(r["results"]) == {"official", "corrected"} for r in results)


def test_data_stages_write_records_funnel_and_training_set(project):
    proj, _ = project
    generated = [json.loads(line) for line in (proj / "data/generated/examples.jsonl").read_text().splitlines()]
    assert [g["index"] for g in generated] == list(range(8)) and all(g["parse_error"] is None for g in generated)
    assert all(g["teacher"] == "openai:scripted" for g in generated)
    assert json.loads((proj / "models/teacher/teacher.json").read_text())["kind"] == "remote"
    funnel = json.loads((proj / "metrics/filter.json").read_text())["funnel"]
    steps = ["input", "parse", "execution", "dedup", "decontam", "heuristics", "keep"]
    assert set(funnel) == set(steps)
    assert funnel["input"] == 8 and funnel["execution"] == 8 and funnel["keep"] >= 4
    plot = json.loads((proj / "metrics/filter_funnel.json").read_text())  # ordered: the DVC bar plot
    assert [p["step"] for p in plot] == [f"{i} {s}" for i, s in enumerate(steps)]
    assert [p["examples"] for p in plot] == [funnel[s] for s in steps]
    assert all(a >= b for a, b in zip([p["examples"] for p in plot], [p["examples"] for p in plot][1:]))
    for k in (1, 2, 3):
        rnd = json.loads((proj / f"metrics/evolve/round{k}.json").read_text())
        assert rnd["round"] == k and rnd["pool"] == rnd["evolved"] + rnd["carried"] and rnd["evolved"] > 0
    split = json.loads((proj / "metrics/split.json").read_text())
    assert split["examples"] > funnel["keep"] and split["rendered"] == split["examples"]  # one-method classes
    assert split["train"] + split["validation"] + split["dev"] == split["examples"] and split["dev"] > 0
    dev = [json.loads(line) for line in (proj / "data/tasks/dev.jsonl").read_text().splitlines()]
    assert len(dev) == split["dev"] and all(p["name"] == f"dev_{p['source_id']}" for p in dev)
    dev_eval = json.loads((proj / "metrics/eval_dev/base.json").read_text())
    assert dev_eval["official"]["problems"] == split["dev"] and dev_eval["protocol"] == "completion"
    onpolicy = json.loads((proj / "metrics/self_sample.json").read_text())
    assert onpolicy["tasks"] == split["train"] and onpolicy["samples"] == 2 * split["train"]  # k: 2
    sft = json.loads((proj / "metrics/sft_data.json").read_text())
    assert sft["train_tasks"] == split["train"] and sft["validation"] == 3 * split["validation"]
    assert sft["rows"]["teacher_completion"] == sft["rows"]["teacher_chat"] == split["train"]
    assert sft["rows"]["student_completion"] == onpolicy["kept"]
    rows = [json.loads(line) for line in (proj / "data/sft/train.jsonl").read_text().splitlines()]
    assert {r["format"] for r in rows} == {"completion", "chat", "alpaca"} and len(rows) == sft["train"]


def test_every_stage_logged_to_mlflow_with_lineage(project):
    import mlflow

    proj, _ = project
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("safurai-csharp-tiny")
    runs = client.search_runs([exp.experiment_id])
    by_stage = {r.data.tags["dvc.stage"]: r for r in runs}
    stages = [line.split()[0] for line in sh(["dvc", "stage", "list"], proj).stdout.splitlines() if line.strip()]
    assert {"generate", "filter", "evolve@3", "split", "self_sample", "sft_data", "eval_multipl_e@base",
            "eval_dev@merged"} <= set(stages)
    assert set(by_stage) == set(stages)  # one MLflow run per DVC stage
    assert "funnel.parse" in by_stage["filter"].data.metrics
    assert by_stage["generate"].data.params["generate.num_tasks"] == "8"
    # live metrics: one step per chunk of 4 tasks while generate ran
    steps = [(m.step, m.value) for m in client.get_metric_history(by_stage["generate"].info.run_id, "live.tasks_done")]
    assert steps == [(4, 4.0), (8, 8.0)], steps
    assert "input.parents.sha256" in by_stage["evolve@2"].data.tags
    ev = by_stage["eval_multipl_e@base"]
    assert "corrected.pass_at_1" in ev.data.metrics and "official.pass_at_1" in ev.data.metrics
    assert ev.data.params["eval_multipl_e.max_new_tokens"] == "24"
    assert "input.model.sha256" in ev.data.tags and "input.benchmark.sha256" in ev.data.tags
    # MLflow's own dataset tracking (the runs list's Dataset column): the data read and written
    filt = client.get_run(by_stage["filter"].info.run_id).inputs.dataset_inputs
    contexts = {(d.dataset.name, next(t.value for t in d.tags if t.key == "mlflow.data.context")) for d in filt}
    assert {("generated", "input"), ("filtered", "output")} <= contexts, contexts
    assert by_stage["filter"].data.tags["output.filtered.sha256"].startswith(
        next(d.dataset.digest for d in filt if d.dataset.name == "filtered"))


def test_registered_version_leads_to_the_runs_that_made_and_scored_it(project):
    proj, _ = project
    lin = json.loads(sh(["safurai-csharp", "lineage", "--alias", "candidate", "--json"], proj).stdout)

    def stages(node):
        yield node["stage"]
        for child in node["inputs"]:
            yield from stages(child)

    made = set(stages(lin["made_by"]))
    # not self_sample: the tiny random student passes no sample, and an empty file's hash names
    # no producer uniquely (lineage links by content)
    assert {"merge", "dpo", "sft_qlora", "sft_data", "split", "filter", "evolve@1", "evolve@2", "evolve@3",
            "generate", "prepare_teacher", "prepare_base", "benchmark"} <= made, made
    scored = {n["stage"]: {u["stage"] for u in n["used_by"]} for n in lin["scored_by"]}
    assert scored == {"eval_multipl_e@merged": {"promote", "report"}, "eval_dev@merged": {"promote", "report"}}
    text = sh(["safurai-csharp", "lineage", "--alias", "candidate"], proj).stdout
    assert "adapter <- dpo" in text and "adapter <- sft_qlora" in text and "read by promote" in text
    import mlflow  # the registry page: what the version scored on the test and dev sets, then its card

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    card = client.get_model_version_by_alias("safurai-csharp-tiny", "candidate").description
    assert card.startswith("## Scores") and "`eval_multipl_e@merged`" in card and "`eval_dev@merged`" in card


def test_plots_render_loss_funnel_and_per_problem(project):
    proj, _ = project
    plots = json.loads(sh(["dvc", "plots", "show", "--json"], proj).stdout)["data"]
    assert {"metrics/train_loss.json", "metrics/filter_funnel.json", "per_problem_corrected",
            "per_problem_official"} <= set(plots), sorted(plots)
    for name in ("metrics/train_loss.json", "metrics/filter_funnel.json", "per_problem_corrected"):
        (plot,) = plots[name]
        assert plot["type"] == "vega" and plot["content"]["data"]["values"], name
    bars = plots["per_problem_corrected"][0]["content"]["data"]["values"]
    assert len({row["problem"] for row in bars}) == 3  # every benchmark problem of the tiny run


def test_results_page_and_dvc_plots_render_offline_with_the_runs_numbers(project, tmp_path):
    from _browser import render

    proj, _ = project
    report = json.loads((proj / "metrics/report.json").read_text())
    plots = json.loads(sh(["dvc", "plots", "show", "--json"], proj).stdout)["data"]
    out = tmp_path / "page.html"
    sh(["safurai-csharp", "results-page", "-o", str(out)], proj)
    page = render(out)
    assert page.errors == []
    assert f'data-rendered="{sum(map(len, plots.values()))}"' in page.dom
    shown = {k: float(v) for k, v in re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', page.dom)}
    for mode in ("corrected", "official"):
        for key in ("base_pass@1", "merged_pass@1", "delta", "p_value"):
            assert shown[f"{mode}.{key}"] == report[mode][key], (mode, key)
    sh(["dvc", "plots", "show", "-o", str(tmp_path / "dvc_plots")], proj)
    dvc_page = render(tmp_path / "dvc_plots" / "index.html")
    assert dvc_page.errors == [] and dvc_page.count(r'class="marks"') == sum(map(len, plots.values()))


def test_second_repro_is_a_fast_no_op(project):
    proj, _ = project
    start = time.perf_counter()
    out = sh(["dvc", "repro"], proj)
    assert "up to date" in out.stdout.lower(), out.stdout
    assert time.perf_counter() - start < 20


def test_noop_benchmark_script_runs_on_an_up_to_date_project(project):
    """benchmarks/bench_noop_repro.py (run by hand on the real project) works: JSON out, no stage run.
    Its numbers are not asserted: speed targets live in benchmarks, not in timed tests."""
    proj, _ = project
    out = sh([sys.executable, str(ROOT / "benchmarks" / "bench_noop_repro.py"), "--project", str(proj), "--runs", "1"], ROOT)
    report = json.loads(out.stdout)
    stages = sh(["dvc", "stage", "list", "--name-only"], proj).stdout.split()
    assert report["stages"] == len(stages) and report["project"] == str(proj.resolve())
    assert len(report["status_s"]["runs"]) == len(report["repro_noop_s"]["runs"]) == 1
    assert report["repro_noop_s"]["median"] > 0


# Reproducibility contracts. Each test works on its own copy of the built project (DVC cache,
# git repo, MLflow store and all), so the shared project stays as built for every other test.

# Every stage a change of an eval param or of a training knob must leave alone (the stages these
# tests tolerate running, their dependants, come from `dvc dag` instead: a new stage downstream
# of eval, such as a report, needs no edit here).
DATA_STAGES = ["prepare_base", "benchmark", "prepare_teacher", "generate", "filter",
               "evolve@1", "evolve@2", "evolve@3", "split", "self_sample", "sft_data"]
UPSTREAM_OF_EVAL = DATA_STAGES + ["sft_qlora", "dpo", "merge"]


def clone(project, dst):
    proj, _ = project
    shutil.copytree(proj, dst, symlinks=True)
    db = dst / "mlflow.db"
    if db.exists():  # MLflow stored the original's absolute artifact root: the copy writes into the copy
        con = sqlite3.connect(db)
        with con:
            con.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)",
                        (str(proj), str(dst)))
        con.close()
    return dst


def ran_stages(out):
    return set(re.findall(r"^Running stage '([^']+)'", out.stdout + out.stderr, re.M))


def downstream(proj, roots):
    """Stages that depend, directly or not, on an out of one of `roots`: from `dvc dag --dot`."""
    edges = re.findall(r'^"([^"]+)" -> "([^"]+)";$', sh(["dvc", "dag", "--dot"], proj).stdout, re.M)
    found, todo = set(), list(roots)
    while todo:
        stage = todo.pop()
        for src, dst in edges:
            if src == stage and dst not in found:
                found.add(dst)
                todo.append(dst)
    assert "dpo" in [dst for src, dst in edges if src == "sft_qlora"], edges  # edges point downstream
    return found


def dvc_status(proj, env=None):
    return json.loads(sh(["dvc", "status", "--json"], proj, env=env).stdout)


def file_hashes(paths):
    files = [f for p in paths for f in (sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_push_and_pull_through_the_committed_default_remote(project, tmp_path):
    """The repository's .dvc/config works as committed: its default remote is a folder under ~
    (HOME points into tmp_path here). push sends every cached out and no metric (those live in
    git); after deleting the cache and every out, pull alone restores byte-identical files."""
    from dvc.repo import Repo

    proj = clone(project, tmp_path / "proj")
    shutil.copy(ROOT / ".dvc" / "config", proj / ".dvc" / "config")
    (tmp_path / "home").mkdir()
    home = {"HOME": str(tmp_path / "home")}
    with Repo(str(proj)) as repo:
        outs = [(Path(o.fs_path), o.use_cache, o.hash_info.value) for o in repo.index.outs]
    cached = [path for path, use_cache, _ in outs if use_cache]
    assert proj / "models" / "adapter" in cached and (proj / "models" / "adapter").is_dir()
    before = file_hashes(cached)

    sh(["dvc", "push"], proj, env=home)
    name = sh(["dvc", "remote", "default"], proj, env=home).stdout.strip()
    config = dict(line.split("=", 1) for line in sh(["dvc", "config", "--list"], proj, env=home).stdout.splitlines())
    url = config[f"remote.{name}.url"]  # as DVC resolved it (`dvc remote list` wraps long lines)
    remote = Path(url)
    assert remote.is_relative_to(tmp_path / "home") and not remote.is_relative_to(proj), url
    for path, use_cache, md5 in outs:  # DVC 3 layout: files/md5/<2 hex>/<rest>, a directory as its .dir listing
        assert (remote / "files" / "md5" / md5[:2] / md5[2:]).exists() == use_cache, path

    shutil.rmtree(proj / ".dvc" / "cache")
    for path in cached:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert "models/adapter" in json.dumps(dvc_status(proj, home))
    sh(["dvc", "pull"], proj, env=home)
    assert dvc_status(proj, home) == {}
    assert file_hashes(cached) == before


def test_an_eval_param_change_reruns_only_the_evals_and_their_dependants(project, tmp_path):
    proj = clone(project, tmp_path / "proj")
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["eval_multipl_e"]["max_new_tokens"] //= 2
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    evals = {f"eval_multipl_e@{target}" for target in params["eval_multipl_e"]["targets"]}
    # before anything runs: exactly the stages that read the param (promote compares eval setups:
    # stages/promote.eval_setup)
    assert set(dvc_status(proj)) == evals | {"promote"}

    # --dry: what DVC would run, without running it (the real rerun costs 30 s of CI; that DVC
    # reruns what it plans is DVC's own contract, and the knob experiment below runs one for real)
    ran = ran_stages(sh(["dvc", "repro", "--dry"], proj))
    assert evals <= ran <= evals | downstream(proj, evals), ran
    assert not ran & set(UPSTREAM_OF_EVAL), ran


# slow (80 s of CI's 600 s): `make test-all`; the eval-param test above checks DVC's plan in CI
@pytest.mark.slow
def test_a_training_knob_experiment_retrains_from_the_cached_data(project, tmp_path):
    """`dvc exp run -S sft_qlora.lora.r=...` reruns training and what follows it, reuses every data
    stage and the base model's eval, and `dvc exp show` puts it beside the baseline with pass@1
    of both test modes and the filter funnel."""
    proj = clone(project, tmp_path / "proj")
    (proj / ".gitignore").write_text("/mlflow.db\n/mlruns/\n/.cache/\n")
    sh(["git", "config", "user.email", "e2e@localhost"], proj)
    sh(["git", "config", "user.name", "e2e"], proj)
    sh(["git", "add", "-A"], proj)
    sh(["git", "commit", "-qm", "baseline"], proj)  # experiments are commits on top of a baseline
    params = yaml.safe_load((proj / "params.yaml").read_text())
    old_r = params["sft_qlora"]["lora"]["r"]
    new_r = 4 if old_r != 4 else 16

    ran = ran_stages(sh(["dvc", "exp", "run", "-n", "lora-r", "-S", f"sft_qlora.lora.r={new_r}"], proj))
    assert {"sft_qlora", "merge", "eval_multipl_e@merged"} <= ran <= {"sft_qlora"} | downstream(proj, {"sft_qlora"}), ran
    assert not ran & set(DATA_STAGES + ["eval_multipl_e@base"]), ran
    assert dvc_status(proj) == {}

    rows = list(csv.DictReader(io.StringIO(sh(["dvc", "exp", "show", "--csv"], proj).stdout)))
    exp = next(row for row in rows if row["Experiment"] == "lora-r")
    baseline = next(row for row in rows if row["typ"] == "baseline" and row["rev"] != "workspace")

    def column(row, file, key):  # DVC prefixes a column with its file only where names collide
        for name in (f"{file}:{key}", key):
            if name in row:
                return row[name]
        raise AssertionError(f"dvc exp show has no column {key} of {file}: {sorted(row)}")

    assert column(exp, "params.yaml", "sft_qlora.lora.r") == str(new_r)
    assert column(baseline, "params.yaml", "sft_qlora.lora.r") == str(old_r)
    metrics_dir = params["eval_multipl_e"]["metrics_dir"]
    for target in ("base", "merged"):
        metrics = json.loads((proj / metrics_dir / f"{target}.json").read_text())  # the workspace holds the experiment
        for mode in ("official", "corrected"):
            assert float(column(exp, f"{metrics_dir}/{target}.json", f"{mode}.pass@1")) == metrics[mode]["pass@1"]
    funnel = json.loads((proj / params["filter"]["metrics"]).read_text())["funnel"]
    for step, count in funnel.items():
        assert int(column(exp, params["filter"]["metrics"], f"funnel.{step}")) == count
        assert int(column(baseline, params["filter"]["metrics"], f"funnel.{step}")) == count


# The README as a new user runs it (issue #12): after the two set-up commands, its quick-start
# block activates .venv, and then its command blocks work as written. Here: every command of
# the README's bash blocks that is cheap on the built tiny project, run by bash in a copy of
# it, after `source <venv>/bin/activate` and with the venv NOT on PATH otherwise. The expensive
# ones (`make`, `dvc exp run`, `dvc repro` after a profile copy) are exercised by the tests
# above; placeholders (`<name>`, FILE, my_model.jsonl) cannot run as written.
README_CHEAP = [
    "dvc exp show --only-changed",
    "dvc plots show",
    "safurai-csharp results-page",
    "safurai-csharp power",
    "safurai-csharp lineage",
    "safurai-csharp lineage --alias candidate --json",
]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_readme_activates_the_venv_right_after_set_up():
    commands = readme_commands()
    assert commands[:3] == ["make repro", "make test", "source .venv/bin/activate"], commands[:3]
    assert set(README_CHEAP) <= set(commands), sorted(set(README_CHEAP) - set(commands))


def test_readme_commands_work_as_written_after_activation(project, tmp_path):
    proj = clone(project, tmp_path / "proj")
    sh(["git", "config", "user.email", "e2e@localhost"], proj)
    sh(["git", "config", "user.name", "e2e"], proj)
    (proj / ".gitignore").write_text("/mlflow.db\n/mlruns/\n/.cache/\n")
    sh(["git", "add", "-A"], proj)
    sh(["git", "commit", "-qm", "baseline"], proj)  # dvc exp show needs a commit to show
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p).resolve() != BIN.resolve())
    env = {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("VIRTUAL_ENV", None)
    missing = subprocess.run(["bash", "-c", "command -v safurai-csharp"], cwd=proj, env=env, capture_output=True)
    assert missing.returncode != 0  # without activation the stage command is not found
    for command in README_CHEAP + ["command -v mlflow", "dvc status"]:
        out = subprocess.run(["bash", "-c", f"source {BIN / 'activate'} && {command}"], cwd=proj, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"README command {command!r} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    assert "Data and pipelines are up to date" in out.stdout or out.stdout.strip() == "", out.stdout
