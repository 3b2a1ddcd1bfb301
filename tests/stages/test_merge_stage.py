"""Stage merge on a tiny model: fidelity of both `into` modes against references built here,
the NF4 round trip against bitsandbytes' own 4-bit load, training records, the gate, and
the full stage (checkpoint, card, metrics, registered version with alias candidate)."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from safurai_csharp.config import MergeParams, ParamsError, load_params
from safurai_csharp.fidelity import FIDELITY_PROMPTS, compare, prompt_logits
from safurai_csharp.stages import merge as stage
from safurai_csharp.training import record as training_record
from safurai_csharp.training.record import Quantization, RecordError

ROOT = Path(__file__).resolve().parents[2]
EXACT = Quantization(dtype="float32", compute_dtype="float32")  # no bf16 rounding anywhere


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from safurai_csharp.testing import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("base") / "model")


@pytest.fixture(scope="module")
def adapter(base, tmp_path_factory):
    from safurai_csharp.testing import make_tiny_adapter

    return make_tiny_adapter(base, tmp_path_factory.mktemp("adapter") / "adapter")


def cfg(base, adapter, **kw) -> MergeParams:
    values = {"base_dir": str(base), "adapter_dir": str(adapter), "dtype": "float32", "fidelity_prompts": 12,
              "registry": False, "out_dir": "unused", **kw}
    return MergeParams(**values)


def logits_of(model_dir, prompts=FIDELITY_PROMPTS):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return prompt_logits(model, AutoTokenizer.from_pretrained(model_dir), prompts)


def four_bit_reference(base, adapter, q: Quantization):
    """base loaded in 4-bit by transformers + bitsandbytes exactly as QLoRA training does, + adapter."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    dt = getattr(torch, q.dtype)
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q.quant_type, bnb_4bit_use_double_quant=q.double_quant,
                             bnb_4bit_compute_dtype=getattr(torch, q.compute_dtype))
    model = AutoModelForCausalLM.from_pretrained(base, quantization_config=bnb, dtype=dt)
    for m in model.modules():  # the training (dequantize + matmul) path, not the bf16 inference repack
        if hasattr(m, "support_avx512bf16_for_cpu"):
            m.support_avx512bf16_for_cpu = False
    model = PeftModel.from_pretrained(model, adapter).eval()
    return prompt_logits(model, AutoTokenizer.from_pretrained(base), FIDELITY_PROMPTS), model


def test_fidelity_prompts_fit_the_schema():
    assert len(FIDELITY_PROMPTS) == MergeParams.model_fields["fidelity_prompts"].metadata[1].le == 12
    assert len(set(FIDELITY_PROMPTS)) == 12


def test_original_merge_equals_base_plus_adapter(base, adapter, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    q16 = Quantization(load_in_4bit=False)  # a 16-bit LoRA: the model as trained is base + adapter
    metrics = stage.merge(cfg(base, adapter, into="original"), tmp_path / "m", q16)
    ref_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).eval()
    reference = prompt_logits(ref_model, AutoTokenizer.from_pretrained(base), FIDELITY_PROMPTS)
    merged = logits_of(tmp_path / "m")
    independent = compare(reference, merged)
    assert independent["top1_agreement"] == 1.0 and independent["max_abs_logits_diff"] < 1e-4
    base_only = compare(reference, logits_of(base))
    assert base_only["max_abs_logits_diff"] > 100 * independent["max_abs_logits_diff"]  # the adapter matters
    assert metrics["fidelity"]["top1_agreement"] == 1.0 and metrics["fidelity"]["max_abs_logits_diff"] < 1e-4
    assert metrics["reference"] == "base (float32) + adapter" and metrics["dequantized_linears"] == 0
    assert metrics["fidelity"]["positions"] == sum(r.shape[0] for r in reference)
    for f in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "m" / f).is_file(), f
    assert not any("lora" in k for k in json.dumps(json.loads((tmp_path / "m/config.json").read_text())))


