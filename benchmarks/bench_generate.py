"""The data stages against the engine they run on: raw vLLM tokens/s on the generate stage's
own first-turn prompts and sampling, the stage's tokens/s on the same tasks (repair turns and
sandbox included), their ratio, and validated examples per minute through the real filter.

    python benchmarks/bench_generate.py                                   # params.yaml, 64 tasks
    python benchmarks/bench_generate.py --tasks 128 -S generate.fewshot=0 --out results.json

`-S key=value` overrides params like `dvc exp run -S` (values are YAML). The stage runs with a
fresh checkpoint directory (nothing resumed); the filter runs every step of params.yaml on its
records. Engine start-up is timed apart from generation. Run it on an idle machine: the load
average before and after is printed with the result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load(params_path: Path, sets: list[str], tasks: int | None = None):
    """params.yaml with `-S key=value` overrides (and generate.num_tasks = tasks, when given)."""
    from safurai_csharp.config import parse_params

    raw = yaml.safe_load(params_path.read_text())
    for item in sets:
        key, _, value = item.partition("=")
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = yaml.safe_load(value)
    if tasks is not None:
        raw["generate"]["num_tasks"] = tasks
    return parse_params(raw, str(params_path))


def raw_engine(params) -> dict:
    """One engine call over every first-turn prompt of the run: what the engine can do."""
    from safurai_csharp.engines import SamplingConfig
    from safurai_csharp.synth.data import load_fewshot, load_taxonomy
    from safurai_csharp.synth.prompts import generation_messages, task_seed, task_spec
    from safurai_csharp.synth.teacher import open_teacher

    cfg = params.generate
    taxonomy, fewshot = load_taxonomy(), load_fewshot()
    convs = [generation_messages(task_spec(i, cfg.seed, taxonomy, fewshot, cfg.fewshot), fewshot)
             for i in range(cfg.num_tasks)]
    seeds = [task_seed(cfg.seed, i) for i in range(cfg.num_tasks)]
    start = time.perf_counter()
    engine = open_teacher(params.teacher, cfg.seed)
    startup = time.perf_counter() - start
    sampler = SamplingConfig(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                             max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    engine.chat(convs, sampler, seeds=seeds)
    s = engine.last_stats
    engine.close()
    return {"startup_s": round(startup, 1), "generated_tokens": s["generated_tokens"],
            "prompt_tokens": s.get("prompt_tokens"), "seconds": round(s["seconds"], 2),
            "tokens_per_s": round(s["generated_tokens"] / s["seconds"], 1)}


def stage(params, records_out: str | None = None) -> dict:
    from safurai_csharp.stages.filter import filter_records
    from safurai_csharp.stages.generate import generate
    from safurai_csharp.synth import cost

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        records, gen = generate(params.generate, params.teacher, params.sandbox, checkpoint_root=Path(tmp))
        wall = time.perf_counter() - start
    if records_out:
        from safurai_csharp.jsonl import write_jsonl

        write_jsonl(records_out, records)
    start = time.perf_counter()
    kept, funnel = filter_records(records, params.filter, params.teacher, params.sandbox, params.benchmark.out)
    filter_s = time.perf_counter() - start
    return {"generation": gen, "wall_s_with_startup": round(wall, 1), "filter_s": round(filter_s, 1),
            "funnel": {f["step"]: f["kept"] for f in funnel},
            "dropped": {f["step"]: f["dropped"] for f in funnel if f["dropped"]},
            "cost": cost.per_kept(len(kept), gen["generated_tokens"], gen["seconds"] + filter_s)}


def emit(result: dict, out: str | None) -> None:
    """The result with the load average after the run, printed and (with --out) written."""
    result["load_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--tasks", type=int, default=64)
    ap.add_argument("-S", "--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    ap.add_argument("--skip-raw", action="store_true", help="stage only (no raw-engine pass)")
    ap.add_argument("--raw-only", action="store_true", help="raw-engine pass only (sampling, batch probes)")
    ap.add_argument("--out", help="also write the result JSON here")
    ap.add_argument("--records", help="also write the generated records (jsonl) here")
    a = ap.parse_args()
    params = load(Path(a.params), a.sets, a.tasks)
    result: dict = {"tasks": a.tasks, "overrides": a.sets, "cpus": len(os.sched_getaffinity(0)),
                    "machine": platform.processor() or platform.machine(), "load_before": os.getloadavg()}
    if not a.skip_raw:
        result["raw"] = raw_engine(params)
        print("RAW " + json.dumps(result["raw"]), flush=True)  # kept even if the stage run fails
    if not a.raw_only:
        result["stage"] = stage(params, a.records)
    if "raw" in result and "stage" in result:
        result["ratio_stage_to_raw"] = round(result["stage"]["generation"]["tokens_per_s"]
                                             / result["raw"]["tokens_per_s"], 3)
    emit(result, a.out)


if __name__ == "__main__":
    main()
