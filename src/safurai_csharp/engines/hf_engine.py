"""`hf` engine: transformers `generate`, batched with left padding.

Slower than vLLM (no paged KV cache, a batch runs until its longest row ends) but needs
nothing beyond transformers, works on any machine and any architecture transformers knows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..dtypes import ENGINE_DTYPES
from .base import Conversation, SamplingConfig, check_seeds, render_chat, stop_at_stop_token


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 arithmetic (AVX512-BF16 or AMX), per oneDNN.

    Without it, bf16 matmuls are emulated and slower than float32.
    """
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str, device: str) -> str:
    """`auto`: bf16 where the hardware computes in bf16, else float16 on GPU / float32 on CPU."""
    import torch

    if dtype not in ENGINE_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(ENGINE_DTYPES)}")
    if dtype != "auto":
        return dtype
    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if cpu_supports_bf16() else "float32"


def _stop_criteria(tokenizer, stops: list[str], prompt_width: int):
    """Ends a row once its *generated* text contains a stop string.

    transformers' built-in `stop_strings` matches the end of prompt + completion, so a prompt
    ending in "{" plus a generated " {" would stop on the stop string "{ {" before MultiPL-E
    would; vLLM, like MultiPL-E, looks at the completion only. Decoding the new tokens of each
    row every step costs milliseconds next to a forward pass.
    """
    import torch
    from transformers import StoppingCriteria

    class StopOnCompletionText(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, prompt_width:], skip_special_tokens=True)
            return torch.tensor([any(s in t for s in stops) for t in texts], device=input_ids.device)

    return StopOnCompletionText()


