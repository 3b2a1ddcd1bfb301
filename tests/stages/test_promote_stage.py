"""Stage promote against a real MLflow store (sqlite in tmp): the champion/candidate alias
round trip through merge + promote, the decision rule, and the refusals."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from safurai_csharp import registry
from safurai_csharp.stages import merge, promote

ROOT = Path(__file__).resolve().parents[2]
NAME = "safurai-csharp-tiny"


@pytest.mark.parametrize("candidate,champion,margin,expected", [
    (0.3, None, 0.0, True),      # first model
    (0.31, 0.30, 0.0, True),
    (0.30, 0.30, 0.0, False),    # a tie keeps the champion
    (0.29, 0.30, 0.0, False),
    (0.32, 0.30, 0.05, False),   # better, but within the margin
    (0.36, 0.30, 0.05, True),
])
def test_decide(candidate, champion, margin, expected):
    promoted, reason = promote.decide(candidate, champion, margin)
    assert promoted is expected and reason


def test_decide_refuses_incomparable_scores():
    promoted, reason = promote.decide(0.9, 0.1, 0.0, same_setup=False)
    assert not promoted and "different evaluation setup" in reason


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from safurai_csharp.testing import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("base") / "model")


def write_project(proj: Path, base: Path, adapter: Path, **promote_cfg) -> None:
    params = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    params["merge"].update({"base_dir": str(base), "adapter_dir": str(adapter), "fidelity_prompts": 2})
    params["promote"].update(promote_cfg)
    params["mlflow"]["tracking_uri"] = f"sqlite:///{proj / 'mlflow.db'}"
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def write_eval(proj: Path, corrected: float, problems: int = 4) -> None:
    path = proj / "metrics/eval/merged.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"problems": problems, "n": 1, "corrected": {"pass@1": corrected},
                                "official": {"pass@1": corrected / 2}}))


def test_alias_round_trip_merge_promote_load(base, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from safurai_csharp.testing import make_tiny_adapter

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    proj = tmp_path / "proj"
    proj.mkdir()
    monkeypatch.chdir(proj)
    client = MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")

    def merge_and_promote(seed: int, score: float) -> dict:
        adapter = make_tiny_adapter(base, tmp_path / f"adapter{seed}", seed=seed)
        write_project(proj, base, adapter)
        merge.run()
        write_eval(proj, score)
        decision = promote.run()
        assert json.loads((proj / "metrics/promotion.json").read_text()) == json.loads(json.dumps(decision))
        return decision

    def champion() -> str:
        return str(client.get_model_version_by_alias(NAME, "champion").version)

    first = merge_and_promote(1, 0.25)
    assert first["promoted"] and first["champion_before"] is None and first["champion_after"] == 1
    assert champion() == "1"
    v1 = client.get_model_version(NAME, "1")
    assert float(v1.tags["promote.score"]) == 0.25 and v1.tags["promote.decision"] == "promoted"
    assert json.loads(v1.tags["promote.eval_setup"])["problems"] == 4
    assert client.get_run(v1.tags["lineage.promote_run_id"]).data.tags["dvc.stage"] == "promote"
    assert "lineage.eval_run_id" not in v1.tags  # the eval file was written by hand: no run made it

    worse = merge_and_promote(2, 0.20)
    assert not worse["promoted"] and worse["candidate"] == {"version": 2, "score": 0.20}
    assert worse["champion_before"] == {"version": 1, "score": 0.25} and worse["champion_after"] == 1
    assert champion() == "1"
    v2 = client.get_model_version(NAME, "2")
    assert v2.tags["promote.decision"] == "kept" and v2.tags["promote.champion_before"] == "1"
    assert float(v2.tags["promote.champion_score_before"]) == 0.25
    assert str(client.get_model_version_by_alias(NAME, "candidate").version) == "2"

    tie = merge_and_promote(3, 0.25)
    assert not tie["promoted"] and champion() == "1"

    better = merge_and_promote(4, 0.5)
    assert better["promoted"] and better["champion_before"] == {"version": 1, "score": 0.25}
    assert champion() == "4"
    assert client.get_model_version(NAME, "1").tags["promote.superseded_by"] == "4"

    again = promote.run()  # rerun with nothing new: idempotent
    assert not again["promoted"] and "already the champion" in again["reason"] and champion() == "4"
    # the registry page says what v4 scored, above its model card, once however often promote runs
    text = client.get_model_version(NAME, "4").description
    assert text.startswith("## Scores") and "| corrected | 50.0% |" in text and "| official | 25.0% |" in text
    assert text.count("## Scores") == 1 and "\n# " + NAME in text  # the card follows

    # models:/<name>@champion loads with transformers and generates; it is the v4 merge.
    model, tokenizer = registry.load_registered(NAME, "champion", tracking_uri=f"sqlite:///{proj / 'mlflow.db'}",
                                                dst=tmp_path / "download", dtype=torch.float32)
    ids = tokenizer("public static long Sum(", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids.shape[1]
    from transformers import AutoModelForCausalLM

    on_disk = AutoModelForCausalLM.from_pretrained(proj / "models/merged", dtype=torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), on_disk.state_dict().values()))

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{proj / 'mlflow.db'}")
    components = mlflow.transformers.load_model(f"models:/{NAME}@champion", return_type="components")
    assert type(components["model"]).__name__ == "Qwen2ForCausalLM"


@pytest.fixture(scope="module")
def registry_db(tmp_path_factory):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'r.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture()
def store(registry_db, request):
    """A registered model of its own with hand-made versions (no model files): fast checks
    of promote's rules."""
    name = request.node.name
    registry_db.create_registered_model(name)

    def version(sha: str, **tags) -> str:
        mv = registry_db.create_model_version(name, source=f"file:///nowhere/{sha}", tags={"model.sha256": sha, **tags})
        return str(mv.version)

    return registry_db, version, name


