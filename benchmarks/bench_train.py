"""Training speed and memory of stage sft_qlora's recipe: 4-bit QLoRA vs 16-bit LoRA.

Runs the stage's own trainer (training/trainer.py: same loading, 4-bit guard, LoRA, packing,
gradient checkpointing) for a few optimizer steps on synthetic prompt/completion rows in the
format of stage sft_data, each mode in a fresh process (so peak RSS is that mode's alone),
and prints JSON: tokens/s and seconds per step (the first step, warm-up, excluded), peak RSS,
RSS after loading.

    python benchmarks/bench_train.py                       # models/base, params.yaml's sft_qlora
    python benchmarks/bench_train.py --model /tmp/models/qwen05 --steps 10 --seq-len 512

Everything not given on the command line (LoRA r/alpha/targets, compute dtype, packing,
gradient checkpointing, micro-batch) comes from params.yaml's sft_qlora section.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def synthetic_rows(n: int, target_tokens: int) -> list[dict]:
    """Alpaca prompt + ```csharp completion, ~target_tokens each (4 chars/token is close for code)."""
    from safurai_csharp.synth.sft_format import rows as sft_rows_of

    rows = []
    for i in range(n):
        lines = [f"        if (xs[i] % {k + 2} == {k % 3}) total += xs[i] * {k + i};"
                 for k in range(target_tokens // 14)]
        body = "\n".join(lines)
        rows.append(sft_rows_of({
            "id": f"bench{i}", "tests": "",
            "instruction": f"Write a C# method Score{i}(List<long> xs) that adds up weighted elements of xs "
                           f"according to the divisibility rules below, and returns the total as a long.",
            "solution": f"public static long Score{i}(List<long> xs) {{\n    long total = 0;\n"
                        f"    for (int i = 0; i < xs.Count; i++) {{\n{body}\n    }}\n    return total;\n}}"}, ["alpaca"])[0])
    return rows


class AnonPeak(threading.Thread):
    """Peak of RssAnon (this process's own memory, without the page cache of the mmap'd
    checkpoint that RSS also counts), sampled every 50 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0

    @staticmethod
    def now_kb() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        return 0

    def run(self) -> None:
        while True:
            self.peak_kb = max(self.peak_kb, self.now_kb())
            time.sleep(0.05)


def run_one(args: argparse.Namespace) -> dict:
    import psutil
    import torch
    from transformers import TrainerCallback

    from safurai_csharp.config import parse_params
    from safurai_csharp.training.trainer import prepare

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = work / "sft"
    data.mkdir()
    rows = synthetic_rows(args.micro_batch * args.steps * 3 + 8, args.seq_len // 2)
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = yaml.safe_load(Path(args.params).read_text())
    sft = raw["sft_qlora"]
    sft.update(model_dir=str(args.model), data_dir=str(data), out_dir=str(work / "adapter"), max_steps=args.steps,
               max_seq_length=args.seq_len, micro_batch_size=args.micro_batch, gradient_accumulation_steps=args.accum,
               save_steps=10**6, eval_steps=10**6, logging_steps=1, accelerate_config=None, epochs=100.0)
    sft["quantization"]["enabled"] = args.mode == "4bit"
    if args.mode != "4bit":
        sft["quantization"]["quant_storage"] = None
        raw.get("merge", {})["into"] = "original"
    params = parse_params(raw)

    if args.threads:
        torch.set_num_threads(args.threads)
    steps: list[tuple[float, float, int]] = []  # (wall s, process CPU s, tokens) per optimizer step

    class Clock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            self.t, self.c, self.tok = time.perf_counter(), time.process_time(), trainer._total_train_tokens

        def on_step_end(self, a, state, control, **kw):
            steps.append((time.perf_counter() - self.t, time.process_time() - self.c,
                          trainer._total_train_tokens - self.tok))

    anon = AnonPeak()
    anon.start()
    t0 = time.perf_counter()
    prep = prepare(params.sft_qlora, checkpoint_root=work / "ckpt", callbacks=[Clock()])
    trainer = prep.trainer
    load_s = time.perf_counter() - t0
    rss_loaded = psutil.Process().memory_info().rss / 2**20
    trainer.train()
    timed = steps[1:] or steps  # the first step warms up kernels and allocator
    secs, cpu, toks = (sum(x[i] for x in timed) for i in range(3))
    return {
        "mode": args.mode, "model": str(args.model), "steps": len(steps), "seq_len": args.seq_len,
        "micro_batch": args.micro_batch, "accumulation": args.accum,
        "compute_dtype": params.sft_qlora.quantization.compute_dtype,
        "gradient_checkpointing": params.sft_qlora.gradient_checkpointing, "lora_r": params.sft_qlora.lora.r,
        "tokens_per_step": round(toks / len(timed)), "tokens_per_s": round(toks / secs, 1),
        "s_per_step_median": round(statistics.median(x[0] for x in timed), 2),
        # CPU seconds of this process: on a machine shared with other jobs, tokens per CPU-second
        # is the steadier number (wall-clock speed = it x the cores the process really got)
        "tokens_per_cpu_s": round(toks / cpu, 1), "cpu_share": round(cpu / secs, 2),
        "first_step_s": round(steps[0][0], 2), "load_s": round(load_s, 1),
        "rss_after_load_mb": round(rss_loaded),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_anon_mb": round(anon.peak_kb / 1024),
        "params_mb": round(sum(p.numel() * p.element_size() for p in trainer.model.parameters()) / 2**20),
        "final_loss": next((e["loss"] for e in reversed(trainer.state.log_history) if "loss" in e), None),
        "torch_threads": torch.get_num_threads(), "load_average": [round(x, 1) for x in os.getloadavg()],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/base", help="a transformers checkpoint directory")
    p.add_argument("--params", default=str(ROOT / "params.yaml"))
    p.add_argument("--modes", default="4bit,16bit", help="comma list of 4bit, 16bit")
    p.add_argument("--steps", type=int, default=10, help="optimizer steps per mode")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--micro-batch", type=int, default=2)
    p.add_argument("--accum", type=int, default=1, help="gradient accumulation (1: a step = one forward/backward)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, one per core)")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--mode", help=argparse.SUPPRESS)  # internal: run one mode in this process
    args = p.parse_args()
    if args.mode:
        print("BENCH " + json.dumps(run_one(args)), flush=True)
        return
    results = []
    for mode in args.modes.split(","):
        cmd = [sys.executable, __file__, "--mode", mode, "--model", args.model, "--params", args.params,
               "--steps", str(args.steps), "--seq-len", str(args.seq_len), "--micro-batch", str(args.micro_batch),
               "--accum", str(args.accum), "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
        if out.returncode != 0 or line is None:
            sys.exit(f"{mode} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
        results.append(json.loads(line[6:]))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
