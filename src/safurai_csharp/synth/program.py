"""C# programs of synthetic examples: solution + tests, and the 'trivially wrong' mutant.

A generated example is a task statement, a C# solution (static methods in a class) and a
list of `Debug.Assert(...)` statements that call it. The sandbox (`safurai_csharp.csharp`)
runs MultiPL-E-shaped programs: its harness enters `Problem.Main` and proves every assertion
ran. So the example becomes::

    <using header>
    <solution>
    class Problem { public static void Main(string[] args) { <tests> } }

A solution that declares its own `Problem` class or a `Main` does not compile (duplicate
type, CS0017): that is a bad example for a task that asked for a library method anyway.

Non-trivial tests (SelfCodeAlign's lesson: self-written tests are often vacuous): they must
call a method the solution declares, contain at least a few assertions, and *fail* when
every method body is replaced by `return default(T);` — the mutant from :func:`stub_bodies`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..csharp import Program
from ..csharp.modes import _assert_sites, code_mask

# The namespaces every example may use without saying so; the parser writes them into each
# solution (so a training response compiles on its own), the program adds them for the tests.
STANDARD_USINGS = ("System", "System.Collections.Generic", "System.Globalization", "System.Linq",
                   "System.Numerics", "System.Text", "System.Text.RegularExpressions")
HEADER = "".join(f"using {ns};\n" for ns in (*STANDARD_USINGS, "System.Diagnostics"))
_USING = re.compile(r"^[ \t]*using[ \t]+(?!static\b)([\w.]+)[ \t]*;[ \t]*$", re.MULTILINE)
_MAIN_OPEN = "class Problem {\n    public static void Main(string[] args) {\n"
_MAIN_CLOSE = "\n    }\n}\n"

_MODIFIERS = r"(?:public|private|protected|internal|static|async|unsafe|override|virtual|sealed|new|extern)"
# A method declaration head: modifiers including `static`, a return type, a name, and a
# parameter list. Generic types and arrays are allowed in the return type.
_METHOD = re.compile(
    rf"(?:(?:{_MODIFIERS})\s+)*static\s+(?:(?:{_MODIFIERS})\s+)*"
    r"(?P<ret>[A-Za-z_][\w.]*(?:\s*<[^;{}()]*?>)?(?:\s*\[[\s,]*\])*\??|\([^;{}]*?\))\s+"
    r"(?P<name>[A-Za-z_]\w*)\s*(?:<[^;{}()]*?>)?\s*\("
)


_TYPE = re.compile(r"\b(?P<kind>class|struct|interface|enum)\s+(?P<name>[A-Za-z_]\w*)\s*(?P<generic><)?")


def top_level_types(solution: str) -> list[tuple[str, str, bool]]:
    """(kind, name, generic) of each type declared outside any braces."""
    mask = code_mask(solution)
    depth, found = 0, []
    starts = {m.start(): m for m in _TYPE.finditer(solution) if mask[m.start()]}
    for k, ch in enumerate(solution):
        if k in starts and depth == 0:
            m = starts[k]
            found.append((m.group("kind"), m.group("name"), m.group("generic") is not None))
        if mask[k]:
            depth += (ch == "{") - (ch == "}")
    return found


def program(solution: str, tests: str, name: str = "") -> Program:
    """The sandbox program for one example (official mode: tests run as written).

    `using static` on each top-level non-generic class lets tests call a method either as
    `Class.Method(...)` or plain `Method(...)`, as teachers write both.
    """
    statics = "".join(f"using static {n};\n" for kind, n, generic in top_level_types(solution)
                      if kind in ("class", "struct") and not generic and n != "Problem")
    return Program(prompt=HEADER + statics + solution.rstrip() + "\n", completion="",
                   tests=_MAIN_OPEN + tests.rstrip() + _MAIN_CLOSE, mode="official", name=name)


def with_standard_usings(solution: str) -> str:
    """The solution headed by the standard using block plus its own other usings."""
    own = [ns for ns in _USING.findall(solution) if ns not in STANDARD_USINGS]
    body = _USING.sub("", solution).strip("\n")
    usings = "".join(f"using {ns};\n" for ns in (*STANDARD_USINGS, *dict.fromkeys(own)))
    return f"{usings}\n{body}"


_BARE_HEAD = re.compile(
    r"^(?P<indent>[ \t]*)(?P<access>(?:public|private|internal)[ \t]+)?(?!static\b|return\b|using\b|new\b|var\b)"
    r"(?P<rest>[A-Za-z_][\w<>\[\],.? ]*?[ \t]+[A-Za-z_]\w*[ \t]*(?:<[^>()]*>)?[ \t]*\()", re.MULTILINE)


def _make_static(solution: str) -> str:
    """Top-level method heads without `static` get it (they go into a static class)."""
    mask = code_mask(solution)
    depth_at, depth = [], 0
    for k, ch in enumerate(solution):
        depth_at.append(depth)
        if mask[k]:
            depth += (ch == "{") - (ch == "}")
    out, last = [], 0
    for m in _BARE_HEAD.finditer(solution):
        words = re.findall(r"\w+", m.group(0))
        if mask[m.start("rest")] and depth_at[m.start("rest")] == 0 and "static" not in words:
            out.append(solution[last:m.start("rest")] + "static ")
            last = m.start("rest")
    return "".join(out) + solution[last:]


def wrap_bare_methods(solution: str) -> str:
    """Methods written without a class (C# needs one) go into `public static class Solution`."""
    if top_level_types(solution):
        return solution
    solution = _make_static(solution)
    if not static_methods(solution):
        return solution
    lines = solution.splitlines()
    usings = [ln for ln in lines if ln.strip().startswith("using ") and ln.strip().endswith(";")]
    body = [ln for ln in lines if ln not in usings]
    inner = "\n".join(("    " + ln) if ln.strip() else "" for ln in body).strip("\n")
    head = "\n".join(usings) + "\n\n" if usings else ""
    return f"{head}public static class Solution\n{{\n{inner}\n}}"


def rename_clashing_classes(solution: str, tests: str) -> tuple[str, str]:
    """A class named like one of its methods (`class Add { static int Add(...) }`) is error
    CS0542; small teachers write it often. The class becomes `<Name>Solution` in the solution
    and in the tests' qualified calls."""
    methods = set(method_names(solution))
    for kind, name, _generic in top_level_types(solution):
        if kind != "class" or name not in methods:
            continue
        new = f"{name}Solution"
        solution = re.sub(rf"\bclass\s+{name}\b", f"class {new}", solution, count=1)
        for text_name in ("solution", "tests"):
            text = solution if text_name == "solution" else tests
            mask = code_mask(text)
            pieces, last = [], 0
            for m in re.finditer(rf"(?<![\w.]){re.escape(name)}(?=\s*(?:<[^;()]*>)?\s*\.)", text):
                if mask[m.start()]:
                    pieces.append(text[last:m.start()] + new)
                    last = m.end()
            text = "".join(pieces) + text[last:]
            solution, tests = (text, tests) if text_name == "solution" else (solution, text)
    return solution, tests


# Static classes of the base library tests legitimately call (`Math.Max(...)`): never
# taken for a misnamed solution class.
LIBRARY_CLASSES = frozenset((
    "Array", "BigInteger", "BitConverter", "Boolean", "Byte", "Char", "Comparer", "Console", "Convert",
    "DateTime", "Debug", "Decimal", "Dictionary", "Double", "Encoding", "Enum", "Enumerable", "Environment",
    "EqualityComparer", "Guid", "HashSet", "Int16", "Int32", "Int64", "List", "Math", "Object", "Regex",
    "Single", "String", "StringComparer", "TimeSpan", "Tuple", "UInt32", "UInt64", "ValueTuple",
))


def rewrite_qualifiers(text: str, methods: set[str], new_qualifier) -> str:
    """Each `Cls.Method(` call in code (not in comments or strings) whose method is one of
    `methods` and whose class is not a library class: `new_qualifier(cls)` gives the class
    to call it through instead ("" drops `Cls.`), or None to leave the call as it is."""
    mask = code_mask(text)
    pieces, last = [], 0
    for m in re.finditer(r"(?<![\w.])(?P<cls>[A-Z]\w*)\s*\.\s*(?P<method>[A-Za-z_]\w*)\s*\(", text):
        cls = m.group("cls")
        if not mask[m.start()] or m.group("method") not in methods or cls in LIBRARY_CLASSES:
            continue
        new = new_qualifier(cls)
        if new is None:
            continue
        pieces.append(text[last:m.start()] + new)
        last = m.end("cls") if new else m.start("method")
    return "".join(pieces) + text[last:]


def requalify_calls(solution: str, tests: str) -> str:
    """Tests that call the solution's method through a class the solution does not declare
    (`Sorting.Merge(...)` for `public static class MergeSort { ... Merge ... }`): a small
    teacher renames the class between sections, error CS0103. When the solution declares one
    non-generic class, such a qualifier is rewritten to it; the sandbox then decides whether
    the example holds."""
    classes = [n for kind, n, generic in top_level_types(solution) if kind in ("class", "struct") and not generic]
    if len(classes) != 1:
        return tests
    declared = {n for _kind, n, _generic in top_level_types(solution)}
    return rewrite_qualifiers(tests, set(method_names(solution)), lambda cls: None if cls in declared else classes[0])


def assertion_count(tests: str) -> int:
    return len(_assert_sites(tests, code_mask(tests)))


def _matching(text: str, mask: list[bool], open_idx: int, pair: str) -> int:
    depth = 0
    for k in range(open_idx, len(text)):
        if not mask[k]:
            continue
        if text[k] == pair[0]:
            depth += 1
        elif text[k] == pair[1]:
            depth -= 1
            if depth == 0:
                return k
    return -1


class MethodSpan(NamedTuple):
    """A static method with a body: `head_start` is where its modifiers begin, `name_start`
    where its name does, [body_start, body_end) the `{...}` block or the `=> expr;` body."""

    ret: str
    name: str
    head_start: int
    name_start: int
    body_start: int
    body_end: int


def method_spans(solution: str) -> list[MethodSpan]:
    """Each outermost static method with a body, in source order (local functions inside a
    matched body are part of that body)."""
    mask = code_mask(solution)
    found = []
    for m in _METHOD.finditer(solution):
        if not mask[m.start()]:
            continue
        close = _matching(solution, mask, m.end() - 1, "()")
        if close < 0:
            continue
        k = close + 1
        # skip `where T : ...` constraints up to the body
        while k < len(solution) and (not mask[k] or solution[k] not in "{;="):
            k += 1
        if k >= len(solution) or solution[k] == ";":
            continue  # abstract/extern/partial declaration without a body
        head = (m.group("ret").strip(), m.group("name"), m.start(), m.start("name"))
        if solution.startswith("=>", k):
            end = k
            while end < len(solution) and (not mask[end] or solution[end] != ";"):
                end += 1
            found.append(MethodSpan(*head, k, end + 1))
        elif solution[k] == "{":
            end = _matching(solution, mask, k, "{}")
            if end > 0:
                found.append(MethodSpan(*head, k, end + 1))
    outer: list[MethodSpan] = []
    last_end = -1
    for span in sorted(found, key=lambda t: t.body_start):
        if span.body_start >= last_end:
            outer.append(span)
            last_end = span.body_end
    return outer


def static_methods(solution: str) -> list[tuple[str, str, int, int]]:
    """(return type, name, body start, body end) of each static method with a body.

    Body = the `{...}` block (start at '{', end after '}') or an expression body
    `=> expr;` (start at '=>', end after ';').
    """
    return [(s.ret, s.name, s.body_start, s.body_end) for s in method_spans(solution)]


def method_names(solution: str) -> list[str]:
    return [name for _ret, name, _s, _e in static_methods(solution) if name != "Main"]


def calls_solution(solution: str, tests: str) -> bool:
    """The tests call at least one static method the solution declares."""
    mask = code_mask(tests)
    for name in method_names(solution):
        for m in re.finditer(rf"\b{re.escape(name)}\s*(?:<[^;()]*>)?\s*\(", tests):
            if mask[m.start()]:
                return True
    return False


def split_statements(tests: str) -> list[str]:
    """Top-level statements of a tests block (complete `...;` or `{...}` units)."""
    mask = code_mask(tests)
    out, depth, start = [], 0, 0
    for k, ch in enumerate(tests):
        if not mask[k]:
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0 and ch == "}" and not tests[k + 1:].lstrip().startswith(("catch", "finally", "else")):
                out.append(tests[start:k + 1].strip())
                start = k + 1
        elif ch == ";" and depth == 0:
            out.append(tests[start:k + 1].strip())
            start = k + 1
    return [s for s in out if s]


def assert_only(tests: str) -> list[str] | None:
    """The assertions, when the tests are nothing but top-level `Debug.Assert(...);` lines."""
    stmts = ["\n".join(ln for ln in s.splitlines() if not ln.strip().startswith("//")).strip()
             for s in split_statements(tests)]
    if stmts and all(assertion_count(s) == 1 and s.startswith(("Debug.Assert(", "System.Diagnostics.Debug.Assert("))
                     for s in stmts):
        return stmts
    return None


def stub_bodies(solution: str) -> str | None:
    """The solution with every static method body replaced by `return default(T);` (void: empty).

    None when the solution has no static method with a body (nothing to mutate).
    """
    methods = static_methods(solution)
    if not methods:
        return None
    out, last = [], 0
    for ret, _name, start, end in methods:
        out.append(solution[last:start])
        if solution.startswith("=>", start):
            out.append(f"=> default({ret});" if ret != "void" else "=> System.Console.Write(\"\");")
        else:
            # mono's mcs speaks C# 7.0: no `default` literal, so the type is spelled out.
            out.append("{ }" if ret == "void" else f"{{ return default({ret}); }}")
        last = end
    out.append(solution[last:])
    return "".join(out)