def test_nf4_round_trip_is_what_bitsandbytes_computes_with(base):
    import bitsandbytes as bnb
    import bitsandbytes.functional as F
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    weights = load_file(str(base / "model.safetensors"))
    for dtype in ("float32", "bfloat16"):
        q = Quantization(dtype=dtype)
        four = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype), quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True))
        quantized = {n: m for n, m in four.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
        plain = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        assert sorted(quantized) == sorted(stage.quantized_linear_names(plain))
        for name, module in quantized.items():
            theirs = F.dequantize_4bit(module.weight.data, module.weight.quant_state)
            ours = stage.nf4_round_trip(weights[f"{name}.weight"], q)
            assert torch.equal(ours, theirs.float()), (dtype, name)


def test_dequantized_merge_is_the_4bit_model_as_trained(base, adapter, tmp_path):
    reference, _ = four_bit_reference(base, adapter, EXACT)
    metrics = stage.merge(cfg(base, adapter, into="dequantized"), tmp_path / "deq", EXACT)
    deq = compare(reference, logits_of(tmp_path / "deq"))
    assert deq["top1_agreement"] == 1.0 and deq["max_abs_logits_diff"] < 1e-4, deq
    assert metrics["reference"].startswith("4-bit base (bitsandbytes nf4)")
    assert metrics["fidelity"]["top1_agreement"] == 1.0 and metrics["fidelity"]["max_abs_logits_diff"] < 1e-4
    assert metrics["dequantized_linears"] == 14 and metrics["merge_exactness"]["max_abs_logits_diff"] < 1e-4

    # Merged into the original weights, the same adapter no longer reproduces what was trained.
    orig_metrics = stage.merge(cfg(base, adapter, into="original"), tmp_path / "orig", EXACT)
    orig = compare(reference, logits_of(tmp_path / "orig"))
    assert orig["max_abs_logits_diff"] > 100 * deq["max_abs_logits_diff"] and orig["top1_agreement"] < 0.97
    assert orig_metrics["fidelity"]["top1_agreement"] == pytest.approx(orig["top1_agreement"])


def test_bf16_training_settings_within_bf16_tolerance(base, adapter, tmp_path):
    q = Quantization()  # the shipped default: bf16 weights and compute
    reference, _ = four_bit_reference(base, adapter, q)
    metrics = stage.merge(cfg(base, adapter, into="dequantized", dtype="bfloat16"), tmp_path / "m", q)
    got = compare(reference, logits_of(tmp_path / "m"))
    assert got["top1_agreement"] >= 0.97 and got["max_abs_logits_diff"] < 0.05, got
    assert metrics["fidelity"]["top1_agreement"] >= 0.97
    assert json.loads((tmp_path / "m/config.json").read_text())["dtype"] == "bfloat16"


def test_dequantize_targets_only_vs_all(base, tmp_path):
    from safurai_csharp.testing import make_tiny_adapter

    qv = make_tiny_adapter(base, tmp_path / "qv", target_modules=["q_proj", "v_proj"])
    everything = stage.merge(cfg(base, qv, dequantize_modules="all"), tmp_path / "all", EXACT)
    targets = stage.merge(cfg(base, qv, dequantize_modules="targets"), tmp_path / "targets", EXACT)
    assert everything["dequantized_linears"] == 14 and targets["dequantized_linears"] == 4
    assert everything["fidelity"]["max_abs_logits_diff"] < 1e-4
    assert targets["fidelity"]["max_abs_logits_diff"] > 100 * everything["fidelity"]["max_abs_logits_diff"]


def write_record(adapter_dir: Path, base: Path, **quantization) -> dict:
    """The record sft_qlora writes (training/record.py), as JSON, into a copy of the adapter."""
    from safurai_csharp.hashing import path_digest

    record = {"base_model": {"dir": "models/base", "sha256": path_digest(base)},
              "quantization": {"load_in_4bit": True, "quant_type": "nf4", "double_quant": True, "blocksize": 64,
                               "dtype": "float32", "compute_dtype": "float32", "quant_storage": "uint8", **quantization},
              "lora": {"r": 8, "alpha": 16.0, "dropout": 0.0, "target_modules": "all-linear"},
              "data": {"train": {"sha256": "ab" * 32, "rows": 10}}, "steps": 3, "seed": 42,
              "libraries": {"peft": "0"}}
    (adapter_dir / training_record.FILE).write_text(json.dumps(record))
    return record


def test_sft_qlora_training_record_overrides_params(base, adapter, tmp_path):
    import shutil

    from safurai_csharp.hashing import path_digest

    rec_dir = tmp_path / "adapter"
    shutil.copytree(adapter, rec_dir)
    write_record(rec_dir, base)
    wrong = Quantization(double_quant=False)  # params say otherwise: the record wins
    assert training_record.read(rec_dir).quantization == EXACT
    metrics = stage.merge(cfg(base, rec_dir), tmp_path / "m", wrong, base_sha256=path_digest(base))
    assert metrics["quantization"]["source"] == str(rec_dir / training_record.FILE)
    assert metrics["quantization"]["double_quant"] and metrics["quantization"]["skip_modules"] == []
    assert "quant_storage" not in metrics["quantization"]  # merge.json's keys as before the typed record
    assert metrics["fidelity"]["max_abs_logits_diff"] < 1e-4  # exact because the record's float32 settings were used
    tags = training_record.read(rec_dir).lineage_tags(rec_dir / training_record.FILE)
    assert tags["training.data.train.rows"] == "10" and tags["training.steps"] == "3"

    with pytest.raises(ParamsError, match="trained on a base with sha256"):
        stage.merge(cfg(base, rec_dir), tmp_path / "x", wrong, base_sha256="0" * 64)

    write_record(rec_dir, base, load_in_4bit=False)
    with pytest.raises(ParamsError, match="16-bit base.*into: original"):
        stage.merge(cfg(base, rec_dir), tmp_path / "y")


def test_the_training_record_is_one_versioned_contract(base, tmp_path):
    """Written by training, read by merge: version 1 is the unversioned format of every adapter
    trained so far (byte-identical round trip); an unknown version or a broken file is refused
    with its path; other JSON files in the adapter directory are not searched any more."""
    record = write_record(tmp_path, base)
    text = (tmp_path / training_record.FILE).read_text()
    parsed = training_record.read(tmp_path)
    assert parsed.schema_version == 1 and json.loads(parsed.to_json()) == record == json.loads(text)
    assert "schema_version" not in parsed.to_json()
    (tmp_path / "again").mkdir()
    assert parsed.write(tmp_path / "again").read_text() == parsed.to_json()
    assert training_record.read(tmp_path / "again") == parsed

    (tmp_path / training_record.FILE).write_text(json.dumps({**record, "schema_version": 2}))
    with pytest.raises(RecordError, match="schema_version 2; this code reads version 1"):
        training_record.read(tmp_path)
    (tmp_path / training_record.FILE).write_text(json.dumps({**record, "steps": "many"}))
    with pytest.raises(RecordError, match=f"{training_record.FILE}: not a usable training record"):
        training_record.read(tmp_path)

    (tmp_path / training_record.FILE).unlink()
    (tmp_path / "notes.json").write_text(json.dumps({"quantization_config": {"load_in_4bit": True}}))
    assert training_record.read(tmp_path) is None  # merge then uses sft_qlora.quantization


def test_the_real_pipelines_record_reads_back_byte_identical():
    adapter = ROOT / "models" / "adapter"
    if not (adapter / training_record.FILE).is_file():
        pytest.skip("models/adapter not checked out (dvc pull)")
    assert training_record.read(adapter).to_json() == (adapter / training_record.FILE).read_text()


def test_missing_adapter_names_the_stage(base, tmp_path):
    with pytest.raises(FileNotFoundError, match="sft_qlora"):
        stage.merge(cfg(base, tmp_path / "nothing"), tmp_path / "m")


def project(tmp: Path, base: Path, adapter: Path, **merge) -> Path:
    params = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    params["merge"].update({"base_dir": str(base), "adapter_dir": str(adapter), "fidelity_prompts": 3, **merge})
    params["mlflow"]["tracking_uri"] = f"sqlite:///{tmp / 'mlflow.db'}"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp


def test_stage_writes_checkpoint_card_metrics_and_registers_a_candidate(base, adapter, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    proj = project(tmp_path / "p", base, adapter)
    monkeypatch.chdir(proj)
    metrics = stage.run()
    out = proj / "models/merged"
    card = (out / "README.md").read_text()
    for part in ("base_model:", "## Base", "## Adapter and data", "## Merge params", "## Metrics", "top-token agreement",
                 "load_registered('safurai-csharp-tiny', 'champion')", "LoRA r 8, alpha 16"):
        assert part in card, part
    on_disk = json.loads((proj / "metrics/merge.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert on_disk["registry"]["version"] == 1 and on_disk["registry"]["alias"] == "candidate"
    assert not list(proj.glob("models/.merged.tmp-*"))

    client = MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    mv = client.get_model_version_by_alias("safurai-csharp-tiny", "candidate")
    assert str(mv.version) == "1" and mv.description.startswith("---")
    for key in ("dvc.stage", "input.base.sha256", "input.adapter.sha256", "model.sha256", "fidelity.top1_agreement",
                "fidelity.max_abs_logits_diff", "merge.into"):
        assert key in mv.tags, key
    from safurai_csharp.hashing import path_digest

    assert mv.tags["model.sha256"] == path_digest(out) == on_disk["model_sha256"]
    assert mv.tags["input.adapter.sha256"] == path_digest(adapter)
    run = client.get_run(mv.run_id)
    assert run.data.tags["dvc.stage"] == "merge" and "fidelity.top1_agreement" in run.data.metrics
    assert run.data.params["merge.into"] == "dequantized"

    metrics2 = stage.run()  # every merge is a new version; candidate follows the latest
    assert metrics2["registry"]["version"] == 2
    assert str(client.get_model_version_by_alias("safurai-csharp-tiny", "candidate").version) == "2"


def test_fidelity_gate_stops_before_saving_or_registering(base, adapter, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    proj = project(tmp_path / "p", base, adapter, into="original", min_agreement=1.0)
    monkeypatch.chdir(proj)
    assert load_params().merge.min_agreement == 1.0
    with pytest.raises(stage.MergeError, match="below merge.min_agreement"):
        stage.run()
    assert not (proj / "models/merged").exists() and not list(proj.glob("models/.merged.tmp-*"))
    written = json.loads((proj / "metrics/merge.json").read_text())
    assert written["registry"] is None and written["fidelity"]["top1_agreement"] < 1.0
