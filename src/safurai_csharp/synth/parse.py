"""Parse a teacher's answer into (instruction, solution, tests), or say why not.

The prompt asks for three sections (### Task, ### Solution with a ```csharp fence,
### Tests with a ```csharp fence). Small teachers drift: bold headings instead of ###,
a fence without a language tag, tests wrapped in a class with a Main, a demo Main left in
the solution. Those are repaired, because a well-formed example hides behind them;
anything else is a counted parse failure, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..csharp.modes import _assert_sites, code_mask, structural_fresh
from .program import (rename_clashing_classes, requalify_calls, split_statements, static_methods, with_standard_usings,
                      wrap_bare_methods)

_HEADING = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*|\*\*)?[ \t]*(?P<name>task|problem|instruction|solution|tests?|test cases)"
    r"[ \t]*:?[ \t]*(?:\*\*)?[ \t]*:?[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_FENCE = re.compile(r"```[ \t]*(?P<lang>[\w#+-]*)[ \t]*\n(?P<body>.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
_CANON = {"task": "task", "problem": "task", "instruction": "task", "solution": "solution",
          "test": "tests", "tests": "tests", "test cases": "tests"}
_NOT_CSHARP = {"python", "py", "java", "cpp", "c++", "c", "javascript", "js", "typescript", "ts",
               "go", "rust", "ruby", "php", "kotlin", "swift"}


class ParseError(ValueError):
    """The answer lacks a usable section; `reason` is a short stable code for the funnel."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Parsed:
    instruction: str
    solution: str
    tests: str


def _sections(text: str) -> dict[str, str]:
    heads = list(_HEADING.finditer(text))
    out: dict[str, str] = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        key = _CANON[m.group("name").lower()]
        out.setdefault(key, text[m.end():end].strip())
    return out


def _code(section: str, what: str) -> str:
    fence = _FENCE.search(section)
    if fence is None:
        raise ParseError(f"no_{what}_code_block")
    if fence.group("lang").lower() in _NOT_CSHARP:
        raise ParseError(f"{what}_not_csharp")
    code = fence.group("body").strip("\n")
    if not code.strip():
        raise ParseError(f"empty_{what}")
    return code


def _main_body(tests: str) -> str:
    """Tests written as a whole program: keep the body of its Main."""
    for ret, name, start, end in static_methods(tests):
        if name == "Main" and tests[start] == "{":
            return "\n".join(line.strip() for line in tests[start + 1 : end - 1].strip("\n").splitlines())
    return tests


def _drop_main(solution: str) -> str:
    """A demo Main in the solution would be a second entry point next to the tests'."""
    for _ret, name, start, end in reversed(static_methods(solution)):
        if name == "Main":
            head = solution.rfind("\n", 0, solution.rfind("Main", 0, start)) + 1
            solution = solution[:head] + solution[end:].lstrip(" \t")
    return solution


_EMPTY_CLASS = re.compile(r"^[ \t]*(?:(?:public|internal|static|sealed|partial)\s+)*class\s+\w+\s*\{\s*\}[ \t]*\n?",
                          re.MULTILINE)


def _drop_empty_classes(solution: str) -> str:
    """`class Program { }`: what is left of a demo program once its Main is gone (the 0.5B
    teacher leaves one after 17 of 64 solutions); a second class would stop the example
    from being rendered as one MultiPL-E method."""
    return _EMPTY_CLASS.sub("", solution)


def complete_statements(tests: str) -> str:
    """Tests cut off by the token limit end mid-statement: keep the complete statements, and
    drop repeated identical assertions (small teachers loop on one)."""
    seen: set[str] = set()
    kept = []
    for stmt in split_statements(tests):
        if stmt.startswith("Debug.Assert") and stmt in seen:
            continue
        seen.add(stmt)
        kept.append(stmt)
    return "\n".join(kept)


def _task_and_solution(sections: dict[str, str]) -> tuple[str, str]:
    for key in ("task", "solution"):
        if key not in sections:
            raise ParseError(f"missing_{key}")
    # Code in the task stays: an evolved task may show erroneous code as misdirection.
    instruction = sections["task"].strip()
    if len(instruction) < 20:
        raise ParseError("empty_task")
    solution = _drop_empty_classes(_drop_main(_code(sections["solution"], "solution")))
    return instruction, with_standard_usings(wrap_bare_methods(solution))


def parse_task_solution(text: str) -> tuple[str, str]:
    """(instruction, solution) of an answer with '### Task' and '### Solution' only (the
    first step of the decomposed recipe, synth/decomposed.py)."""
    return _task_and_solution(_sections(text))


def assert_statements(code: str) -> list[str]:
    """Every complete `Debug.Assert(...);` statement in code, wherever it stands (small models
    wrap their assertions in test classes and methods), in order, without repeats."""
    mask = code_mask(code)
    found = []
    for start, _open, close in _assert_sites(code, mask):
        rest = code[close + 1:]
        if code.startswith("Debug.Assert", start) and rest.lstrip(" \t").startswith(";"):
            found.append(code[start:close + 1] + ";")
    return list(dict.fromkeys(found))


def parse_answer(text: str) -> Parsed:
    sections = _sections(text)
    instruction, solution = _task_and_solution(sections)
    if "tests" not in sections:
        raise ParseError("missing_tests")
    tests = _code(sections["tests"], "tests")
    if "static void Main" in tests or "static int Main" in tests:
        tests = _main_body(tests)
    tests = complete_statements(tests)
    if "Debug.Assert" not in tests:
        raise ParseError("tests_without_assert")
    solution, tests = rename_clashing_classes(solution, tests)
    tests = structural_fresh(requalify_calls(solution, tests))
    return Parsed(instruction, solution.strip("\n"), tests.strip("\n"))


def parse_record(raw: str | None, repair: dict | None = None) -> Parsed:
    """The example of a generated record. After a repair turn the task is the first answer's:
    asked to fix their code, small teachers fill '### Task' with talk about the error."""
    p = parse_answer(raw or "")
    first = (repair or {}).get("raw_first")
    if first:
        try:
            p = Parsed(parse_answer(first).instruction, p.solution, p.tests)
        except ParseError:
            pass  # only answers that parsed are sent for repair; keep the repaired one whole
    return p


def render_answer(instruction: str, solution: str, tests: str) -> str:
    """The exact answer format the prompts ask for (few-shot turns and evolved answers)."""
    return f"### Task\n{instruction.strip()}\n\n### Solution\n```csharp\n{solution.strip()}\n```\n\n" \
           f"### Tests\n```csharp\n{tests.strip()}\n```\n"
