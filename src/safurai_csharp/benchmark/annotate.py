"""Infer Python type annotations for HumanEval prompts that have none.

About half of the HumanEval prompts are unannotated (``def bf(planet1, planet2):``)
and MultiPL-E annotated them by hand.  We infer the annotations from the
values in the problem's own ``check()`` asserts: argument types from the
``candidate(...)`` arguments, the return type from the expected values.
"""

from __future__ import annotations

import ast
from typing import Any

from .translate import TranslationError


class _Union(Exception):
    pass


# A type is a small tree: ("int",) ("float",) ("str",) ("bool",) ("None",)
# ("Any",) ("List", T) ("Dict", K, V) ("Tuple", T1, ...) ("TupleVar", T)
# ("Optional", T) and ("?",) for "unknown yet" (the element of an empty list).
UNKNOWN = ("?",)


def type_of(value: Any) -> tuple:
    if isinstance(value, bool):
        return ("bool",)
    if isinstance(value, int):
        return ("int",)
    if isinstance(value, float):
        # 2.0 next to ints reads as an int written loosely (HumanEval 130).
        return ("intfloat",) if value.is_integer() else ("float",)
    if isinstance(value, str):
        return ("str",)
    if value is None:
        return ("None",)
    if isinstance(value, list):
        return ("List", _join_all([type_of(v) for v in value]))
    if isinstance(value, tuple):
        return ("Tuple", *[type_of(v) for v in value])
    if isinstance(value, dict):
        return ("Dict", _join_all([type_of(k) for k in value]), _join_all([type_of(v) for v in value.values()]))
    raise _Union(f"unsupported value {value!r}")


def _join_all(types: list[tuple]) -> tuple:
    out = UNKNOWN
    for t in types:
        out = join(out, t)
    return out


def join(a: tuple, b: tuple) -> tuple:
    """Least common type of two inferred types; raises _Union when there is none."""
    if a == b:
        return a
    if a == UNKNOWN:
        return b
    if b == UNKNOWN:
        return a
    if a == ("None",):
        return b if b[0] == "Optional" else ("Optional", b)
    if b == ("None",):
        return join(b, a)
    if a[0] == "Optional" or b[0] == "Optional":
        inner_a = a[1] if a[0] == "Optional" else a
        inner_b = b[1] if b[0] == "Optional" else b
        return ("Optional", join(inner_a, inner_b))
    if {a[0], b[0]} == {"int", "intfloat"}:
        return ("int",)
    if {a[0], b[0]} <= {"int", "float", "intfloat"}:
        return ("float",)
    if a[0] == b[0] == "List":
        return ("List", join(a[1], b[1]))
    if a[0] == b[0] == "Dict":
        return ("Dict", join(a[1], b[1]), join(a[2], b[2]))
    if a[0] in ("Tuple", "TupleVar") and b[0] in ("Tuple", "TupleVar"):
        if a[0] == b[0] == "Tuple" and len(a) == len(b):
            return ("Tuple", *[join(x, y) for x, y in zip(a[1:], b[1:])])
        # Tuples of several lengths: a variable-length homogeneous tuple.
        return ("TupleVar", _join_all(list(a[1:]) + list(b[1:])))
    raise _Union(f"{a} vs {b}")


def to_annotation(t: tuple) -> str:
    match t:
        case ("?",):
            return "int"  # upstream's default for an empty literal
        case ("intfloat",):
            return "float"
        case ("List", e):
            return f"List[{to_annotation(e)}]"
        case ("Dict", k, v):
            return f"Dict[{to_annotation(k)}, {to_annotation(v)}]"
        case ("Tuple",):
            return "Tuple[int, ...]"
        case ("Tuple", *es):
            return f"Tuple[{', '.join(to_annotation(e) for e in es)}]"
        case ("TupleVar", e):
            return f"Tuple[{to_annotation(e)}, ...]"
        case ("Optional", e):
            return f"Optional[{to_annotation(e)}]"
        case (name,):
            return name
    raise AssertionError(t)


def _check_body(test_source: str) -> list[ast.stmt]:
    for node in ast.parse(test_source).body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            return node.body
    return []


