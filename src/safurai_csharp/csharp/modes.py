"""Test modes and assertion instrumentation: pure text rewrites of MultiPL-E tests.

Only the *tests* text is rewritten; the prompt and the completion are never touched.

* ``official``: the tests exactly as upstream ships them.
* ``corrected``: every ``Debug.Assert(X.Equals(Y))`` becomes
  ``Debug.Assert(global::SafuraiHarness.Eq.Structural(X, Y))``: structural equality
  for lists, dictionaries, tuples (item-wise, so ``Tuple<long?,long?>`` matches a
  ``Tuple<long?,long>``), nested collections and null results. This fixes upstream
  MultiPL-E issue #71 (``List.Equals`` is reference equality, so no list/dict-returning
  solution can pass) and ``HumanEval_12_longest`` (``null.Equals(null)`` throws).
  Then assertions that contradict each other once C# evaluates them are dropped: the same
  call, with the same argument values, expected to return different results. This happens
  where Python's check tells ``3`` from ``3.0`` and the translation made both a C#
  ``float`` (HumanEval_92_any_int): no program can satisfy both, so neither decides.

``instrument`` then turns each ``Debug.Assert(`` into
``global::SafuraiHarness.Checker.Assert(<token>, `` so the harness can prove that
every assertion site ran (see harness_cs.py).
"""

from __future__ import annotations

import re
import secrets

MODES = ("official", "corrected")

_ASSERT = "Debug.Assert("
_STRUCTURAL = "global::SafuraiHarness.Eq.Structural"  # harness_cs.py; every sandbox program links it
_QUALIFIERS = ("global::System.Diagnostics.", "System.Diagnostics.")
_IDENT = re.compile(r"[A-Za-z0-9_]")