class HFEngine:
    name = "hf"
    on_progress = None  # base.Progress: called after every batch

    def __init__(self, model_dir: Path, *, dtype: str = "auto", batch_size: int = 32, seed: int = 0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.seed = seed
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        self.model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=getattr(torch, self.dtype), trust_remote_code=False
        ).to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        if self.tokenizer.pad_token_id is None:  # left padding needs some pad id; masked out anyway
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.last_stats: dict[str, Any] = {}

    def _decode(self, prompt_ids: list[int], new_ids: list[int]) -> str:
        """The text the new tokens add to the prompt.

        Decoding prompt + completion and removing the decoded prompt keeps word-boundary
        spaces that some tokenizers (SentencePiece) drop when a suffix is decoded alone.
        """
        tok = self.tokenizer
        prefix = tok.decode(prompt_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        full = tok.decode(prompt_ids + new_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if full.startswith(prefix):
            return full[len(prefix):]
        return tok.decode(new_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _count_generated(self, new_ids: list[int]) -> int:
        # Rows that finished early are padded; count up to and including the first EOS.
        pad = self.tokenizer.pad_token_id
        for i, t in enumerate(new_ids):
            if t in self.eos_ids:
                return i + 1
            if t == pad:
                return i
        return len(new_ids)

    def generate(self, prompts: list[str], sampling: SamplingConfig,
                 seeds: list[int] | None = None) -> list[list[str]]:
        # Special tokens as MultiPL-E and vLLM add them (a BOS for Llama-family tokenizers).
        return self._generate_ids([self.tokenizer(p).input_ids for p in prompts], sampling, seeds)

    def chat(self, conversations: list[Conversation], sampling: SamplingConfig,
             seeds: list[int] | None = None) -> list[list[str]]:
        name = getattr(self.tokenizer, "name_or_path", "the model")
        texts = [render_chat(self.tokenizer, c, name) for c in conversations]
        # The template already wrote its special tokens (see render_chat).
        return self._generate_ids([self.tokenizer(t, add_special_tokens=False).input_ids for t in texts],
                                  sampling, seeds)

    def _generate_ids(self, encoded: list[list[int]], sampling: SamplingConfig,
                      seeds: list[int] | None) -> list[list[str]]:
        """Samples for already tokenized prompts.

        Without seeds (or when greedy, where seeds change nothing) one batch-level
        torch.manual_seed, then batches of similar-length rows: the eval stage's behaviour.

        With seeds, transformers cannot give rows of one batch their own generator, and a
        row's sample depends on its batch (the RNG draws one tensor for all rows, and padding
        shifts the numerics). So each prompt runs alone right after torch.manual_seed(its
        seed), its n samples together: its output depends only on (prompt, seed, sampling).
        Cost: no batching across prompts, so up to batch_size/n times more generate() calls;
        measured on the tiny test model (CPU, 1 thread, 32 prompts, n=1, 32 tokens): 0.10 s
        batched vs 0.98 s seeded. On a GPU the loss approaches batch_size/n; for large
        seeded runs use vllm or openai, which seed each request inside one batch.
        """
        import torch

        check_seeds(seeds, len(encoded))
        start = time.perf_counter()
        # Greedy samples are identical: decode each prompt once and repeat it n times.
        per_prompt = 1 if sampling.greedy else sampling.n
        results: list[list[str]] = [[] for _ in encoded]
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_new_tokens,
                                  "pad_token_id": self.tokenizer.pad_token_id,
                                  "num_return_sequences": per_prompt}
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                          top_k=sampling.top_k or None)
        generated = prompt_tokens = 0
        if seeds is None or sampling.greedy:
            torch.manual_seed(sampling.seed if sampling.seed is not None else self.seed)
            chunk = max(1, self.batch_size // per_prompt)
            # Longest first: rows of similar length share a batch, so less padding is computed.
            order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
            batches = [order[b:b + chunk] for b in range(0, len(order), chunk)]
        else:
            batches = [[i] for i in range(len(encoded))]
        from ..progress import bar

        report = self.on_progress or (lambda done, total, tokens: None)
        done = 0
        report(done, len(encoded), 0)
        with bar(total=len(encoded), desc="Processed prompts", unit="prompt") as pb:
            for idx in batches:
                if seeds is not None and not sampling.greedy:
                    torch.manual_seed(seeds[idx[0]])
                g, p = self._run_batch(idx, encoded, sampling, kwargs, per_prompt, results)
                generated, prompt_tokens = generated + g, prompt_tokens + p
                pb.update(len(idx))
                pb.set_postfix(tokens_per_s=f"{generated / max(1e-9, time.perf_counter() - start):.1f}")
                done += len(idx)
                report(done, len(encoded), generated)
        if sampling.greedy:
            results = [r * sampling.n for r in results]
        self.last_stats = {"engine": self.name, "dtype": self.dtype, "generated_tokens": generated,
                           "prompt_tokens": prompt_tokens, "seconds": time.perf_counter() - start}
        return results

    def _run_batch(self, idx: list[int], encoded: list[list[int]], sampling: SamplingConfig,
                   kwargs: dict[str, Any], per_prompt: int, results: list[list[str]]) -> tuple[int, int]:
        """One model.generate over prompts `idx`; appends their texts to `results`.
        Returns (generated tokens, prompt tokens)."""
        import torch

        batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt").to(self.device)
        width = batch["input_ids"].shape[1]
        stopping = [_stop_criteria(self.tokenizer, sampling.stop, width)] if sampling.stop else []
        with torch.inference_mode():
            out = self.model.generate(**batch, **kwargs, stopping_criteria=stopping)
        generated = 0
        for row, seq in enumerate(out.tolist()):
            i = idx[row // per_prompt]
            new_ids = seq[width:]
            n_new = self._count_generated(new_ids)
            generated += n_new
            text = self._decode(encoded[i], new_ids[:n_new])
            results[i].append(stop_at_stop_token(text, sampling.stop))
        return generated, sum(len(encoded[i]) for i in idx) * per_prompt

    def close(self) -> None:
        """Release the model (nothing runs in other processes)."""
        self.model = None