def observed_calls(test_source: str) -> list[tuple[int, list[Any], Any]]:
    """``(index in check(), args, expected)`` of each ``assert candidate(<literals>) == <literal>``."""
    out = []
    for i, stmt in enumerate(_check_body(test_source)):
        match stmt:
            case ast.Assert(
                test=ast.Compare(left=ast.Call(func=ast.Name(id="candidate"), args=args), ops=[ast.Eq()], comparators=[rhs])
            ):
                try:
                    values = [ast.literal_eval(a) for a in args]
                    expected = ast.literal_eval(rhs)
                except (ValueError, SyntaxError, TypeError):
                    continue
                out.append((i, values, expected))
    return out


def _majority_join(types: list[tuple]) -> tuple[tuple, set[int]]:
    """Join all types; on a union, keep the most common type and report the outliers."""
    try:
        return _join_all(types), set()
    except _Union:
        pass
    best = max(set(types), key=types.count)
    outliers = {i for i, t in enumerate(types) if not _joins(t, best)}
    if len(outliers) > 1:
        # Several tests use another type: the parameter really is a union (HumanEval 137).
        raise _Union(f"parameter values of several types: {sorted(set(types))}")
    return _join_all([t for i, t in enumerate(types) if i not in outliers]), outliers


def _safe_type(value: Any) -> tuple:
    try:
        return type_of(value)
    except _Union:
        return ("!",)  # e.g. a dict with both str and int keys: joins with nothing


def _joins(a: tuple, b: tuple) -> bool:
    if "!" in (a[0], b[0]):
        return False
    try:
        join(a, b)
        return True
    except _Union:
        return False


def infer_signature(nargs: int, test_source: str) -> tuple[list[str], str, set[int]]:
    """Annotations for ``nargs`` parameters and the return value, and the check()
    statements to drop: tests whose argument has another type than most (HumanEval
    78 passes ``[]`` where every other test passes a string; 95 an int dict key).
    A return value of several types is a union, which C# cannot express.
    """
    calls = [c for c in observed_calls(test_source) if len(c[1]) == nargs]
    if not calls:
        raise TranslationError("no literal test call to infer types from")
    drop: set[int] = set()
    params = []
    try:
        for p in range(nargs):
            t, outliers = _majority_join([_safe_type(args[p]) for _, args, _ in calls])
            params.append(t)
            drop |= {calls[i][0] for i in outliers}
        ret = _join_all([type_of(r) for i, _, r in calls if i not in drop])
    except _Union as exc:
        raise TranslationError(f"values of several types (a union): {exc}") from None
    return [to_annotation(p) for p in params], to_annotation(ret), drop


def conform_value(value: Any, annotation: ast.expr) -> Any:
    """Rewrite integral floats as ints where an int is expected, and an int-led list
    of floats as floats, as MultiPL-E's hand-cleaned tests do."""
    match annotation:
        case ast.Name(id="int") if isinstance(value, float) and value.is_integer():
            return int(value)
        case ast.Subscript(value=ast.Name(id="List"), slice=ast.Name(id="float")) if (
            value and type(value[0]) is int
        ):
            # The list's C# array type comes from its first element: new List<float>(new long[]{..})
            # would not compile, so upstream wrote these as floats.
            return [float(v) if type(v) is int else v for v in value]
        case ast.Subscript(value=ast.Name(id="List"), slice=elem) if isinstance(value, list):
            return [conform_value(v, elem) for v in value]
        case ast.Subscript(value=ast.Name(id="Optional"), slice=elem):
            return conform_value(value, elem)
        case ast.Subscript(value=ast.Name(id="Dict"), slice=ast.Tuple(elts=[k, v])) if isinstance(value, dict):
            return {conform_value(a, k): conform_value(b, v) for a, b in value.items()}
        case ast.Subscript(value=ast.Name(id="Tuple"), slice=ast.Tuple(elts=elts)) if isinstance(value, tuple):
            if len(elts) == len(value):
                return tuple(conform_value(v, e) for v, e in zip(value, elts))
    return value
