"""registry.py, and the pipeline's MLflow side against a real tracking *server* started here
(sqlite backend, artifacts proxied): runs, registered versions and aliases over HTTP."""

import json
import os
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
import yaml

from _servers import free_port, wait_until_serving
from safurai_csharp import registry

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAME = "safurai-csharp-tiny"


def test_pip_requirements_pin_what_is_installed():
    reqs = registry.pip_requirements()
    assert f"transformers=={version('transformers')}" in reqs and f"torch=={version('torch')}" in reqs


def test_tag_values_are_short_strings():
    assert registry.tag_value({"b": 1, "a": [1, 2]}) == '{"a": [1, 2], "b": 1}'
    assert registry.tag_value(0.5) == "0.5" and len(registry.tag_value("x" * 9000)) == 5000


def test_download_refuses_a_version_without_a_checkpoint(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'r.db'}"
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "notes.txt").write_text("hello")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("plain")
    mv = client.create_model_version("plain", source=(tmp_path / "not-a-model").as_uri())
    client.set_registered_model_alias("plain", "champion", mv.version)
    with pytest.raises(registry.RegistryError, match="no transformers checkpoint"):
        registry.download("plain", "champion", dst=tmp_path / "dl", tracking_uri=uri)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on a free port with a sqlite store; yields its URL."""
    tmp = tmp_path_factory.mktemp("server")
    port = free_port()
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp / 'server.db'}",
         "--artifacts-destination", str(tmp / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/health", proc, tmp / "server.log", "mlflow server", timeout_s=180)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this fixture started (server + its workers)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def cli(args: list[str], cwd: Path, tracking: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MLFLOW_TRACKING_URI": tracking}
    out = subprocess.run([str(BIN / "safurai-csharp"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_stages_log_and_register_over_http(server, tmp_path):
    from mlflow import MlflowClient

    from safurai_csharp.testing import make_tiny_adapter, make_tiny_model

    base = make_tiny_model(tmp_path / "base")
    adapter = make_tiny_adapter(base, tmp_path / "adapter")
    proj = tmp_path / "proj"
    proj.mkdir()
    params = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    params["merge"].update({"base_dir": str(base), "adapter_dir": str(adapter), "fidelity_prompts": 2})
    params["mlflow"]["tracking_uri"] = "sqlite:///must-not-be-used.db"  # the environment wins
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    cli(["merge"], proj, server)
    (proj / "metrics/eval").mkdir(parents=True)
    (proj / "metrics/eval/merged.json").write_text(json.dumps({"problems": 4, "corrected": {"pass@1": 0.5}}))
    assert "promoted" in cli(["promote"], proj, server)
    assert not (proj / "must-not-be-used.db").exists()

    client = MlflowClient(tracking_uri=server, registry_uri=server)
    exp = client.get_experiment_by_name(params["mlflow"]["experiment"])
    runs = {r.data.tags["dvc.stage"]: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"merge", "promote"}
    merge_run = runs["merge"]
    assert merge_run.info.status == "FINISHED" and merge_run.data.metrics["fidelity.top1_agreement"] > 0.9
    assert merge_run.data.params["merge.registered_model"] == NAME
    artifacts = {a.path for a in client.list_artifacts(merge_run.info.run_id)}
    assert {"merge.json", "README.md"} <= artifacts
    assert runs["promote"].data.metrics["promoted"] == 1.0

    mv = client.get_model_version_by_alias(NAME, "champion")
    assert str(mv.version) == "1" and set(mv.aliases) == {"candidate", "champion"}
    assert mv.run_id == merge_run.info.run_id
    assert mv.tags["dvc.stage"] == "merge" and float(mv.tags["promote.score"]) == 0.5
    assert "input.adapter.sha256" in mv.tags and "fidelity.max_abs_logits_diff" in mv.tags

    model, tokenizer = registry.load_registered(NAME, "champion", tracking_uri=server, dst=tmp_path / "dl",
                                                dtype=torch.float32)
    ids = tokenizer("class Program {", return_tensors="pt").input_ids
    assert model.generate(ids, max_new_tokens=4, do_sample=False).shape[1] > ids.shape[1]
