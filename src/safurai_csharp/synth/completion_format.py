"""A validated example as a MultiPL-E-shaped C# completion task: the format the student is
measured in (HumanEval-C#) and used in (code completion).

    using System; ... using System.Security.Cryptography;      <- MultiPL-E's using block
    class Problem {
        // <the task statement, one `//` line per line>
        public static <ret> <Name>(<params>) {                 <- the prompt ends here
            <the solution's body, re-indented to 8 spaces>      <- the completion
        }                                                       <- MultiPL-E's stop token
        public static void Main(string[] args) {                <- the tests
        Debug.Assert(<Name>(...) == ...);
        }

    }

The completion continues `prompt.strip()` and ends where MultiPL-E's stop token
("\\n    }\\n") cuts, so the program the sandbox runs is prompt + completion + "\\n" + tests,
exactly as for a benchmark problem: one scorer, one executor path for HumanEval-C#, the dev
set and the on-policy samples.

Only examples whose solution is one class with one static method, the one the tests call,
render: MultiPL-E's stop token ends the completion at the end of the first method, so helper
methods and fields cannot be part of it. Whether a rendering is faithful is decided by running
it (:func:`verify`): the solution's own body must pass the rendered tests.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..benchmark.translate import CLASS_NAME, INDENT, STOP_TOKENS, USINGS
from ..csharp import Program
from ..csharp.modes import close_bracket, code_mask
from .program import _USING, method_spans, top_level_types

_BENCHMARK_NAMESPACES = set(re.findall(r"using ([\w.]+);", USINGS))
# Namespaces of the parser's standard block that MultiPL-E's prompt lacks: added to a task's
# prompt only when its body names one of their types, so most prompts look like the benchmark's.
_EXTRA_NAMESPACES = {
    "System.Text.RegularExpressions": re.compile(r"\b(Regex|Match|MatchCollection|RegexOptions|Group)\b"),
    "System.Globalization": re.compile(r"\b(CultureInfo|NumberStyles|TextInfo|UnicodeCategory|CharUnicodeInfo|"
                                       r"DateTimeStyles|CompareOptions)\b"),
}
_STANDARD_EXTRAS = set(_EXTRA_NAMESPACES)
_LINESTART = re.compile(r"\n(\s*)")  # MultiPL-E: every newline + indentation starts a `//` line
_BODY_INDENT = INDENT * 2


class RenderError(ValueError):
    """The example cannot be written as one MultiPL-E method; `reason` is a short code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CompletionTask:
    """One task in MultiPL-E's shape. `completion` is the reference answer as a model would
    emit it after `prompt.strip()`, already cut at the stop token; `target` adds the stop
    token itself, which is what a model trained on it learns to end with."""

    name: str
    prompt: str
    completion: str
    tests: str
    entry_point: str
    stop_tokens: tuple[str, ...] = tuple(STOP_TOKENS)

    @classmethod
    def from_problem(cls, problem: Mapping[str, Any]) -> "CompletionTask":
        """Back from :meth:`problem` (a record without `completion` has an empty reference)."""
        return cls(name=problem["name"], prompt=problem["prompt"], completion=problem.get("completion", ""),
                   tests=problem["tests"], entry_point=problem["entry_point"],
                   stop_tokens=tuple(problem["stop_tokens"]))

    @property
    def target(self) -> str:
        return self.completion + self.stop_tokens[0]

    def problem(self, **extra: Any) -> dict[str, Any]:
        """The benchmark jsonl record (the fields the eval stages read), plus `extra`."""
        return {"name": self.name, "language": "cs", "prompt": self.prompt, "tests": self.tests,
                "stop_tokens": list(self.stop_tokens), "entry_point": self.entry_point, **extra}

    def program(self, completion: str | None = None, mode: str = "official") -> Program:
        """The sandbox program for `completion` (default: the reference)."""
        text = self.completion if completion is None else completion
        return Program(prompt=self.prompt, completion=text, tests=self.tests, mode=mode, name=self.name)


def normalise(code: str) -> str:
    """Whitespace-insensitive identity of a completion: two samples differing only in layout
    teach the same thing (self_sample's dedup, dpo's pairs)."""
    return " ".join(code.split())


def closes_early(completion: str) -> bool:
    """Whether a completion closes its own method: ` return x; }` and then more members. The
    harness appends the tests after the completion, and their `}` closes whatever the completion
    left open, so such a sample can pass while writing a one-line method and a second method (or
    a check function, or the class's end) that nobody asked for. It is not an answer in the
    completion format, and training on it teaches the student to spill past the method
    (docs/results.md: 7 of 130 kept samples of one run did; the model trained on them closed its
    method early in 128 of 1,580 HumanEval-C# completions, every one a compile error)."""
    text = "{" + completion
    return close_bracket(text, code_mask(text), 0) >= 0


def comment(statement: str) -> str:
    """The task statement as MultiPL-E's indented `//` lines (no empty comment lines)."""
    return INDENT + "// " + _LINESTART.sub("\n" + INDENT + "// ", statement.strip())


