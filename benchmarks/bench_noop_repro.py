"""Cost of asking DVC "anything to do?" on an up-to-date project: `dvc status` and a no-op
`dvc repro`, median of N runs each. Both hash-check every dep and out of every stage (DVC's
state db skips files whose inode/mtime/size it has seen), so this is the fixed overhead every
`dvc repro`, `dvc exp run` and `make repro` pays before any stage runs.

    python benchmarks/bench_noop_repro.py                      # the repository itself
    python benchmarks/bench_noop_repro.py --project DIR --runs 7

Never runs a stage: it stops (exit 2) if `dvc status` reports anything changed, and fails
(exit 1) if a timed `dvc repro` ran one. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dvc_executable() -> str:
    here = Path(sys.executable).parent / "dvc"  # the venv's, even when it is not on PATH
    return str(here) if here.exists() else (shutil.which("dvc") or "dvc")


def run(dvc: str, args: list[str], project: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    start = time.perf_counter()
    out = subprocess.run([dvc, *args], cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"dvc {' '.join(args)} failed in {project} (exit {out.returncode}):\n{out.stdout}{out.stderr}")
    return seconds, out


def summary(times: list[float]) -> dict:
    return {"median": round(statistics.median(times), 3), "min": round(min(times), 3),
            "max": round(max(times), 3), "runs": [round(t, 3) for t in times]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", type=Path, default=ROOT, help="a DVC project, up to date (default: this repository)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each command (default 5)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    project = args.project.resolve()
    dvc = dvc_executable()

    # The up-to-date check doubles as the warm-up (page cache, DVC's state db): its time is
    # reported apart, the timed runs measure the steady state.
    first, out = run(dvc, ["status", "--json"], project)
    changed = json.loads(out.stdout)
    if changed:
        print(f"{project} is not up to date ({', '.join(changed)}): run `dvc repro` first; "
              "this benchmark never runs a stage", file=sys.stderr)
        sys.exit(2)

    status_s, repro_s = [], []
    for _ in range(args.runs):
        seconds, _ = run(dvc, ["status"], project)
        status_s.append(seconds)
        seconds, out = run(dvc, ["repro"], project)
        ran = re.findall(r"^Running stage '([^']+)'", out.stdout + out.stderr, re.M)
        if ran:
            sys.exit(f"dvc repro ran {', '.join(ran)} in {project}: not a no-op, the timing is meaningless")
        repro_s.append(seconds)

    _, stages = run(dvc, ["stage", "list", "--name-only"], project)
    _, version = run(dvc, ["--version"], project)
    print(json.dumps({
        "project": str(project),
        "dvc": version.stdout.strip(),
        "stages": len(stages.stdout.split()),
        "first_status_s": round(first, 3),  # the check: cold caches, closer to a fresh shell
        "status_s": summary(status_s),
        "repro_noop_s": summary(repro_s),
    }, indent=2))


if __name__ == "__main__":
    main()
