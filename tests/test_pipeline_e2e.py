"""The pipeline as a user drives it: the real CLI through `dvc repro`, on a tiny model built
here and the first few benchmark problems, with MLflow logging to a local sqlite store.

The teacher is a scripted OpenAI-compatible server (tests/_scripted_teacher.py) reached through
the real `openai` engine: a tiny random model writes no valid C#, and the data, training and
merge stages need examples to chew on. The hf/vllm teacher paths are tested in
tests/stages/test_generate_stage.py and tests/engines."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


def sh(args, cwd, **kw):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
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
    params["teacher"]["engine_options"].update(base_url=teacher_server.base_url, served_model="scripted")
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "init", "-q"], proj)
    sh(["dvc", "init", "-q"], proj)
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
    sft = json.loads((proj / "metrics/sft_data.json").read_text())
    assert sft["train"] + sft["validation"] == sft["examples"] and sft["examples"] > funnel["keep"]
    assert (proj / "data/sft/train.jsonl").exists() and (proj / "data/sft/validation.jsonl").exists()


def test_every_stage_logged_to_mlflow_with_lineage(project):
    import mlflow

    proj, _ = project
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("safurai-csharp-tiny")
    runs = client.search_runs([exp.experiment_id])
    by_stage = {r.data.tags["dvc.stage"]: r for r in runs}
    stages = [line.split()[0] for line in sh(["dvc", "stage", "list"], proj).stdout.splitlines() if line.strip()]
    assert {"generate", "filter", "evolve@3", "sft_data", "eval_multipl_e@base"} <= set(stages)
    assert set(by_stage) == set(stages)  # one MLflow run per DVC stage
    assert "funnel.parse" in by_stage["filter"].data.metrics
    assert by_stage["generate"].data.params["generate.num_tasks"] == "8"
    assert "input.parents.sha256" in by_stage["evolve@2"].data.tags
    ev = by_stage["eval_multipl_e@base"]
    assert "corrected.pass_at_1" in ev.data.metrics and "official.pass_at_1" in ev.data.metrics
    assert ev.data.params["eval_multipl_e.max_new_tokens"] == "24"
    assert "input.model.sha256" in ev.data.tags and "input.benchmark.sha256" in ev.data.tags


def test_second_repro_is_a_fast_no_op(project):
    proj, _ = project
    start = time.perf_counter()
    out = sh(["dvc", "repro"], proj)
    assert "up to date" in out.stdout.lower(), out.stdout
    assert time.perf_counter() - start < 20
