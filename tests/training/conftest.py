from pathlib import Path

import pytest


def make_tiny_llama(out_dir: Path, seed: int = 0) -> Path:
    """A 2-layer Llama (no bias on any linear layer, like SmolLM2) with the tiny tokenizer: the
    architecture on which bitsandbytes' CPU repacking corrupts gradients silently."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from safurai_csharp.testing import make_tiny_tokenizer

    tok = make_tiny_tokenizer()
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
                      bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run ~50x faster on one thread than on two on a busy 2-core machine (OpenMP
    threads of a few-microsecond op wait on each other); subprocesses get OMP_NUM_THREADS=1."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> Path:
    from safurai_csharp.testing import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-qwen") / "model")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model")


ROOT = Path(__file__).resolve().parents[2]


def sft_rows(n: int, seed: int = 0) -> list[dict]:
    """Records in stage sft_data's exact format (prompt/completion/messages...), all distinct."""
    import random

    from safurai_csharp.synth.sft_format import rows as sft_rows_of

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        body = "".join(f"        total += xs[{j}];\n" for j in range(rng.randint(1, 6)))
        ex = {"id": f"ex{i}", "tests": "Debug.Assert(Sum(new List<long>()) == 0);",
              "instruction": f"Write a C# method Sum{i} that adds the first numbers of a list."
                             + " Return a long." * rng.randint(0, 4),
              "solution": f"public static long Sum{i}(List<long> xs) {{\n        long total = 0;\n{body}"
                          f"        return total;\n}}"}
        rows.append(sft_rows_of(ex, ["alpaca"])[0])
    return rows


def write_sft_data(data_dir: Path, train: int = 16, validation: int = 4) -> Path:
    import json

    rows = sft_rows(train + validation)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:train]))
    (data_dir / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[train:]))
    return data_dir


def tiny_raw(model_dir: Path, data_dir: Path, out_dir: Path, **sft) -> dict:
    """configs/tiny.yaml as a dict, sft_qlora pointed at the test's model and data (+ overrides)."""
    import yaml

    raw = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    raw["sft_qlora"].update({"model_dir": str(model_dir), "data_dir": str(data_dir), "out_dir": str(out_dir),
                             "metrics": str(out_dir.parent / "train.json"),
                             "loss_plot": str(out_dir.parent / "train_loss.json")})
    for k, v in sft.items():
        raw["sft_qlora"][k] = {**raw["sft_qlora"][k], **v} if isinstance(v, dict) else v
    if not raw["sft_qlora"]["quantization"]["enabled"] and "merge" in raw:
        raw["merge"]["into"] = "original"  # merge's rule: a 16-bit LoRA has no NF4 weights to merge into
    return raw


def tiny_params(model_dir: Path, data_dir: Path, out_dir: Path, **sft):
    from safurai_csharp.config import parse_params

    return parse_params(tiny_raw(model_dir, data_dir, out_dir, **sft))
