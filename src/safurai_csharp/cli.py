"""`safurai-csharp`: one subcommand per DVC stage, plus the tools users run by hand."""

from __future__ import annotations

import argparse
import sys

from . import eval_completions, lineage, power, results_page
from .stages import benchmark, eval_multipl_e, evolve, filter, generate, prepare_base, prepare_teacher, sft_data
from .stages import eval_dev, merge, promote, report, self_sample, split
from .stages import dpo, sft_qlora

COMMANDS = (prepare_base, benchmark, prepare_teacher, generate, filter, evolve, split, self_sample, sft_data,
            sft_qlora, dpo, merge, eval_multipl_e, eval_dev, eval_completions, promote, report, lineage,
            results_page, power)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="safurai-csharp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    sub.add_parser("check-params", help="validate params.yaml against the schema").set_defaults(
        func=lambda a: print(f"{a.params}: ok") if _load(a.params) else None)
    sub.choices["check-params"].add_argument("--params", default="params.yaml")
    return parser


def _load(path: str):
    from .config import load_params

    return load_params(path)


def main(argv: list[str] | None = None) -> int:
    from .errors import UserError

    from .progress import quiet_logs

    quiet_logs()  # progress bars: one line every 30 s in a log, live on a terminal
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (UserError, FileNotFoundError) as exc:  # errors.py: what the user can fix, in one line
        if isinstance(exc, FileNotFoundError) and exc.filename:  # an input an earlier stage writes
            exc = f"{exc.filename}: no such file or directory (has the stage that writes it run?)"
        print(f"safurai-csharp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