SETUP = {"metric": "corrected", "problems": 158, "n": 1}


def test_scores_of_different_setups_are_not_compared(store):
    client, version, name = store
    old = version("a", **{"promote.score": "0.2", "promote.eval_setup": json.dumps({**SETUP, "problems": 4})})
    client.set_registered_model_alias(name, "champion", old)
    registry.set_alias(client, name, "candidate", version("b"))
    decision = promote.promote(client, name, 0.9, SETUP, 0.0, "b")
    assert not decision["promoted"] and not decision["comparable"] and "different evaluation setup" in decision["reason"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == old
    same = version("c")  # the same setup is compared: 0.9 > 0.2
    client.set_model_version_tag(name, old, "promote.eval_setup", json.dumps(SETUP))
    registry.set_alias(client, name, "candidate", same)
    assert promote.promote(client, name, 0.9, SETUP, 0.0, "c")["promoted"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == same


def test_champion_without_score_is_kept_and_explained(store):
    client, version, name = store
    client.set_registered_model_alias(name, "champion", version("a"))
    registry.set_alias(client, name, "candidate", version("b"))
    decision = promote.promote(client, name, 0.9, SETUP, 0.0, "b")
    assert not decision["promoted"] and "no promote.score tag" in decision["reason"]


def test_refuses_a_score_of_another_model(store):
    client, version, name = store
    registry.set_alias(client, name, "candidate", version("b"))
    with pytest.raises(registry.RegistryError, match="not the registered candidate"):
        promote.promote(client, name, 0.9, SETUP, 0.0, "something-else")


def test_no_candidate_says_run_merge(store):
    client, _, name = store
    with pytest.raises(registry.RegistryError, match="safurai-csharp merge"):
        promote.promote(client, name, 0.9, SETUP, 0.0, None)
    assert registry.version_by_alias(client, "no-such-model", "champion") is None


def test_cli_error_is_one_plain_line(base, tmp_path, monkeypatch, capsys):
    from safurai_csharp.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write_project(tmp_path, base, tmp_path / "adapter")
    write_eval(tmp_path, 0.5)
    monkeypatch.chdir(tmp_path)
    assert main(["promote"]) == 2  # the console script exits with main's return value
    err = capsys.readouterr().err
    assert "safurai-csharp promote: error:" in err and "has no version with alias 'candidate'" in err
