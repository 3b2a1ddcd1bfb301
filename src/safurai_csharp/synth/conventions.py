"""A rendered task rewritten to MultiPL-E's C# type conventions.

MultiPL-E translates Python's `int` to `long`, `float` to `float` and lists to `List<T>`
(HumanEval-C#: 45 of 158 methods return `long`, 30 `List<long>`), while the teacher writes
`int`, `double` and arrays (distill-small-rs2's 91 rendered training tasks: 33 return `int`,
1 `long`). A student trained on the teacher's types carries them into the benchmark's
signatures: rs2's distilled SmolLM2 failed 81 of its 1,580 HumanEval-C# samples on a `long` to
`int` conversion (CS0266 or CS1503; its base: 54). Trained on rewritten tasks: 25.

:func:`variants` rewrites a task's signature, body and tests (code only: strings and comments
are left alone) in a few ways, most MultiPL-E-like first. A rewrite is a guess made by
regular expressions (`int i` indexing a `List` no longer compiles as `long i`), so the caller
keeps the first variant whose body still passes its rewritten tests in the sandbox, and the
task as written when none does (:func:`choose`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..csharp.modes import close_bracket, code_mask
from .completion_format import CompletionTask

_INT = re.compile(r"\bint\b")
_DOUBLE = re.compile(r"\bdouble\b")
_LOOP_HEAD = re.compile(r"\b(?:for|foreach)\s*\(\s*$")
# an unsuffixed double literal (1.5, 2e3) that float code needs as 1.5f
_DOUBLE_LITERAL = re.compile(r"(?<![\w.])(\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)(?![\w.])")
_ELEMENT = r"(?:long|float|string|bool|char)"
_ARRAY_TYPE = re.compile(rf"^({_ELEMENT})\[\]$")
_ARRAY_LITERAL = re.compile(rf"\bnew\s+({_ELEMENT})\s*\[\s*\]\s*\{{")
_ARRAY_LOCAL = re.compile(rf"\b({_ELEMENT})\[\]\s+(\w+)\s*=\s*")
_SIGNATURE = re.compile(r"^(\s*public static )(.+?) (\w+)(\s*(?:<[^>]*>)?\s*)\((.*)\)(\s*\{\s*)$")
_RETURN = re.compile(r"\breturn\b")
_CHAIN = re.compile(r"^[\w.]+$")  # a name or member access: `.ToList()` needs no parentheses
_TUPLE_CREATE = re.compile(r"\bTuple\s*\.\s*Create\s*\(")
_INT_LITERAL = re.compile(r"(?<![\w.])(-?\d+)(?![\w.])")


@dataclass(frozen=True)
class Variant:
    """One rewrite: `label` names its choices (e.g. `long-list-float`)."""

    label: str
    task: CompletionTask


def _sub_code(text: str, pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str],
              skip: Callable[[str, re.Match[str]], bool] = lambda _t, _m: False) -> str:
    """`pattern` -> `repl` where a match starts in code (not in a string or comment)."""
    mask = code_mask(text)
    out, last = [], 0
    for m in pattern.finditer(text):
        if not mask[m.start()] or skip(text, m):
            continue
        out.append(text[last:m.start()])
        out.append(repl(m) if callable(repl) else m.expand(repl))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _wrap_array_literals(text: str) -> str:
    """`new long[] {1, 2}` -> `new List<long>(new long[] {1, 2})`, as MultiPL-E's tests write lists."""
    while True:
        mask = code_mask(text)
        m = next((m for m in _ARRAY_LITERAL.finditer(text)
                  if mask[m.start()] and not text[:m.start()].endswith("new List<" + m.group(1) + ">(")), None)
        if m is None:
            return text
        end = close_bracket(text, mask, m.end() - 1)
        if end < 0:
            return text
        text = f"{text[:m.start()]}new List<{m.group(1)}>({text[m.start():end + 1]}){text[end + 1:]}"


def _array_locals(text: str) -> tuple[str, set[str]]:
    """`long[] xs = {1}` / `long[] xs = new ...` -> `List<long> xs = ...`; the names it changed."""
    names: set[str] = set()

    def local(m: re.Match[str]) -> str:
        names.add(m.group(2))
        rest = text[m.end():m.end() + 1]
        init = f"new List<{m.group(1)}> " if rest == "{" else ""
        return f"List<{m.group(1)}> {m.group(2)} = {init}"

    return _sub_code(text, _ARRAY_LOCAL, local), names


def _lengths_to_counts(text: str, names: set[str]) -> str:
    for name in sorted(names):
        text = _sub_code(text, re.compile(rf"\b{re.escape(name)}\s*\.\s*Length\b"), f"{name}.Count")
        text = _sub_code(text, re.compile(rf"\bArray\s*\.\s*Sort\s*\(\s*{re.escape(name)}\s*\)"), f"{name}.Sort()")
        text = _sub_code(text, re.compile(rf"\bArray\s*\.\s*IndexOf\s*\(\s*{re.escape(name)}\s*,"), f"{name}.IndexOf(")
    return text


def _returns_to_list(body: str) -> str:
    """`return EXPR;` -> `return (EXPR).ToList();` (a lambda's return too: the sandbox decides)."""
    out, last = [], 0
    mask = code_mask(body)
    for m in _RETURN.finditer(body):
        if not mask[m.start()]:
            continue
        depth, end = 0, -1
        for k in range(m.end(), len(body)):
            if not mask[k]:
                continue
            if body[k] in "([{":
                depth += 1
            elif body[k] in ")]}":
                depth -= 1
            elif body[k] == ";" and depth == 0:
                end = k
                break
        if end < 0 or depth < 0 or not body[m.end():end].strip():
            continue
        expr = body[m.end():end].strip()
        if expr.endswith(".ToArray()"):
            expr = expr[:-len(".ToArray()")] + ".ToList()"
        elif _CHAIN.match(expr):
            expr += ".ToList()"
        else:
            expr = f"({expr}).ToList()"
        out.append(body[last:m.end()] + " " + expr)
        last = end
    out.append(body[last:])
    return "".join(out)


