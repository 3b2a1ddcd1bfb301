"""Throughput of the C# sandbox vs MultiPL-E's one-mcs-one-mono-per-program method.

Builds problems x completions programs (upstream HumanEval-C# prompts + tests; the
completions come from --completions C.jsonl, or else a deterministic mix written
here: correct, wrong, non-compiling, throwing, a few hacks and a couple of timeouts),
then runs:
  * baseline: plain `mcs` + `mono` per program, no sandbox, verdict as upstream's
    eval_cs.py (stderr scan for DefaultTraceListener.Fail / Unhandled Exception);
  * ours, batched (Executor(batch=True));
  * ours, alone (Executor(batch=False)), unless --skip-alone.
Asserts that batched and alone verdicts are identical and that pass/fail agrees with
the baseline on every program that is not a known upstream hack. Prints JSON.

    python benchmarks/bench_executor.py --workers 2 --samples 10
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from safurai_csharp.csharp import Executor, Limits, Program, Status, build_program

UPSTREAM = Path(__file__).resolve().parents[1] / "../shared/benchmarks/multipl-e/humaneval-cs-reworded.jsonl"

# A few correct solutions (completion bodies), so the mix has passes.
CORRECT = {
    "HumanEval_0_has_close_elements": "        for (int i = 0; i < numbers.Count; i++)\n            for (int j = i + 1; j < numbers.Count; j++)\n                if (Math.Abs(numbers[i] - numbers[j]) < threshold) return true;\n        return false;\n",
    "HumanEval_2_truncate_number": "        return number - (float)Math.Floor(number);\n",
    "HumanEval_13_greatest_common_divisor": "        while (b != 0) { long t = a % b; a = b; b = t; }\n        return a;\n",
    "HumanEval_23_strlen": "        return str.Length;\n",
    "HumanEval_45_triangle_area": "        return (float)(a * h / 2.0);\n",
    "HumanEval_53_add": "        return x + y;\n",
    "HumanEval_55_fib": "        long a = 0, b = 1;\n        for (long i = 0; i < n; i++) { long t = a + b; a = b; b = t; }\n        return a;\n",
    "HumanEval_60_sum_to_n": "        return n * (n + 1) / 2;\n",
    "HumanEval_12_longest": "        if (strings.Count == 0) return null;\n        string best = strings[0];\n        foreach (var s in strings) if (s.Length > best.Length) best = s;\n        return best;\n",
    "HumanEval_100_make_a_pile": "        var r = new List<long>();\n        for (long i = 0; i < n; i++) r.Add(n + 2 * i);\n        return r;\n",
}
HACKS = {  # upstream's harness passes these; ours must not
    "exit0": "        Environment.Exit(0);\n        return default({ret});\n",
}


def _ret_type(prompt: str) -> str:
    return re.findall(r"public static (.+?) \w+\(", prompt)[-1]


def synthetic_completions(row: dict, n: int) -> list[tuple[str, str]]:
    """Deterministic (kind, completion) mix for one problem."""
    ret = _ret_type(row["prompt"])
    h = int(hashlib.sha256(row["name"].encode()).hexdigest(), 16)
    out = []
    for k in range(n):
        r = (h >> (3 * k)) % 20
        if row["name"] in CORRECT and k % 2 == 0:
            out.append(("correct", CORRECT[row["name"]]))
        elif r < 9:
            out.append(("wrong", f"        return default({ret});\n"))
        elif r < 11:
            out.append(("compile_error", f"        return undefinedName{k};\n"))
        elif r < 13:
            out.append(("syntax_error", "        return (;\n"))
        elif r < 17:
            out.append(("exception", "        throw new NotImplementedException();\n"))
        elif r < 19:
            out.append(("prints", f'        Console.WriteLine("thinking {k}");\n        return default({ret});\n'))
        else:
            out.append(("exit0", HACKS["exit0"].format(ret=ret)))
    return out


def build(upstream: list[dict], samples: int, completions: dict | None, timeouts: int) -> list[tuple[str, Program]]:
    progs = []
    for row in upstream:
        if completions is not None:
            pairs = [("given", c) for c in completions.get(row["name"], [])[:samples]]
        else:
            pairs = synthetic_completions(row, samples)
        for kind, comp in pairs:
            progs.append((kind, Program(row["prompt"], comp, row["tests"], "official", row["name"])))
    for t in range(min(timeouts, len(progs))):  # a couple of infinite loops
        kind, p = progs[(t * 7919) % len(progs)]
        progs[(t * 7919) % len(progs)] = ("timeout", Program(p.prompt, "        while (true) { }\n", p.tests, "official", p.name))
    return progs


def baseline_one(prog: Program, workdir: Path, i: int, timeout_s: float) -> str:
    """MultiPL-E eval_cs.py semantics, with mcs in place of csc."""
    src = workdir / f"p{i}.cs"
    exe = workdir / f"p{i}.exe"
    src.write_text(build_program(prog.prompt, prog.completion, prog.tests, "official"))
    b = subprocess.run(["mcs", "-d:DEBUG", "-r:System.Numerics.dll", str(src), f"-out:{exe}"], capture_output=True)
    if b.returncode != 0:
        return "SyntaxError"
    try:
        r = subprocess.run(
            ["mono", str(exe)],
            env={"PATH": os.environ["PATH"], "MONO_TRACE_LISTENER": "Console.Error"},
            capture_output=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return "Timeout"
    finally:
        exe.unlink(missing_ok=True)
    err = r.stderr.decode("utf-8", "replace")
    fail = "System.Diagnostics.DefaultTraceListener.Fail" in err or "Unhandled Exception" in err
    return "Exception" if fail else "OK"


def run_baseline(programs: list[Program], workers: int, timeout_s: float) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as d:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda ip: baseline_one(ip[1], Path(d), ip[0], timeout_s), enumerate(programs)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", type=Path, default=UPSTREAM)
    ap.add_argument("--completions", type=Path, help="jsonl lines {name, completions: [...]}")
    ap.add_argument("--problems", type=int, default=158)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0, help="per-program wall time (upstream: 5 s)")
    ap.add_argument("--timeouts", type=int, default=2, help="infinite loops planted in the synthetic mix")
    ap.add_argument("--batch-size", type=int, default=160)
    ap.add_argument("--skip-alone", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    a = ap.parse_args(argv)

    upstream = [json.loads(l) for l in a.benchmark.read_text().splitlines() if l.strip()][: a.problems]
    comps = None
    if a.completions:
        comps = {}
        for l in a.completions.read_text().splitlines():
            if l.strip():
                d = json.loads(l)
                comps[d["name"]] = d["completions"]
    items = build(upstream, a.samples, comps, 0 if comps is not None else a.timeouts)
    kinds = [k for k, _ in items]
    programs = [p for _, p in items]
    limits = Limits(timeout_s=a.timeout)
    report: dict = {"programs": len(programs), "workers": a.workers, "timeout_s": a.timeout,
                    "batch_size": a.batch_size, "mix": dict(collections.Counter(kinds)),
                    "loadavg_1m_start": round(os.getloadavg()[0], 2)}

    t0 = time.monotonic()
    ours = Executor(limits, workers=a.workers, batch=True, batch_size=a.batch_size).run(programs)
    report["ours_batch_s"] = round(time.monotonic() - t0, 2)
    report["ours_status"] = dict(collections.Counter(r.status.value for r in ours))
    report["ours_from_batch"] = sum(r.batched for r in ours)

    if not a.skip_alone:
        t0 = time.monotonic()
        alone = Executor(limits, workers=a.workers, batch=False).run(programs)
        report["ours_alone_s"] = round(time.monotonic() - t0, 2)
        diff = [i for i, (x, y) in enumerate(zip(ours, alone)) if x.status != y.status]
        report["batch_vs_alone_mismatches"] = len(diff)
        report["speedup_batch_vs_alone"] = round(report["ours_alone_s"] / report["ours_batch_s"], 2)

    if not a.skip_baseline:
        t0 = time.monotonic()
        base = run_baseline(programs, a.workers, a.timeout)
        report["baseline_s"] = round(time.monotonic() - t0, 2)
        report["baseline_status"] = dict(collections.Counter(base))
        honest = [i for i, k in enumerate(kinds) if k not in HACKS]
        disagree = [i for i in honest if (base[i] == "OK") != ours[i].passed]
        hacks_passed_upstream = sum(1 for i, k in enumerate(kinds) if k in HACKS and base[i] == "OK")
        report["pass_fail_disagreements_on_honest"] = len(disagree)
        # our compiles go through the warm in-process compiler: same verdicts as a fresh mcs?
        report["compile_error_vs_baseline_mismatches"] = sum(
            1 for b, o in zip(base, ours) if (b == "SyntaxError") != (o.status is Status.COMPILE_ERROR))
        report["disagreement_examples"] = [
            {"name": programs[i].name, "kind": kinds[i], "baseline": base[i], "ours": ours[i].status.value}
            for i in disagree[:5]
        ]
        report["hacks_passed_by_baseline"] = hacks_passed_upstream
        report["hacks_passed_by_ours"] = sum(1 for i, k in enumerate(kinds) if k in HACKS and ours[i].passed)
        report["speedup_vs_baseline"] = round(report["baseline_s"] / report["ours_batch_s"], 2)
    report["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report))
    ok = report.get("batch_vs_alone_mismatches", 0) == 0 and report.get("pass_fail_disagreements_on_honest", 0) == 0
    ok = ok and report.get("compile_error_vs_baseline_mismatches", 0) == 0
    ok = ok and report.get("hacks_passed_by_ours", 0) == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
