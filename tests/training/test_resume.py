"""A run SIGKILLed mid-way resumes from its last checkpoint and ends with the same adapter as
an uninterrupted run; checkpoints live outside the DVC out, keyed by what determines training."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")

from conftest import tiny_params, tiny_raw, write_sft_data  # noqa: E402

from safurai_csharp.training import resume  # noqa: E402
from safurai_csharp.training.trainer import train  # noqa: E402

STEPS = dict(max_steps=6, save_steps=2, eval_steps=3, gradient_accumulation_steps=1, max_seq_length=320)

KILLER = """
import os, signal, sys
from transformers import TrainerCallback
from safurai_csharp.config import load_params
from safurai_csharp.training.trainer import train

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == int(sys.argv[3]):  # checkpoint-4 is on disk, step 5's work is not saved
            os.kill(os.getpid(), signal.SIGKILL)

train(load_params(sys.argv[1]).sft_qlora, checkpoint_root=sys.argv[2], callbacks=[Kill()])
"""


def load_adapter(out_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out_dir / "adapter_model.safetensors"))


def test_killed_run_resumes_to_the_uninterrupted_adapter(tmp_path, tiny_qwen):
    data = write_sft_data(tmp_path / "data", train=16, validation=4)

    whole = tiny_params(tiny_qwen, data, tmp_path / "whole" / "adapter", **STEPS)
    res_whole = train(whole.sft_qlora, checkpoint_root=tmp_path / "ckpt-whole")
    expected = load_adapter(tmp_path / "whole" / "adapter")
    assert res_whole.metrics["steps"] == 6 and res_whole.metrics["resumed_from_step"] == 0
    assert not Path(res_whole.checkpoint_dir).exists()  # removed once the adapter is written

    raw = tiny_raw(tiny_qwen, data, tmp_path / "killed" / "adapter", **STEPS)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    ckpt_root = tmp_path / "ckpt-killed"
    proc = subprocess.run([sys.executable, "-c", KILLER, str(params_file), str(ckpt_root), "5"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # one thread, as in-process (conftest)
    assert proc.returncode == -9, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert not (tmp_path / "killed" / "adapter").exists()
    [run_dir] = (ckpt_root / "sft_qlora").iterdir()
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    res = train(tiny_params(tiny_qwen, data, tmp_path / "killed" / "adapter", **STEPS).sft_qlora, checkpoint_root=ckpt_root)
    assert res.metrics["resumed_from_step"] == 4 and res.metrics["steps"] == 6
    assert [e["step"] for e in res.loss_curve] == [1, 2, 3, 4, 5, 6]  # the curve spans both sessions
    got = load_adapter(tmp_path / "killed" / "adapter")
    assert got.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(got[k].float(), expected[k].float(), atol=1e-6, rtol=1e-5, msg=k)
    assert res.metrics["train_loss"] == pytest.approx(res_whole.metrics["train_loss"], abs=1e-5)
    assert res.metrics["eval_loss"] == pytest.approx(res_whole.metrics["eval_loss"], abs=1e-5)


def _ckpt(run_dir: Path, step: int, complete: bool = True) -> Path:
    d = run_dir / f"checkpoint-{step}"
    d.mkdir(parents=True)
    for f in ("optimizer.pt", "scheduler.pt", "adapter_model.safetensors"):
        (d / f).write_bytes(b"x")
    (d / "trainer_state.json").write_text(json.dumps({"global_step": step}) if complete else '{"global_st')
    return d


def test_a_torn_checkpoint_is_skipped_and_pruned(tmp_path):
    _ckpt(tmp_path, 2)
    _ckpt(tmp_path, 10)
    torn = _ckpt(tmp_path, 12, complete=False)
    assert resume.last_checkpoint(tmp_path).name == "checkpoint-10"  # numeric order, not lexical
    assert torn.exists()
    assert resume.last_checkpoint(tmp_path, prune=True).name == "checkpoint-10"
    assert not torn.exists()
    assert resume.last_checkpoint(tmp_path / "nothing") is None


def test_checkpoint_key_follows_what_determines_training(tmp_path):
    def key(**kw):
        cfg = tiny_params(tmp_path, tmp_path, tmp_path / "a" / "adapter").sft_qlora.model_copy(update=kw)
        return resume.checkpoint_dir(tmp_path, resume.run_key(cfg, data_sha256={"train": "t"}, model_digest="m",
                                                              accelerate_digest=None))

    assert key() == key(out_dir="elsewhere", metrics="m.json")  # where results go: same training
    assert key() != key(learning_rate=1e-3)
    assert key() != key(seed=7)
