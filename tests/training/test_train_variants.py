"""The other corners of the recipe train too: a 16-bit LoRA without packing or gradient
checkpointing, and a run without a validation split."""

import json

import pytest

pytest.importorskip("torch")

from conftest import tiny_params, write_sft_data  # noqa: E402

from safurai_csharp.training.record import FILE as RECORD  # noqa: E402
from safurai_csharp.training.trainer import train  # noqa: E402


def test_16bit_lora_without_packing_or_checkpointing(tmp_path, tiny_qwen):
    data = write_sft_data(tmp_path / "data", train=8, validation=2)
    out = tmp_path / "out" / "adapter"
    params = tiny_params(tiny_qwen, data, out, max_steps=2, packing=False, gradient_checkpointing=False,
                         quantization={"enabled": False, "compute_dtype": "float32"})
    res = train(params.sft_qlora, checkpoint_root=tmp_path / "ckpt")
    assert res.metrics["steps"] == 2 and res.metrics["eval_loss"] > 0
    record = json.loads((out / RECORD).read_text())
    assert record["quantization"]["load_in_4bit"] is False and record["quantization"]["dtype"] == "float32"
    assert res.log_params["bnb.load_in_4bit"] is False


def test_no_validation_split_means_no_eval(tmp_path, tiny_qwen):
    data = write_sft_data(tmp_path / "data", train=8, validation=0)
    (data / "validation.jsonl").unlink()
    res = train(tiny_params(tiny_qwen, data, tmp_path / "out" / "adapter", max_steps=2).sft_qlora,
                checkpoint_root=tmp_path / "ckpt")
    assert res.metrics["eval_loss"] is None and res.metrics["validation_rows"] == 0
    assert res.metrics["train_loss"] > 0 and (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()


def test_max_steps_caps_epochs_never_extends_them(tmp_path, tiny_qwen):
    """HF's Trainer lets max_steps override epochs (a small set would be looped over 50 times)."""
    data = write_sft_data(tmp_path / "data", train=8, validation=0)
    res = train(tiny_params(tiny_qwen, data, tmp_path / "out" / "adapter", epochs=1, max_steps=50).sft_qlora,
                checkpoint_root=tmp_path / "ckpt")
    assert 1 <= res.metrics["steps"] < 50 and res.metrics["epochs"] == pytest.approx(1.0)
    res2 = train(tiny_params(tiny_qwen, data, tmp_path / "out2" / "adapter", epochs=3, max_steps=2).sft_qlora,
                 checkpoint_root=tmp_path / "ckpt")
    assert res2.metrics["steps"] == 2
