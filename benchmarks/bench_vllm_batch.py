"""vLLM's decode throughput against the number of sequences in flight: why the data stages
batch a whole chunk of tasks per engine call (docs/data.md D14).

    python benchmarks/bench_vllm_batch.py                             # models/teacher, 32,128,512
    python benchmarks/bench_vllm_batch.py --sizes 32,128 --compiled   # enforce_eager false

One engine (the teacher's engine options from params.yaml, every core bound as the stages
bind them, max_num_seqs the largest size), then one `LLM.generate` per size over that many
of the benchmark's stripped prompts (repeated when there are fewer), each sampled at the
generate stage's temperature and top_k with its own seed for `--max-new-tokens` tokens
(`ignore_eos`: every sequence decodes to the end, so the batch stays full). Prints JSON:
tokens/s per size, engine start-up seconds and the load average. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--model", help="checkpoint directory (default: params teacher.model_dir)")
    ap.add_argument("--benchmark", default=str(ROOT / "data/benchmark/humaneval-cs.jsonl"))
    ap.add_argument("--sizes", default="32,128,512", help="sequences in flight, comma-separated")
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--compiled", action="store_true", help="enforce_eager false (torch.compile on CPU)")
    a = ap.parse_args()

    from safurai_csharp.config import load_params
    from safurai_csharp.engines import strip_prompt
    from safurai_csharp.engines.vllm_engine import use_all_cpus
    from safurai_csharp.jsonl import read_jsonl

    params = load_params(Path(a.params))
    opts = params.teacher.engine_options.vllm
    gen = params.generate
    sizes = [int(s) for s in a.sizes.split(",")]
    use_all_cpus()
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    from vllm import LLM, SamplingParams

    start = time.perf_counter()
    llm = LLM(model=a.model or str(ROOT / params.teacher.model_dir), dtype=opts.dtype, seed=0,
              max_model_len=opts.max_model_len, enforce_eager=not a.compiled, max_num_seqs=max(sizes),
              gpu_memory_utilization=opts.gpu_memory_utilization,
              kv_cache_memory_bytes=None if opts.kv_cache_gib is None else int(opts.kv_cache_gib * 2**30),
              enable_chunked_prefill=False, max_num_batched_tokens=max(opts.max_model_len, 8192))
    startup = time.perf_counter() - start
    prompts = [strip_prompt(p["prompt"]) for p in read_jsonl(a.benchmark)]
    llm.generate(prompts[:4], SamplingParams(max_tokens=8), use_tqdm=False)  # warm-up
    runs = []
    for size in sizes:
        batch = (prompts * (size // len(prompts) + 1))[:size]
        sampling = [SamplingParams(temperature=gen.temperature, top_k=gen.top_k, top_p=gen.top_p, seed=i,
                                   max_tokens=a.max_new_tokens, ignore_eos=True) for i in range(size)]
        t = time.perf_counter()
        outs = llm.generate(batch, sampling, use_tqdm=False)
        seconds = time.perf_counter() - t
        tokens = sum(len(o.outputs[0].token_ids) for o in outs)
        runs.append({"sequences": size, "generated_tokens": tokens, "seconds": round(seconds, 1),
                     "tokens_per_s": round(tokens / seconds, 1), "load_average": os.getloadavg()})
    print(json.dumps({"compiled": a.compiled, "max_new_tokens": a.max_new_tokens, "startup_s": round(startup, 1),
                      "cpus": len(os.sched_getaffinity(0)), "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
