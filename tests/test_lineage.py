"""Lineage by content hash in a real MLflow store (sqlite in tmp): stage runs made with
tracking.stage_run, a registered version pointing at the last of them, and the CLI."""

import json
from pathlib import Path

import pytest

from safurai_csharp import lineage
from safurai_csharp.config import MlflowParams
from safurai_csharp.hashing import path_digest
from safurai_csharp.tracking import stage_run

NAME = "lineage-model"


def stage(cfg, name, tmp_path, reads, writes, text, metrics=None):
    for path in writes.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    with stage_run(cfg, name, params={"x": 1}, inputs=reads, outputs=writes) as mlflow:
        for path in writes.values():
            if path.suffix:
                path.write_text(text)
            else:
                path.mkdir(exist_ok=True)
                (path / "weights.bin").write_text(text)
                (path / "config.json").write_text("{}")
        if metrics:
            mlflow.log_metrics(metrics)
        return mlflow.active_run().info.run_id


@pytest.fixture()
def store(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = MlflowParams(tracking_uri=uri, experiment="lineage-test")
    d = tmp_path
    ids = {
        "generate": stage(cfg, "generate", d, {}, {"generated": d / "gen.jsonl"}, "g"),
        "benchmark": stage(cfg, "benchmark", d, {}, {"benchmark": d / "bench.jsonl"}, "b"),
    }
    # An older run that wrote different content must not be picked.
    stage(cfg, "filter", d, {"generated": d / "gen.jsonl"}, {"filtered": d / "old.jsonl"}, "stale")
    ids["filter"] = stage(cfg, "filter", d, {"generated": d / "gen.jsonl", "benchmark": d / "bench.jsonl"},
                          {"filtered": d / "filt.jsonl"}, "f", {"funnel.keep": 3})
    ids["sft_data"] = stage(cfg, "sft_data", d, {"filtered": d / "filt.jsonl"}, {"sft_data": d / "sft"}, "s")
    # sft_qlora reads one file of sft_data's directory out: linked through the per-file digests.
    ids["sft_qlora"] = stage(cfg, "sft_qlora", d, {"train": d / "sft" / "weights.bin"}, {"adapter": d / "adapter"}, "a")
    ids["merge"] = stage(cfg, "merge", d, {"adapter": d / "adapter", "orphan": d / "bench_copy.txt"},
                         {"model": d / "merged"}, "m")
    ids["eval"] = stage(cfg, "eval_multipl_e@merged", d, {"model": d / "merged", "benchmark": d / "bench.jsonl"},
                        {"metrics": d / "eval.json"}, "e", {"corrected.pass_at_1": 0.5})
    ids["promote"] = stage(cfg, "promote", d, {"eval_metrics": d / "eval.json"}, {"promotion": d / "p.json"}, "p")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    mv = client.create_model_version(NAME, source=str(d / "merged"), run_id=ids["merge"],
                                     tags={"model.sha256": path_digest(d / "merged")})
    client.set_registered_model_alias(NAME, "champion", mv.version)
    return client, ids, uri


def test_version_reaches_the_runs_of_its_data_adapter_and_scores(store, tmp_path):
    client, ids, _ = store
    lin = lineage.version_lineage(client, NAME)
    made = lin["made_by"]
    assert made["run_id"] == ids["merge"] and made["stage"] == "merge"
    (adapter,) = made["inputs"]
    assert adapter["via"] == "adapter" and adapter["run_id"] == ids["sft_qlora"]
    (sft,) = adapter["inputs"]
    assert sft["run_id"] == ids["sft_data"] and sft["via"] == "train"
    (filt,) = sft["inputs"]
    assert filt["run_id"] == ids["filter"] and filt["metrics"]["funnel.keep"] == 3
    assert {n["via"]: n["run_id"] for n in filt["inputs"]} == {"generated": ids["generate"], "benchmark": ids["benchmark"]}
    # The orphan input did not exist, so it was never tagged; nothing is invented for it.
    assert made["unresolved"] == []
    (ev,) = lin["scored_by"]
    assert ev["run_id"] == ids["eval"] and ev["metrics"]["corrected.pass_at_1"] == 0.5
    assert [u["run_id"] for u in ev["used_by"]] == [ids["promote"]]
    text = lineage.format_lineage(lin)
    for run_id in ids.values():
        assert run_id in text


def test_an_input_nobody_produced_is_reported(store, tmp_path):
    client, ids, _ = store
    (tmp_path / "bench_copy.txt").write_text("made by hand")
    with stage_run(MlflowParams(tracking_uri=store[2], experiment="lineage-test"), "merge", params={},
                   inputs={"adapter": tmp_path / "adapter", "by_hand": tmp_path / "bench_copy.txt"}):
        pass
    run = client.search_runs(lineage.experiment_ids(client), order_by=["attributes.start_time DESC"],
                             max_results=1)[0]
    node = lineage.trace(client, run)
    assert node.unresolved == ["by_hand"] and [n.run_id for n in node.inputs] == [ids["sft_qlora"]]


def test_a_failed_run_is_never_a_producer(store, tmp_path):
    client, ids, uri = store
    cfg = MlflowParams(tracking_uri=uri, experiment="lineage-test")
    with pytest.raises(RuntimeError):
        with stage_run(cfg, "sft_qlora", params={}, outputs={"adapter": tmp_path / "adapter"}):
            raise RuntimeError("killed")
    digest = path_digest(tmp_path / "adapter")
    assert lineage.producer(client, lineage.experiment_ids(client), digest).info.run_id == ids["sft_qlora"]


def test_digest_is_validated(store):
    client, _, _ = store
    with pytest.raises(ValueError, match="sha256"):
        lineage.producer(client, ["0"], "abc' OR '1'='1")


def test_cli_prints_the_tree_and_json(store, tmp_path, capsys):
    import yaml

    from safurai_csharp.cli import main

    _, ids, uri = store
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["mlflow"]["tracking_uri"] = uri
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["lineage", "--model", NAME, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "1" and out["made_by"]["run_id"] == ids["merge"]
    assert main(["lineage", "--model", NAME, "--version", "1"]) == 0
    text = capsys.readouterr().out
    assert "adapter <- sft_qlora" in text and "read by promote" in text
    assert main(["lineage", "--model", NAME, "--alias", "nope"]) == 2
