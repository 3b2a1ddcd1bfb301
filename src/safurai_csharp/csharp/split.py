"""Split a MultiPL-E program into a *solver* and a *checker*, so that no pass can be forged.

A program (prompt + completion + tests) runs the completion in the same process as the
tests and the harness: with reflection, file reads or its own types it could make any
assertion "hold" (docs/sandbox.md). Split, it cannot:

* the **solver** is the prompt, the completion and a generated ``Main`` that calls the
  function under test once per call site of the tests, with the tests' own argument
  expressions, and reports each returned value (``SafuraiHarness.Solver.Site``). It holds no
  expected value and no assertion: whatever it reports is only a *claim* about what the
  function returned, and a claim that equals the expected value is, by definition, the
  right answer (the solver cannot see the tests: they are in no file it can read);
* the **checker** is the prompt and the tests without the completion: each call site is
  replaced by ``SafuraiHarness.Replay.Site<T>(k)``, which rebuilds the solver's k-th value as
  a real ``T`` (the prompt's declared return type, bound without any of the completion's
  types), and every assertion runs in a process that holds no code of the completion.

A split is made only where it is exact: the tests' ``Main`` holds nothing but
``Debug.Assert(...)`` statements, no conditional operator decides whether a call runs, no
call is nested in another's arguments, and the return type is one the codec rebuilds (all
158 HumanEval-C# problems qualify). Other tests (model-written ones in the data stages) run
as one program, as before; docs/sandbox.md names that residual risk.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from .modes import _assert_sites, _close_paren, code_mask
from .types import Result, Status

_SIGNATURE = re.compile(r"static\s+(?P<ret>[\w<>\[\]?,. ]+?)\s+(?P<name>[A-Za-z_]\w*)\s*\([^()]*\)\s*\{\s*$")
_MAIN = re.compile(r"static\s+void\s+Main\s*\(\s*string\s*\[\s*\]\s*\w+\s*\)\s*\{")
_SCALARS = {"long", "int", "short", "byte", "sbyte", "ulong", "uint", "ushort", "bool", "string", "char",
            "float", "double", "decimal", "Int64", "Int32", "Boolean", "String", "Char", "Single", "Double"}
_GENERIC = {"List": 1, "Nullable": 1, "Dictionary": 2, "Tuple": None}
# The checker stub: the prompt's method must have a body, and no test may reach it.
STUB_BODY = "        throw new global::System.InvalidOperationException(\"checker: no solution here\");\n"


@dataclass(frozen=True)
class Split:
    sites: int  # call sites of the function under test in the tests
    solver_tests: str  # replaces the tests after prompt + completion: Main reports each call's value
    checker_tests: str  # the tests with each call site replaced by Replay.Site<T>(k)
    calls: tuple[str, ...] = ()  # each call site's expression as the tests wrote it: `Name(args)`


def type_args(text: str) -> list[str] | None:
    depth, parts, last = 0, [], 0
    for i, c in enumerate(text):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[last:i].strip())
            last = i + 1
        if depth < 0:
            return None
    parts.append(text[last:].strip())
    return parts if depth == 0 else None


def supported(ret: str) -> bool:
    """Whether the codec rebuilds a value of this C# type exactly (harness_cs.Codec)."""
    t = ret.replace(" ", "")
    t = t[len("System."):] if t.startswith("System.") else t
    if t.endswith("?"):
        return supported(t[:-1])
    if t.endswith("[]"):
        return supported(t[:-2])
    if t in _SCALARS:
        return True
    m = re.fullmatch(r"(?:Collections\.Generic\.)?(\w+)<(.+)>", t)
    if not m or m.group(1) not in _GENERIC:
        return False
    args = type_args(m.group(2))
    arity = _GENERIC[m.group(1)]
    if args is None or (arity is not None and len(args) != arity) or not 1 <= len(args) <= 7:
        return False
    return all(supported(a) for a in args)


def entry_point(prompt: str) -> tuple[str, str] | None:
    """(return type, name) of the method the prompt leaves open, or None."""
    m = _SIGNATURE.search(prompt[-2000:])
    return (m.group("ret").strip(), m.group("name")) if m else None


def split(prompt: str, tests: str) -> Split | None:
    """The solver and checker tests for this problem (tests already in their mode), or None
    where a split would not be exact (then the program runs whole)."""
    entry = entry_point(prompt)
    if entry is None or not supported(entry[0]):
        return None
    ret, name = entry
    mask = code_mask(tests)
    main = next((m for m in _MAIN.finditer(tests) if mask[m.start()]), None)
    if main is None:
        return None
    open_idx = main.end() - 1
    close = _close_brace(tests, mask, open_idx)
    if close < 0:
        return None
    body_start, body_end = open_idx + 1, close
    sites_in_body = [s for s in _assert_sites(tests, mask) if body_start <= s[0] and s[2] < body_end]
    # Nothing but `Debug.Assert(...);` statements (and whitespace, comments) in Main.
    covered = [False] * len(tests)
    for start, _open, end in sites_in_body:
        end = end + 1
        while end < body_end and tests[end] in " \t":
            end += 1
        if end >= body_end or tests[end] != ";":
            return None
        for k in range(start, end + 1):
            covered[k] = True
    for k in range(body_start, body_end):
        if mask[k] and not covered[k] and not tests[k].isspace():
            return None
    code = "".join(c if mask[i] else " " for i, c in enumerate(tests[body_start:body_end], body_start))
    if re.search(r"&&|\|\||\?|(?<!:):(?!:)", code):  # a call that may or may not run (`::` is no operator)
        return None
    calls = _calls(tests, mask, name, body_start, body_end)
    if calls is None or not calls:
        return None
    solver_lines, checker, last, exprs = [], [], 0, []
    for k, (start, args_open, args_close) in enumerate(calls):
        args = tests[args_open + 1 : args_close]
        exprs.append(f"{name}({args})")
        solver_lines.append(f"        global::SafuraiHarness.Solver.Site({k}, () => {name}({args}));\n")
        checker.append(tests[last:start])
        checker.append(f"global::SafuraiHarness.Replay.Site<{ret}>({k})")
        last = args_close + 1
    checker.append(tests[last:])
    solver = tests[:body_start] + "\n" + "".join(solver_lines) + "    " + tests[body_end:]
    return Split(len(calls), solver, "".join(checker), tuple(exprs))


