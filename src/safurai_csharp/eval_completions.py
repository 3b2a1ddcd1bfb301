"""`safurai-csharp eval-completions`: score completions made elsewhere (any model, any harness)
against a MultiPL-E C# benchmark file, in the project's sandbox, in one mode.

Input errors (unknown problem, malformed JSON, missing toolchain) are reported before
anything runs and nothing is written; the result file is written atomically at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .config import SandboxParams
from .errors import EvaluationInputError
from .evaluation import MODES, check_problems, match_completions, score
from .jsonl import read_jsonl, write_jsonl


def check_paths(benchmark: str, completions: str, out: str | None) -> None:
    """Refuse, before anything runs, an --out that would overwrite an input or cannot be written."""
    if out is None:
        return
    target = Path(out)
    if target.is_dir():
        raise EvaluationInputError(f"--out {out} is a directory; give a file path")
    for flag, path in (("--completions", completions), ("--benchmark", benchmark)):
        if target.resolve() == Path(path).resolve():
            raise EvaluationInputError(f"--out is the same file as {flag} ({path}): it would overwrite the input")


def run(args: argparse.Namespace) -> dict:
    from .csharp import make_executor

    check_paths(args.benchmark, args.completions, args.out)
    problems = read_jsonl(args.benchmark)
    check_problems(problems, args.benchmark)
    if not problems:
        raise EvaluationInputError(f"{args.benchmark}: no problems")
    rows = read_jsonl(args.completions)
    if not rows:
        raise EvaluationInputError(f"{args.completions}: no completions (an empty file scores nothing)")
    matched = match_completions(problems, rows)
    by_name = {p["name"]: (p, c) for p, c in zip(problems, matched)}
    # Score in the completions file's order: R.jsonl lines follow the input lines.
    order = [by_name[r["name"]] for r in rows]
    sandbox = SandboxParams(workers=args.workers, batch=not args.no_batch, timeout_s=args.timeout_s)
    executor = make_executor(sandbox)
    outcome = score([p for p, _ in order], [c for _, c in order], args.mode, executor)
    if args.out:
        write_jsonl(args.out, ({"name": p["name"], "results": res}
                               for (p, _), res in zip(order, outcome.results)))
    return outcome.summary


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-completions", help="score a completions jsonl against a MultiPL-E C# benchmark")
    p.add_argument("--benchmark", required=True, help="MultiPL-E jsonl (name, prompt, tests, ...)")
    p.add_argument("--completions", required=True,
                   help='jsonl, one line per problem: {"name": ..., "completions": [...]}')
    p.add_argument("--mode", choices=MODES, default="corrected")
    p.add_argument("--out", help="per-problem results jsonl (written only on success)")
    p.add_argument("--workers", type=_positive(int), default=SandboxParams().workers)
    p.add_argument("--timeout-s", type=_positive(float), default=SandboxParams().timeout_s)
    p.add_argument("--no-batch", action="store_true",
                   help="one compile and one run per program (slow; verdicts are the same)")

    def _main(a: argparse.Namespace) -> None:
        summary = run(a)
        sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")

    p.set_defaults(func=_main)