def code_mask(text: str) -> list[bool]:
    """True for each character that is C# code (not inside a string, char or comment)."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        start = i
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "@" and i + 1 < n and text[i + 1] == '"':
            i += 2
            while i < n:
                if text[i] == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
        elif c in "\"'":
            i += 1
            while i < n and text[i] != c and text[i] != "\n":
                i += 2 if text[i] == "\\" else 1
            i += 1
        else:
            i += 1
            continue
        for k in range(start, min(i, n)):
            mask[k] = False
    return mask


def close_bracket(text: str, mask: list[bool], open_idx: int) -> int:
    """Index of the bracket closing the one at open_idx, counting `([{` alike and code only
    (`mask`: :func:`code_mask`), or -1."""
    depth = 0
    for k in range(open_idx, len(text)):
        if not mask[k]:
            continue
        if text[k] in "([{":
            depth += 1
        elif text[k] in ")]}":
            depth -= 1
            if depth == 0:
                return k
    return -1


def _close_paren(text: str, mask: list[bool], open_idx: int) -> int:
    """Index of the ')' matching the '(' at open_idx, or -1."""
    k = close_bracket(text, mask, open_idx)
    return k if k >= 0 and text[k] == ")" else -1


def _assert_sites(text: str, mask: list[bool]) -> list[tuple[int, int, int]]:
    """(start of the call incl. qualifier, index of '(', index of matching ')')."""
    sites = []
    pos = text.find(_ASSERT)
    while pos >= 0:
        start = pos
        for q in _QUALIFIERS:
            if text.startswith(q, pos - len(q)):
                start = pos - len(q)
                break
        prev = text[start - 1] if start > 0 else " "
        if mask[pos] and not _IDENT.match(prev) and prev != ".":
            open_idx = pos + len(_ASSERT) - 1
            close = _close_paren(text, mask, open_idx)
            if close > 0:
                sites.append((start, open_idx, close))
        pos = text.find(_ASSERT, pos + 1)
    return sites


def _split_equals(arg: str) -> tuple[str, str] | None:
    """Split ``X.Equals(Y)`` (the whole argument, at top level) into (X, Y)."""
    stripped = arg.strip()
    mask = code_mask(stripped)
    if not stripped.endswith(")"):
        return None
    depth, k = 0, len(stripped)
    # Walk back from the final ')' to its '(' and check it is a top-level `.Equals(`.
    for k in range(len(stripped) - 1, -1, -1):
        if not mask[k]:
            continue
        if stripped[k] in ")]}":
            depth += 1
        elif stripped[k] in "([{":
            depth -= 1
            if depth == 0:
                break
    else:
        return None
    head = stripped[:k]
    if not head.endswith(".Equals") or len(head) == len(".Equals"):
        return None
    return head[: -len(".Equals")], stripped[k + 1 : -1]


def apply_mode(tests: str, mode: str) -> str:
    """Return the tests text for `mode` ('official' = unchanged, 'corrected')."""
    if mode not in MODES:
        raise ValueError(f"unknown test mode {mode!r}; allowed: {', '.join(MODES)}")
    if mode == "official":
        return tests
    mask = code_mask(tests)
    out, last = [], 0
    for _start, open_idx, close in _assert_sites(tests, mask):
        arg = tests[open_idx + 1 : close]
        parts = _split_equals(arg)
        if parts is None:
            continue
        x, y = parts
        out.append(tests[last : open_idx + 1])
        out.append(f"{_STRUCTURAL}({x}, {y})")
        last = close
    out.append(tests[last:])
    return drop_contradictions("".join(out))


_NUMBER = re.compile(r"\(float\)\s*(-?\d+)L|\(\s*(-?\d+\.\d*(?:[eE][-+]?\d+)?)f\s*\)|(?<![\w.])(-?\d+\.\d*(?:[eE][-+]?\d+)?)f")


def _canonical(expr: str) -> str:
    """Spell every float literal by its value: ``(float)3L``, ``(3.0f)`` and ``3.0f`` agree."""
    def value(m: re.Match) -> str:
        text = next(g for g in m.groups() if g is not None)
        return f"F[{float(text)!r}]"

    mask = code_mask(expr)
    parts, k = [], 0
    while k < len(expr):  # rewrite code runs only: string and char literals stay as they are
        j = k
        while j < len(expr) and mask[j] == mask[k]:
            j += 1
        run = expr[k:j]
        parts.append(re.sub(r"\s+", "", _NUMBER.sub(value, run)) if mask[k] else run)
        k = j
    return "".join(parts)


def _split_eq(arg: str) -> tuple[str, str] | None:
    """Split ``L == R`` at its single top-level ``==`` (outside strings and brackets)."""
    mask = code_mask(arg)
    depth, found = 0, []
    for k, c in enumerate(arg):
        if not mask[k]:
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and arg.startswith("==", k) and (k == 0 or arg[k - 1] not in "=!<>"):
            found.append(k)
    if len(found) != 1:
        return None
    return arg[: found[0]], arg[found[0] + 2 :]


# Operators that make a top-level `==` only part of the asserted condition (a comma: the
# assertion's message argument).
_COMPOUND = re.compile(r"&&|\|\||\?|(?<![=!<>])=(?![=>])|!=|,")
_NEW = re.compile(r"new\b")
# A type's generic arguments, `Dictionary<string, List<int>>` (their commas are no operators).
_GENERIC_ARGS = re.compile(r"(?<=\w)<[\w\s,.\[\]?<>]*>")


def _top_level(expr: str) -> str:
    """expr with everything inside brackets, generic arguments, strings and comments blanked."""
    mask, depth, out = code_mask(expr), 0, []
    expr = _GENERIC_ARGS.sub(lambda m: " " * len(m.group()), expr)
    for k, c in enumerate(expr):
        if mask[k] and c in ")]}":
            depth -= 1
        out.append(c if mask[k] and depth == 0 else " ")
        if mask[k] and c in "([{":
            depth += 1
    return "".join(out)


def _fresh(expr: str) -> bool:
    """`new List<int> { 1 }`, `new[] { 1, 2 }`, `(new int[] { 3 })`: an object the assertion
    itself creates, so no method result can be the same reference."""
    s = expr.strip()
    while s.startswith("(") and _close_paren(s, code_mask(s), 0) == len(s) - 1:
        s = s[1:-1].strip()
    return _NEW.match(s) is not None


def structural_fresh(tests: str) -> str:
    """Model-written tests often compare a result with a collection built in the assertion:
    `Debug.Assert(F(x) == new List<int> { 1, 2 })` or `F(x).Equals(new[] { 1, 2 })`. In C#
    both are reference equality (the bug of upstream MultiPL-E #71), false for every body,
    so the task is lost however right its solution is. Each such assertion compares
    structurally instead (the harness's Eq.Structural, as the corrected mode does). Only
    assertions no body can pass change: a fresh object is never reference-equal to a result
    (Equals overrides, like string's and Tuple's, Structural honours); compound conditions
    (`&&`, `||`, `?:`) and every other assertion stay as written."""
    mask = code_mask(tests)
    out, last = [], 0
    for _start, open_idx, close in _assert_sites(tests, mask):
        arg = tests[open_idx + 1 : close]
        parts = _split_equals(arg)
        if parts is None and not _COMPOUND.search(_top_level(arg)):
            parts = _split_eq(arg)
        if parts is None or not any(_fresh(side) for side in parts):
            continue
        out.append(tests[last : open_idx + 1])
        out.append(f"{_STRUCTURAL}({parts[0].strip()}, {parts[1].strip()})")
        last = close
    out.append(tests[last:])
    return "".join(out)


def drop_contradictions(tests: str) -> str:
    """Remove every ``Debug.Assert(L == R);`` statement whose L (by value) is also asserted
    equal to a different R: such a test cannot be passed, so it must not decide."""
    mask = code_mask(tests)
    sites = []
    for start, open_idx, close in _assert_sites(tests, mask):
        parts = _split_eq(tests[open_idx + 1 : close])
        if parts is not None:
            sites.append((start, close, _canonical(parts[0]), _canonical(parts[1])))
    expected: dict[str, set[str]] = {}
    for _s, _c, lhs, rhs in sites:
        expected.setdefault(lhs, set()).add(rhs)
    out, last = [], 0
    for start, close, lhs, _rhs in sites:
        if len(expected[lhs]) < 2:
            continue
        line_start = tests.rfind("\n", 0, start) + 1
        end = close + 1
        if tests.startswith(";", end):
            end += 1
        if tests.startswith("\n", end) and not tests[line_start:start].strip():
            start, end = line_start, end + 1  # the whole line, when the statement is alone on it
        out.append(tests[last:start])
        last = end
    out.append(tests[last:])
    return "".join(out)


def changed_by_correction(tests: str) -> bool:
    return apply_mode(tests, "corrected") != tests


def instrument(tests: str) -> tuple[str, list[int]]:
    """Rewrite each Debug.Assert call site in `tests` to the harness checker.

    Returns the new text and the random token of each site (all must run for a pass).
    """
    mask = code_mask(tests)
    out, last, tokens = [], 0, []
    for start, open_idx, _close in _assert_sites(tests, mask):
        token = secrets.randbits(62) | 1
        tokens.append(token)
        out.append(tests[last:start])
        out.append(f"global::SafuraiHarness.Checker.Assert(0x{token:x}L, ")
        last = open_idx + 1
    out.append(tests[last:])
    return "".join(out), tokens


def build_program(prompt: str, completion: str, tests: str, mode: str = "official") -> str:
    """The MultiPL-E program text: prompt + completion + newline + tests (mode applied)."""
    return prompt + completion + "\n" + apply_mode(tests, mode)
