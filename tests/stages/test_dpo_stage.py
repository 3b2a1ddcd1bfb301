"""Stage dpo through the real CLI with a tiny model: off, it publishes sft_qlora's adapter
unchanged (plus its own record) and still writes and counts the pairs; on, it trains that
adapter on the pairs of the student's own samples and records the steps and the pairs' hash in
the training record merge reads; one MLflow run either way."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROMPT = "class Problem {{\n    // Add {i} to x.\n    public static long F{i}(long x) {{\n"


def example(i: int) -> dict:
    return {"id": f"e{i}", "instruction": f"Add {i} to x.", "solution": "", "topic": "t",
            "task": {"name": f"e{i}", "prompt": PROMPT.format(i=i), "tests": "", "stop_tokens": ["\n    }\n"],
                     "completion": f"\n        return x + {i};"}}


def verdicts(i: int) -> list[dict]:
    answers = [(f"\n        return x + {i};", True), (f"\n        return {i} + x;", True),
               (f"\n        return x - {i};", False), ("\n        return x;", False), ("\n        return 0;", False)]
    return [{"task_id": f"e{i}", "name": f"e{i}", "sample": j, "completion": c, "passed": ok}
            for j, (c, ok) in enumerate(answers)]


def project(tmp: Path, **dpo) -> Path:
    from safurai_csharp.config import parse_params
    from safurai_csharp.jsonl import write_jsonl
    from safurai_csharp.synth.sft_format import rows as sft_rows
    from safurai_csharp.testing import make_tiny_model
    from safurai_csharp.training.trainer import train

    raw = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    raw["dpo"].update(dpo)
    tmp.mkdir(parents=True)
    make_tiny_model(tmp / "models" / "base")
    examples = [example(i) for i in range(1, 4)]
    write_jsonl(tmp / "data/tasks/train.jsonl", examples)
    write_jsonl(tmp / "data/onpolicy/verdicts.jsonl", [v for i in range(1, 4) for v in verdicts(i)])
    sft = [sft_rows(ex, ["completion"])[0] for ex in examples]
    write_jsonl(tmp / "data/sft/train.jsonl", sft)
    (tmp / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    cwd = os.getcwd()
    os.chdir(tmp)
    try:  # sft_qlora's adapter, one step (the stage's own test covers that stage)
        train(parse_params(raw).sft_qlora.model_copy(update={"max_steps": 1}), checkpoint_root=tmp / "ckpt")
    finally:
        os.chdir(cwd)
    return tmp


def cli(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([str(BIN / "safurai-csharp"), "dpo"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def the_run(proj: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("safurai-csharp-tiny").experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_off_publishes_the_sft_adapter_unchanged_and_counts_the_pairs(tmp_path):
    proj = project(tmp_path / "p")
    out = cli(proj)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    sft, dpo = proj / "models/adapter", proj / "models/adapter_dpo"
    assert {p.name for p in dpo.iterdir()} == {p.name for p in sft.iterdir()} | {"preference_record.json"}
    assert all(digest(sft / p.name) == digest(dpo / p.name) for p in sft.iterdir() if p.is_file())
    note = json.loads((dpo / "preference_record.json").read_text())
    assert note["enabled"] is False and note["steps"] == 0 and note["pairs"] == 6  # 3 tasks x max_pairs_per_task 2
    pairs = [json.loads(line) for line in (proj / "data/dpo/pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 6 and all(p["chosen_sample"] in (0, 1) and p["rejected_sample"] in (2, 3, 4) for p in pairs)
    assert note["pairs_sha256"] == digest(proj / "data/dpo/pairs.jsonl")
    metrics = json.loads((proj / "metrics/dpo.json").read_text())
    assert metrics == {"enabled": False, "tasks": 3, "tasks_all_pass": 0, "tasks_all_fail": 0,
                       "tasks_with_pairs": 3, "pairs": 6}
    run = the_run(proj)
    assert run.data.tags["dvc.stage"] == "dpo" and run.data.metrics["pairs"] == 6


def test_on_trains_the_adapter_and_records_it(tmp_path):
    proj = project(tmp_path / "p", enabled=True, learning_rate=1e-3,
                   micro_batch_size=2, gradient_accumulation_steps=1)
    out = cli(proj)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    sft, dpo = proj / "models/adapter", proj / "models/adapter_dpo"
    assert digest(sft / "adapter_model.safetensors") != digest(dpo / "adapter_model.safetensors")
    assert not (dpo / "ref").exists()
    before, after = (json.loads((d / "training_record.json").read_text()) for d in (sft, dpo))
    assert after["steps"] == before["steps"] + 3  # 6 pairs, 2 per step
    assert after["data"]["preference"] == {"sha256": digest(proj / "data/dpo/pairs.jsonl"), "rows": 6}
    assert after["data"]["train"] == before["data"]["train"] and after["base_model"] == before["base_model"]
    metrics = json.loads((proj / "metrics/dpo.json").read_text())
    assert metrics["enabled"] is True and metrics["steps"] == 3 and metrics["pairs"] == 6
    assert metrics["train_loss"] > 0 and metrics["reward_accuracy"] is not None
    run = the_run(proj)
    assert run.data.params["dpo.beta"] == "0.1" and "loss" in run.data.metrics  # ours and the Trainer's
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}").get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3]  # the loss curve, per step
    assert "dpo: 6 pairs from 3 of 3 tasks; 3 steps" in out.stdout