def _close_brace(text: str, mask: list[bool], open_idx: int) -> int:
    depth = 0
    for k in range(open_idx, len(text)):
        if not mask[k]:
            continue
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return -1


def _calls(tests: str, mask: list[bool], name: str, lo: int, hi: int) -> list[tuple[int, int, int]] | None:
    """(start, '(' index, ')' index) of each call of `name` in tests[lo:hi]; None if any is
    qualified by something other than `Problem.`, nested in another's arguments, or used as
    a method group (not called)."""
    found = []
    for m in re.finditer(rf"(?<!\w){re.escape(name)}\b", tests[lo:hi]):
        start = lo + m.start()
        if not mask[start]:
            continue
        if tests[start - 1] == ".":
            if not tests[:start].endswith("Problem."):
                return None
            start -= len("Problem.")
            if start > 0 and (tests[start - 1].isalnum() or tests[start - 1] in "_."):
                return None
        k = lo + m.end()
        while k < hi and tests[k].isspace():
            k += 1
        if k >= hi or tests[k] != "(":
            return None
        close = _close_paren(tests, mask, k)
        if close < 0 or close >= hi:
            return None
        found.append((start, k, close))
    for (s1, _o1, c1), (s2, _o2, _c2) in zip(found, found[1:]):
        if s2 < c1:  # nested: the inner call's value is an argument of the outer one
            return None
    return found


@dataclass(frozen=True)
class SolverRun:
    """What a split solver's run left: its final harness status (PASS: Main returned; AFAIL:
    returned after a Debug.Fail of the solution; OUTCAP: returned over the output cap; EXC,
    UNHANDLED, TIMEOUT...: it ended early; None: no verdict line at all) and its site values."""

    final: str | None
    values: tuple[tuple[int, int, str], ...]  # (site, flags, value b64), as reported

    def ordered(self) -> list[tuple[int, str]] | None:
        """(flags, value text) of sites 0, 1, ... as far as they run without a gap; None when
        a site was reported twice (a run that wrote lines of its own)."""
        by_site: dict[int, tuple[int, str]] = {}
        for k, flags, b64 in self.values:
            if k in by_site:
                return None
            by_site[k] = (flags, b64)
        out = []
        while len(out) in by_site:
            flags, b64 = by_site[len(out)]
            try:
                text = base64.b64decode(b64, validate=True).decode("ascii")
            except (ValueError, UnicodeDecodeError):
                return None
            if not text or any(c in text for c in "\n\r\t"):
                return None
            out.append((flags & 3, text))
        return out

    @property
    def returned(self) -> bool:
        return self.final in ("PASS", "AFAIL", "OUTCAP")


def checker_payload(run: SolverRun, sites: int) -> str | None:
    """The replay the checker reads (harness_cs.Replay.Load), or None when the solver's report
    is unreadable. end = the site where the solver's run ended (-1: every site returned)."""
    ordered = run.ordered()
    if ordered is None:
        return None
    ordered = ordered[:sites]
    end = -1 if run.returned and len(ordered) == sites else len(ordered)
    text = f"{end} {len(ordered)}" + "".join(f" {flags} {value}" for flags, value in ordered)
    return base64.b64encode(text.encode("ascii")).decode("ascii")


def combine(solver: Result, run: SolverRun, sites: int, checker: Result | None, reached: tuple[int, bool] | None) -> Result:
    """The program's verdict from its solver's run and its checker's, with the precedence of a
    whole run (harness_cs.Entry: time limit, then a failed assertion, then an exception, then
    the output cap): a site the checker never reached cannot decide anything."""
    if reached is not None:  # the tests got to the call where the solver's run ended
        if run.returned:  # Main returned with a site unreported: the solution stopped it early
            return Result(Status.NO_VERDICT, "the solution ended the tests early", solver.batched)
        if reached[1] and run.final == "EXC":  # a Debug.Fail before the exception decides first
            return Result(Status.ASSERTION_FAILED, "Debug.Fail in the solution", solver.batched)
        return Result(solver.status, solver.detail, solver.batched)
    if checker is None:
        return Result(Status.NO_VERDICT, "no checker verdict", solver.batched)
    if checker.status is Status.PASS:
        if not run.returned:  # every call returned, then the run died (an exit after the values):
            return Result(solver.status, solver.detail, solver.batched)  # as one run, no verdict
        if run.final == "AFAIL":
            return Result(Status.ASSERTION_FAILED, solver.detail or "Debug.Fail in the solution", solver.batched)
        if run.final == "OUTCAP":
            return Result(Status.RESOURCE_LIMIT, "output limit", solver.batched)
        return Result(Status.PASS, "", solver.batched)
    if checker.status is Status.EXCEPTION and checker.detail.startswith("SafuraiHarness.ReplayMismatch"):
        return Result(Status.NO_VERDICT, "a returned value does not fit the declared type", solver.batched)
    return Result(checker.status, checker.detail, solver.batched)
