"""Live metrics of the eval stages and self_sample (issue #14) in a real MLflow store: the hf
engine on the tiny model and the real sandbox write `live.*` histories while the stage runs,
and the stage's outputs are what they are without them."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from safurai_csharp.config import MlflowParams, parse_params
from safurai_csharp.jsonl import write_jsonl

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="mono/bubblewrap not installed")
HF = {"dtype": "float32", "batch_size": 2}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from safurai_csharp.testing import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A sqlite MLflow store, and every live point logged (no throttle) so the test sees each."""
    import safurai_csharp.tracking as tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(tracking, "LIVE_INTERVAL_S", 0.0)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def tiny_params(**sections):
    raw = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    for name, values in sections.items():
        raw[name].update(values)
    return parse_params(raw)


def history(uri: str, key: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, key),
                                              key=lambda m: (m.timestamp, m.step))]


def test_eval_stage_logs_generation_and_sandbox_progress(tmp_path, model_dir, store):
    from safurai_csharp.benchmark import build_humaneval_cs
    from safurai_csharp.csharp import make_executor
    from safurai_csharp.evaluation import run_stage, sample_and_score

    bench = tmp_path / "bench.jsonl"
    rows = [r for r in build_humaneval_cs() if r["name"] in (
        "HumanEval_0_has_close_elements", "HumanEval_2_truncate_number", "HumanEval_4_mean_absolute_deviation")]
    write_jsonl(bench, rows)
    p = tiny_params(eval_multipl_e={"n": 2, "temperature": 1.0, "max_new_tokens": 12})
    cfg = p.eval_multipl_e
    out, metrics_path = tmp_path / "results.jsonl", tmp_path / "metrics.json"
    metrics = run_stage("eval_multipl_e@base", ("benchmark", bench), model_dir, cfg, engine="hf", engine_options=HF,
                        sandbox=p.sandbox, mlflow_cfg=MlflowParams(tracking_uri=store, experiment="t",
                                                                   system_metrics=False),
                        logged={}, out=out, metrics_path=metrics_path)

    done = history(store, "live.generation.prompts_done")
    assert done == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]  # the engine's start, then per batch (n=2: 1 prompt)
    tokens = history(store, "live.generation.generated_tokens")
    assert tokens[-1] == (3, float(metrics["generation"]["generated_tokens"]))
    assert history(store, "live.generation.tokens_per_s")[-1][1] > 0
    for mode in cfg.modes:
        programs = history(store, f"live.{mode}.programs_done")
        assert programs[0] == (0, 0.0) and programs[-1] == (6, 6.0)
        passed = sum(x["passed"] for r in json.loads(f"[{','.join(out.read_text().splitlines())}]")
                     for x in r["results"][mode])
        assert history(store, f"live.{mode}.passed")[-1] == (6, float(passed))
        assert history(store, f"live.{mode}.pass_rate")[-1] == (6, round(passed / 6, 4))

    # the same evaluation without live metrics: the same records, the same metrics but for timings
    records, plain = sample_and_score(rows, model_dir, cfg, engine="hf", engine_options=HF,
                                      executor=make_executor(p.sandbox))
    write_jsonl(tmp_path / "plain.jsonl", records)
    assert out.read_bytes() == (tmp_path / "plain.jsonl").read_bytes()

    def untimed(m):
        m = json.loads(json.dumps(m))
        for mode in cfg.modes:
            m[mode].pop("execution_seconds")
        m["generation"].pop("seconds"), m["generation"].pop("tokens_per_s")
        return m

    assert untimed(json.loads(metrics_path.read_text())) == untimed(plain)


def test_self_sample_stage_logs_generation_and_sandbox_progress(tmp_path, model_dir, store, monkeypatch):
    from safurai_csharp.stages.self_sample import run
    from safurai_csharp.synth.completion_format import render
    from safurai_csharp.synth.program import with_standard_usings

    def example(i: int) -> dict:
        sol = with_standard_usings(f"public static class K{i}\n{{\n    public static int F{i}(int x)\n    {{\n"
                                   f"        return {i} * x;\n    }}\n}}")
        ex = {"id": f"e{i}", "instruction": f"Multiply x by {i}.", "solution": sol, "topic": "t",
              "tests": "\n".join(f"Debug.Assert(K{i}.F{i}({x}) == {i * x});" for x in (1, 2, 5))}
        return {**ex, "task": render(ex, ex["id"]).problem(completion=f"\n        return {i} * x;")}

    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "data/tasks/train.jsonl", [example(2), example(3), example(4)])
    p = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    p["self_sample"].update(model_dir=str(model_dir), k=2, max_new_tokens=12)
    p["eval_multipl_e"]["engine_options"]["hf"] = HF
    p["mlflow"].update(tracking_uri=store, system_metrics=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    metrics = run("params.yaml")

    assert history(store, "live.generation.prompts_done") == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]
    tokens = history(store, "live.generation.generated_tokens")
    assert tokens[-1] == (3, float(metrics["generation"]["generated_tokens"]))
    assert history(store, "live.programs_done")[0] == (0, 0.0)
    assert history(store, "live.programs_done")[-1] == (6, 6.0)
    assert history(store, "live.passed")[-1] == (6, float(metrics["passing"]))
    assert history(store, "live.pass_rate")[-1] == (6, metrics["pass_rate"])
