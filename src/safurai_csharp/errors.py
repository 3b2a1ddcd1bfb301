"""The one base class for errors a user can act on.

`cli.main` catches `UserError` once and prints its message as one plain line
(`safurai-csharp <command>: error: ...`, exit 2), never a traceback. Raise a subclass
(with the message that says what to change) wherever bad params, inputs, files or a missing
toolchain or model are found; a traceback is kept for what is a bug of ours.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad params, inputs, files or environment: reported as one line, exit 2."""


class EvaluationInputError(UserError, ValueError):
    """Completions or eval results that do not fit the benchmark (eval-completions, report).

    Defined here rather than in evaluation.py so that report, which reads result files, does
    not import the sampling and sandbox code (and need it as a dvc.yaml dep)."""
