"""Stage sft_qlora through the real CLI with a tiny model: a few training steps end to end
(adapter, training record, metrics, loss curve, one MLflow run holding the Trainer's per-step
metrics, our settings, lineage, system metrics and the adapter), and two CPU processes."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from _servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from safurai_csharp.testing import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("base") / "model")


def write_data(data_dir: Path, train: int, validation: int) -> None:
    from safurai_csharp.synth.sft_format import rows as sft_rows_of

    rows = [sft_rows_of({"id": f"e{i}", "tests": "Debug.Assert(true);",
                        "instruction": f"Write a C# method F{i} that returns {i} plus the sum of a list."
                                       + " Be exact." * (i % 4),
                        "solution": f"public static long F{i}(List<long> xs) {{\n    return {i} + xs.Sum();\n}}"}, ["alpaca"])[0]
            for i in range(train + validation)]
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:train]))
    (data_dir / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[train:]))


def project(tmp: Path, model: Path, **sft) -> Path:
    params = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    params["sft_qlora"].update({"model_dir": str(model), **sft})
    tmp.mkdir(parents=True, exist_ok=True)
    write_data(tmp / "data" / "sft", train=16, validation=4)
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp


def cli(cwd: Path, **env) -> subprocess.CompletedProcess:
    # one thread: a tiny model trains ~50x faster than with two on a busy 2-core machine
    full = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1", **env}
    full.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([str(BIN / "safurai-csharp"), "sft-qlora"], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=600)


def the_run(proj: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("safurai-csharp-tiny")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]  # no nested or second run
    return client, runs[0]


def test_a_few_steps_end_to_end(tmp_path, model):
    proj = project(tmp_path / "p", model)
    # MLFLOW_NESTED_RUN would make transformers open a nested run; the stage must still log into its own
    out = cli(proj, MLFLOW_NESTED_RUN="true", MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]

    adapter = proj / "models" / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "training_record.json"} <= {
        p.name for p in adapter.iterdir()}
    assert not (proj / "models" / "adapter.tmp").exists()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16 and config["lora_dropout"] == 0.05
    assert {m.rsplit(".", 1)[-1] for m in config["target_modules"]} == {  # all-linear: every linear but lm_head
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    record = json.loads((adapter / "training_record.json").read_text())
    assert record["quantization"] == {"load_in_4bit": True, "quant_type": "nf4", "double_quant": True, "blocksize": 64,
                                      "dtype": "bfloat16", "compute_dtype": "bfloat16", "quant_storage": "uint8"}
    train_sha = hashlib.sha256((proj / "data/sft/train.jsonl").read_bytes()).hexdigest()
    assert record["data"]["train"] == {"sha256": train_sha, "rows": 16} and record["steps"] == 3

    metrics = json.loads((proj / "metrics/train.json").read_text())
    assert metrics["steps"] == 3 and metrics["train_rows"] == 16 and metrics["validation_rows"] == 4
    assert metrics["joint_tokenized_rows"] == 0
    assert metrics["tokens_per_s"] > 0 and metrics["peak_rss_mb"] > 0 and metrics["seconds"] > 0
    assert metrics["train_loss"] > 0 and metrics["eval_loss"] > 0
    curve = json.loads((proj / "metrics/train_loss.json").read_text())
    assert [p["step"] for p in curve] == [1, 2, 3] and all(p["loss"] > 0 for p in curve)
    assert not any((proj / ".cache/checkpoints/sft_qlora").iterdir())  # done: nothing left to resume

    client, run = the_run(proj)
    params, tags = run.data.params, run.data.tags
    assert params["sft_qlora.lora.r"] == "8" and params["sft_qlora.quantization.quant_type"] == "nf4"  # ours
    assert params["peft.r"] == "8" and params["bnb.double_quant"] == "True"
    assert params["per_device_train_batch_size"] == "2" and params["lr_scheduler_type"] == "cosine"  # the Trainer's
    assert tags["dvc.stage"] == "sft_qlora" and tags["input.train.sha256"] == train_sha
    assert tags["input.base_model.sha256"] == record["base_model"]["sha256"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3]  # per step, same run
    assert client.get_metric_history(run.info.run_id, "eval_loss")
    m = run.data.metrics
    assert m["summary.tokens_per_s"] > 0 and m["summary.peak_rss_mb"] > 0 and m["summary.train_rows"] == 16
    assert any(k.startswith("system/") for k in m), sorted(m)  # MLflow system metrics (psutil)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "adapter")}
    assert "adapter/adapter_model.safetensors" in artifacts and "adapter/training_record.json" in artifacts


@pytest.mark.slow  # 27 s: two torch processes; `make test-all`
def test_two_cpu_processes_under_accelerate_launch(tmp_path, model):
    proj = project(tmp_path / "p", model, accelerate_config="configs/accelerate/cpu_2proc.yaml", max_steps=2)
    acc = yaml.safe_load((ROOT / "configs/accelerate/cpu_2proc.yaml").read_text())
    acc["main_process_port"] = free_port()
    (proj / "configs/accelerate").mkdir(parents=True)
    (proj / "configs/accelerate/cpu_2proc.yaml").write_text(yaml.safe_dump(acc))

    out = cli(proj)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    # Both processes share one stdout pipe: launch.say writes each report whole (tests/training/test_launch.py),
    # but it may follow the other process's unterminated output on the same line.
    reports = re.findall(r"sft-qlora: process (\d)/2: (\d+) steps, \d+ tokens, LoRA weight sum (\S+)", out.stdout)
    assert sorted(r[0] for r in reports) == ["0", "1"], out.stdout[-3000:]  # both trained
    assert all(r[1] == "2" for r in reports)
    assert len({r[2] for r in reports}) == 1  # DDP kept them in sync
    assert out.stdout.count("sft-qlora: adapter written to") == 1  # by process 0 only
    assert (proj / "models/adapter/adapter_model.safetensors").is_file()
    assert not (proj / "models/adapter.tmp").exists()
    metrics = json.loads((proj / "metrics/train.json").read_text())
    assert metrics["processes"] == 2 and metrics["steps"] == 2
    the_run(proj)  # exactly one MLflow run


def test_a_bad_accelerate_config_is_a_params_error(tmp_path, model):
    proj = project(tmp_path / "p", model, accelerate_config="accelerate.yaml")
    out = cli(proj)
    assert out.returncode == 2 and "configs/accelerate/" in out.stderr
