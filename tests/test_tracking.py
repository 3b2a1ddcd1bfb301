"""tracking.stage_run in a real MLflow store: the datasets a stage reads and writes show up as
MLflow dataset inputs (name, DVC path, content digest), and system metrics are sampled."""

import time

from safurai_csharp.config import MlflowParams
from safurai_csharp.hashing import file_sha256
from safurai_csharp.tracking import stage_run


def test_datasets_and_system_metrics_of_a_stage_run(tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "data/in.jsonl").write_text('{"a": 1}\n')
    (tmp_path / "models/m.bin").write_text("weights")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_system_metrics_sampling_interval(1)
    try:
        with stage_run(MlflowParams(tracking_uri=uri, experiment="t"), "filter", params={"k": 1},
                       inputs={"generated": "data/in.jsonl", "model": "models/m.bin"},
                       outputs={"filtered": "data/out.jsonl", "metrics": "metrics.json"}) as run:
            (tmp_path / "data/out.jsonl").write_text('{"b": 2}\n')
            (tmp_path / "metrics.json").write_text("{}")
            time.sleep(2.5)
            run_id = run.active_run().info.run_id
    finally:
        mlflow.set_system_metrics_sampling_interval(None)
    got = MlflowClient(uri).get_run(run_id)
    seen = {(d.dataset.name, d.dataset.digest, next(t.value for t in d.tags if t.key == "mlflow.data.context"),
             d.dataset.source) for d in got.inputs.dataset_inputs}
    assert {(n, dg, ctx) for n, dg, ctx, _ in seen} == {
        ("generated", file_sha256(tmp_path / "data/in.jsonl")[:36], "input"),
        ("filtered", file_sha256(tmp_path / "data/out.jsonl")[:36], "output"),
    }  # models and metrics are no datasets
    assert all('"data/' in src for *_, src in seen)  # the DVC path is the source
    assert any(k.startswith("system/cpu_utilization") for k in got.data.metrics), sorted(got.data.metrics)


def test_live_metrics_move_during_a_chunked_stage(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from safurai_csharp.synth.checkpoint import run_chunks
    from safurai_csharp.tracking import live

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    work = lambda idx: ([{"index": i, "ok": i % 2 == 0} for i in idx], {"generated_tokens": 10 * len(idx)})  # noqa: E731
    summary = lambda records, tallies: {"kept": sum(r["ok"] for r in records),  # noqa: E731
                                        "generated_tokens": sum(t["generated_tokens"] for t in tallies)}
    cfg = MlflowParams(tracking_uri=uri, experiment="t", system_metrics=False)
    with stage_run(cfg, "generate", params={}) as run:
        run_chunks(tmp_path / "ck" / "k.jsonl", total=10, size=4, work=work, on_chunk=live(run, summary))
        run_id = run.active_run().info.run_id
    client = MlflowClient(uri)
    done = client.get_metric_history(run_id, "live.tasks_done")
    assert [(m.step, m.value) for m in done] == [(4, 4.0), (8, 8.0), (10, 10.0)]
    assert [m.value for m in client.get_metric_history(run_id, "live.kept")] == [2.0, 4.0, 5.0]
    assert client.get_metric_history(run_id, "live.generated_tokens")[-1].value == 100.0
