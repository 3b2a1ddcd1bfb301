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


class _Recorder:
    """Stands in for the mlflow module: keeps every log_metrics call."""

    def __init__(self, fail: bool = False) -> None:
        self.calls, self.fail = [], fail

    def log_metrics(self, metrics, step=None):
        if self.fail:
            raise ConnectionError("tracking server down")
        self.calls.append((step, metrics))


def test_live_progress_is_throttled_and_always_logs_the_last_point():
    from safurai_csharp.tracking import LiveProgress

    now = [0.0]
    rec = _Recorder()
    live = LiveProgress(rec, interval_s=10, clock=lambda: now[0])
    hook = live.programs("official")
    for decided in range(0, 1581, 10):  # a 1,580-program sandbox run over 300 s, a report per chunk
        now[0] = decided * 0.19
        hook(decided, decided // 2, 1580)
    times = [s * 0.19 for s, _ in rec.calls]
    assert rec.calls[0][0] == 0 and rec.calls[-1][0] == 1580
    assert 20 <= len(rec.calls) <= 1 + 300 // 10 + 1  # moves during the run, at most one point per 10 s
    assert all(b - a >= 10 for a, b in zip(times[:-2], times[1:-1]))  # the final point may come sooner
    assert rec.calls[-1][1] == {"live.official.programs_done": 1580.0, "live.official.passed": 790.0,
                                "live.official.pass_rate": 0.5}
    assert "live.official.pass_rate" not in rec.calls[0][1]  # nothing decided yet: no rate

    rec.calls.clear()
    gen = live.generation()
    now[0] = 1000.0
    gen(0, 100, 0)
    now[0] = 1004.0
    gen(40, 100, 400)  # within the interval: held back ...
    assert [s for s, _ in rec.calls] == [0]
    live.flush()       # ... until the stage ends (an error, Ctrl-C): the run shows how far it got
    assert rec.calls[-1] == (40, {"live.generation.prompts_done": 40.0, "live.generation.generated_tokens": 400.0,
                                  "live.generation.tokens_per_s": 100.0})
    live.flush()
    assert len(rec.calls) == 2  # nothing twice
    gen(60, 100, None)  # an engine that cannot count tokens
    now[0] = 1020.0
    gen(100, 100, None)
    assert rec.calls[-1] == (100, {"live.generation.prompts_done": 100.0})


def test_live_progress_survives_a_failing_tracking_store(caplog):
    from safurai_csharp.tracking import live_progress

    with live_progress(_Recorder(fail=True), interval_s=0) as live:
        live.programs()(1, 1, 2)
    assert "live metrics not logged" in caplog.text