def indent_body(inner: str) -> str:
    """A method's inner text re-indented to 8 spaces, blank edges dropped (no line can then
    equal the stop token's `    }`)."""
    lines = inner.expandtabs(4).split("\n")
    # text on the opening brace's own line (`{ first();`) has no indentation to keep
    first = [lines.pop(0).strip()] if lines[0].strip() else []
    lines = textwrap.dedent("\n".join(lines)).split("\n")
    lines = first + lines
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(_BODY_INDENT + ln.rstrip() if ln.strip() else "" for ln in lines)


def _usings(solution: str, body: str) -> str:
    own = [ns for ns in dict.fromkeys(_USING.findall(solution)) if ns not in _BENCHMARK_NAMESPACES]
    extra = [ns for ns in own if ns not in _STANDARD_EXTRAS or _EXTRA_NAMESPACES[ns].search(body)]
    return USINGS + "".join(f"using {ns};\n" for ns in extra)


def _unqualify(tests: str, cls: str, entry: str) -> str:
    """`Cls.Entry(` -> `Entry(` in code (the tests now live in the solution's class)."""
    mask = code_mask(tests)
    out, last = [], 0
    for m in re.finditer(rf"(?<![\w.]){re.escape(cls)}\s*\.\s*(?={re.escape(entry)}\b)", tests):
        if mask[m.start()]:
            out.append(tests[last:m.start()])
            last = m.end()
    out.append(tests[last:])
    return "".join(out)


def tests_block(tests: str) -> str:
    """Statements as MultiPL-E's tests text: close the method, then `Main` and the class."""
    lines = textwrap.dedent(tests.expandtabs(4).strip("\n")).split("\n")
    body = "\n".join(INDENT + ln.rstrip() if ln.strip() else "" for ln in lines)
    return f"{INDENT}}}\n{INDENT}public static void Main(string[] args) {{\n{body}\n{INDENT}}}\n\n}}\n"


def shell(statement: str, solution: str, name: str = "") -> tuple[CompletionTask, str]:
    """The task as a :class:`CompletionTask` without tests (the solution's body is the
    reference completion), and the solution's class name; raises :class:`RenderError` when
    the solution is not one class with one static method."""
    types = top_level_types(solution)
    if len(types) != 1 or types[0][0] not in ("class", "struct") or types[0][2]:
        raise RenderError("not_one_class")
    cls = types[0][1]
    spans = [s for s in method_spans(solution) if s.name != "Main"]
    if len(spans) != 1:
        raise RenderError("no_method" if not spans else "helper_methods")
    span = spans[0]
    head = " ".join(solution[span.name_start:span.body_start].split())
    if re.search(r"\(\s*this\s", head):
        raise RenderError("extension_method")
    raw = solution[span.body_start:span.body_end]
    if raw.startswith("=>"):
        expr = raw[2:-1].strip()
        inner = f"{expr};" if span.ret == "void" else f"return {expr};"
    else:
        inner = raw[1:-1]
    if re.search(r'@"[^"]*\n', inner) or '"""' in inner:
        raise RenderError("multiline_string")  # re-indenting would change the string
    body = indent_body(inner)
    completion = "\n" + body
    if not body.strip() or any(stop in completion + "\n" for stop in STOP_TOKENS):
        raise RenderError("empty_body" if not body.strip() else "stop_token_in_body")
    prompt = (f"{_usings(solution, body)}class {CLASS_NAME} {{\n{comment(statement)}\n"
              f"{INDENT}public static {span.ret} {head} {{\n")
    return CompletionTask(name=name, prompt=prompt, completion=completion, tests="", entry_point=span.name), cls


def render(example: Mapping[str, Any], name: str | None = None) -> CompletionTask:
    """The example (instruction, solution, tests) as a :class:`CompletionTask`; raises
    :class:`RenderError` when it is not one class with one static method that the tests call."""
    tests = example["tests"]
    task, cls = shell(example["instruction"], example["solution"], name or str(example.get("id", "")))
    entry = task.entry_point
    mask = code_mask(tests)
    if not any(mask[m.start()] for m in re.finditer(rf"\b{re.escape(entry)}\s*(?:<[^;()]*>)?\s*\(", tests)):
        raise RenderError("entry_not_called")
    test_text = _unqualify(tests, cls, entry)
    if any(code_mask(test_text)[m.start()] for m in re.finditer(rf"(?<![\w.]){re.escape(cls)}\b", test_text)) \
            and cls != entry:
        raise RenderError("tests_use_class")
    return replace(task, tests=tests_block(test_text))


def render_all(examples: Sequence[Mapping[str, Any]], prefix: str = "") -> tuple[list[tuple[int, CompletionTask]], dict[str, int]]:
    """(index, task) for each example that renders, and the count of each failure reason."""
    done, reasons = [], {}
    for i, ex in enumerate(examples):
        try:
            done.append((i, render(ex, f"{prefix}{ex['id']}")))
        except RenderError as exc:
            reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
    return done, reasons


def verify(tasks: Sequence[CompletionTask], executor: Any) -> list[bool]:
    """Whether each task's reference completion passes its rendered tests in the sandbox."""
    return [r.passed for r in executor.run([t.program() for t in tasks])]