def _long_tuples(tests: str) -> str:
    """`Tuple.Create(1, 3)` -> `Tuple.Create(1L, 3L)`: an int tuple never equals a long one."""
    out, last = [], 0
    mask = code_mask(tests)
    for m in _TUPLE_CREATE.finditer(tests):
        end = close_bracket(tests, mask, m.end() - 1)
        if not mask[m.start()] or end < 0 or m.start() < last:
            continue
        args = _sub_code(tests[m.end():end], _INT_LITERAL, r"\1L")
        out.append(tests[last:m.end()] + args)
        last = end
    out.append(tests[last:])
    return "".join(out)


def _params(text: str) -> list[str]:
    """A parameter list split at its top-level commas."""
    parts, depth, cur = [], 0, []
    for ch in text:
        depth += ch in "<([" 
        depth -= ch in ">)]"
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return parts


def _scalars(text: str, long_loops: bool, floats: bool) -> str:
    keep_loop = (lambda t, m: False) if long_loops else (lambda t, m: bool(_LOOP_HEAD.search(t[:m.start()])))
    text = _sub_code(text, _INT, "long", keep_loop)
    if floats:
        text = _sub_code(text, _DOUBLE, "float")
        text = _sub_code(text, _DOUBLE_LITERAL, lambda m: m.group(1) + "f")
    return text


def rewrite(task: CompletionTask, *, lists: bool, long_loops: bool, floats: bool,
            list_returns: bool = True) -> CompletionTask | None:
    """The task with `int` -> `long` (but `for (int` loops unless long_loops), `double` -> `float`
    (floats), and single-dimension arrays in the signature -> `List<T>` (lists; an array return
    type's `return X;` becomes `return X.ToList();` when list_returns, else it is left for a body
    that builds a list already); None when its signature line is not one this module understands."""
    head, _, sig = task.prompt.rstrip("\n").rpartition("\n")
    m = _SIGNATURE.match(sig)
    if m is None:
        return None
    lead, ret, name, generics, params, brace = m.groups()
    ret = _scalars(ret, True, floats)
    new_params, listed = [], set()
    for p in _params(params):
        ptype, _, pname = _scalars(p.strip(), True, floats).rpartition(" ")
        am = _ARRAY_TYPE.match(ptype)
        if lists and am:
            ptype = f"List<{am.group(1)}>"
            listed.add(pname)
        new_params.append(f"{ptype} {pname}")
    body = _scalars(task.completion, long_loops, floats)
    tests = _long_tuples(_scalars(task.tests, True, floats))
    rm = _ARRAY_TYPE.match(ret)
    if lists:
        body = _lengths_to_counts(body, listed)
        tests = _wrap_array_literals(tests)
        tests, locals_ = _array_locals(tests)
        tests = _lengths_to_counts(tests, locals_)
        if rm:
            ret = f"List<{rm.group(1)}>"
            body = _returns_to_list(body) if list_returns else body
    prompt = f"{head}\n{lead}{ret} {name}{generics}({', '.join(new_params)}){brace}\n"
    return replace(task, prompt=prompt, completion=body, tests=tests)


# most MultiPL-E-like first: the first that passes is kept
_CHOICES = [(lists, loops, floats, wrap) for floats in (True, False) for lists in (True, False)
            for loops in (True, False) for wrap in ((False, True) if lists else (False,))]


def variants(task: CompletionTask) -> list[Variant]:
    """Distinct rewrites of `task` that differ from it, in order of preference."""
    seen = {(task.prompt, task.completion, task.tests)}
    out = []
    for lists, loops, floats, wrap in _CHOICES:
        new = rewrite(task, lists=lists, long_loops=loops, floats=floats, list_returns=wrap)
        if new is None or (new.prompt, new.completion, new.tests) in seen:
            continue
        seen.add((new.prompt, new.completion, new.tests))
        # a label names only the rewrites that changed something (`float` on a task without
        # doubles is a no-op); it is a metric name in MLflow: letters, digits, `_`, `-`
        did = {k: rewrite(task, **{**kw, k: False}) != new
               for kw in [dict(lists=lists, long_loops=loops, floats=floats, list_returns=wrap)]
               for k in ("lists", "floats", "list_returns")}
        label = "-".join(["long" if loops else "long_but_loops"] + (["list"] if lists and did["lists"] else [])
                         + (["list_return"] if wrap and did["list_returns"] else [])
                         + (["float"] if floats and did["floats"] else []))
        out.append(Variant(label, new))
    return out


def choose(tasks: Sequence[CompletionTask], executor: Any) -> tuple[list[CompletionTask | None], list[str]]:
    """For each task, its first variant whose body passes its tests in the sandbox, else the task
    itself if it passes, else None; and which (a variant's label, `as_written` or `failed`).
    One sandbox run for everything."""
    per_task = [[Variant("as_written", t), *variants(t)] for t in tasks]
    flat = [v for vs in per_task for v in vs]
    passed = iter(r.passed for r in executor.run([v.task.program() for v in flat])) if flat else iter(())
    chosen, labels = [], []
    for vs in per_task:
        ok = [next(passed) for _ in vs]
        pick = next((v for v, good in zip(vs[1:], ok[1:]) if good), vs[0] if ok[0] else None)
        chosen.append(None if pick is None else pick.task)
        labels.append("failed" if pick is None else pick.label)
    return chosen, labels
