"""One Evol-Instruct round on a fixed pool of parents: what it costs and what it keeps.

    python benchmarks/bench_evolve.py                                   # params.yaml, round 1's parents
    python benchmarks/bench_evolve.py --parents data/filtered/examples.jsonl -S evolve.recipe=decomposed

The round runs as stage evolve runs it (evolve_round: the teacher's calls, then the execution
check, heuristics and decontamination), with a fresh checkpoint directory (nothing resumed).
It prints the round's metrics: kept examples, why the others were eliminated, the teacher's
tokens and seconds, and kept examples per minute and tokens per kept example (the sandbox
work of the round counted in its minutes). `-S key=value` overrides params like `dvc exp run -S`.
Run it on an idle machine: the load average before and after is printed with the result.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from bench_generate import ROOT, emit, load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--parents", help="the parent pool (jsonl); default: round --round's parent in params")
    ap.add_argument("--round", type=int, default=1, help="the round number (it seeds the method draws)")
    ap.add_argument("-S", "--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    ap.add_argument("--out", help="also write the result JSON here")
    ap.add_argument("--pool", help="also write the round's pool (jsonl) here")
    a = ap.parse_args()

    from safurai_csharp.jsonl import read_jsonl, write_jsonl
    from safurai_csharp.stages.evolve import evolve_round

    params = load(Path(a.params), a.sets)
    parents_path = a.parents or params.evolve.rounds[str(a.round)].parent
    parents = read_jsonl(parents_path)
    result: dict = {"parents": parents_path, "round": a.round, "overrides": a.sets,
                    "cpus": len(os.sched_getaffinity(0)), "machine": platform.processor() or platform.machine(),
                    "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        pool, metrics = evolve_round(parents, a.round, params.evolve, params.teacher, params.filter, params.generate,
                                     params.sandbox, params.benchmark.evaluation_files(), checkpoint_root=Path(tmp))
        result["wall_s_with_startup"] = round(time.perf_counter() - start, 1)
    if a.pool:
        write_jsonl(a.pool, pool)
    result["metrics"] = metrics
    emit(result, a.out)


if __name__ == "__main__":
    main()
