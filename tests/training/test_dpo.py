"""Preference training (training/dpo.py) on a tiny model: the pairs reach TRL tokenized as
sft_qlora tokenizes completion rows (no EOS after a method body unless completion_eos), the
adapter sft_qlora wrote moves towards the chosen answers, and only that adapter is saved."""

import json

import pytest

pytest.importorskip("torch")

from conftest import tiny_params, write_sft_data  # noqa: E402

from safurai_csharp.training.dpo import save_adapter, tokenize_pairs, train_dpo  # noqa: E402
from safurai_csharp.training.trainer import train  # noqa: E402

PROMPT = "class Problem {\n    // Add one to x.\n    public static long F(long x) {"


def pairs(n: int) -> list[dict]:
    return [{"id": f"t{i}:0>1", "task_id": f"t{i}", "prompt": PROMPT.replace("one", f"{i}"),
             "chosen": f"\n        return x + {i};\n    }}\n", "rejected": f"\n        return x - {i};\n    }}\n"}
            for i in range(n)]


def test_pairs_are_tokenized_like_completion_rows(tiny_qwen):
    from safurai_csharp.training.data import tokenize_rows
    from safurai_csharp.training.model import load_tokenizer

    tok = load_tokenizer(tiny_qwen)
    pair = pairs(1)[0]
    without = tokenize_pairs([pair], tok, completion_eos=False)[0]
    row = tokenize_rows([{"prompt": pair["prompt"], "completion": pair["chosen"], "format": "completion"}], tok,
                        completion_eos=False).rows[0]
    assert without["prompt_ids"] + without["chosen_ids"] == row["input_ids"]
    assert tok.decode(without["prompt_ids"]) == pair["prompt"]  # the prompt alone, as inference sees it
    assert tok.decode(without["rejected_ids"]) == pair["rejected"]
    assert tok.eos_token_id not in without["chosen_ids"] + without["rejected_ids"]
    with_eos = tokenize_pairs([pair], tok, completion_eos=True)[0]
    assert with_eos["chosen_ids"][-1] == with_eos["rejected_ids"][-1] == tok.eos_token_id


def test_dpo_moves_the_sft_adapter_towards_the_chosen_answers(tmp_path, tiny_qwen):
    import torch
    from safetensors.torch import load_file

    data = write_sft_data(tmp_path / "data", train=4, validation=0)
    adapter = tmp_path / "models" / "adapter"
    params = tiny_params(tiny_qwen, data, adapter, max_steps=1, completion_eos=False)
    train(params.sft_qlora, checkpoint_root=tmp_path / "ckpt")
    cfg = params.dpo.model_copy(update={"enabled": True, "learning_rate": 5e-3, "epochs": 3.0,
                                        "micro_batch_size": 2, "gradient_accumulation_steps": 1})
    result, trainer = train_dpo(cfg, params.sft_qlora, pairs(4), checkpoint_root=tmp_path / "ckpt")
    m = result.metrics
    assert m["pairs"] == 4 and m["steps"] == 6 and m["epochs"] == pytest.approx(3.0)
    assert m["reward_margin"] > 0  # the chosen answers gained on the rejected ones against the reference
    assert [e["step"] for e in result.loss_curve] == list(range(1, 7))
    # the prepared dataset is ours: no EOS after the bodies (TRL would have appended one)
    assert all(tok[-1] != trainer.processing_class.eos_token_id for tok in trainer.train_dataset["chosen_ids"])
    out = tmp_path / "models" / "adapter_dpo"
    save_adapter(trainer, out)
    assert not (out / "ref").exists()  # TRL's frozen reference copy is not part of the output
    before, after = load_file(adapter / "adapter_model.safetensors"), load_file(out / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert json.loads((out / "adapter_config.json").read_text())["r"] == params.sft_qlora.lora.r


def test_no_pairs_is_an_error_that_says_what_to_do(tmp_path, tiny_qwen):
    params = tiny_params(tiny_qwen, tmp_path / "data", tmp_path / "adapter")
    with pytest.raises(ValueError, match="no preference pairs"):
        train_dpo(params.dpo, params.sft_qlora, [], checkpoint_root=tmp_path / "ckpt")
