"""Turn a raw HumanEval problem into the Python MultiPL-E's translator expects.

MultiPL-E did this by hand ("originals-with-cleaned-doctests"); we do it with
general rules, each one a kind of cleaning upstream applied:

- the prompt keeps only the entry-point function (helpers that its docstring
  does not mention, module constants, code before the docstring are dropped);
  a helper named in the docstring is part of the specification, so the problem
  is untranslatable (HumanEval 32, 38, 50, as upstream);
- missing or bare (``list``) annotations are inferred from the tests;
- examples are turned into ``>>> call`` / result doctest pairs
  (``f(x) == y``, ``f(x) ➞ y``, ``>>> f(x) == y``, an empty result line = None);
  a doctest whose call or result spans lines is dropped;
- tests keep only the ``assert <expr> == <expr>`` statements of check().
"""

from __future__ import annotations

import ast
import re

from .annotate import conform_value, infer_signature
from .translate import TranslationError

_BARE = {"list", "dict", "tuple", "List", "Dict", "Tuple"}
_EXAMPLE = re.compile(
    r"^(?P<indent>\s*)(?:>>>\s*)?(?P<call>{name}\(.*\))\s*"
    r"(?:==>|==|=>|➞|->|=|should return|returns?|→)\s*(?P<out>.+?)\s*$"
)


def _needs_inference(ann: ast.expr | None) -> bool:
    return ann is None or (isinstance(ann, ast.Name) and ann.id in _BARE)


def _parses(text: str) -> ast.expr | None:
    try:
        body = ast.parse(text.strip()).body
    except SyntaxError:
        return None
    if len(body) == 1 and isinstance(body[0], ast.Expr):
        return body[0].value
    return None


def _literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, SyntaxError, TypeError):
        return False


def _is_example_call(node: ast.expr | None, name: str) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
        and all(_literal(a) for a in node.args)
    )


def normalize_doc(doc: str, name: str) -> str:
    """Rewrite the examples of a docstring as two-line ``>>>`` doctests."""
    example = re.compile(_EXAMPLE.pattern.format(name=re.escape(name)))
    lines = doc.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        m = example.match(line)
        if m and _is_example_call(_parses(m["call"]), name) and _parses(m["out"]) is not None \
                and _literal(_parses(m["out"])):
            out += [f"{m['indent']}>>> {m['call']}", f"{m['indent']}{m['out']}"]
            i += 1
            continue
        if stripped.startswith(">>>"):
            call = _parses(stripped[3:])
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            indent = line[: len(line) - len(line.lstrip())]
            if _is_example_call(call, name):
                if not nxt.strip() or nxt.strip().startswith(">>>"):
                    # Nothing printed: the call returned None.
                    out += [line, f"{indent}None"]
                    i += 1
                    continue
                if _parses(nxt) is not None:
                    out += [line, nxt]
                    i += 2
                    continue
            # A call or result that spans lines cannot be a two-line doctest: drop it.
            i += 1
            while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(">>>"):
                i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _conform_tests(test: str, params: list[ast.expr], ret: ast.expr, drop: set[int]) -> str:
    """Drop the outlier tests and give every literal the type of the inferred signature."""
    module = ast.parse(test)
    check = next(n for n in module.body if isinstance(n, ast.FunctionDef))
    body = []
    for i, stmt in enumerate(check.body):
        if i in drop:
            continue
        call, rhs = stmt.test.left, stmt.test.comparators[0]
        if isinstance(call, ast.Call) and len(call.args) == len(params):
            call.args = [_conform(a, t) for a, t in zip(call.args, params)]
        stmt.test.comparators = [_conform(rhs, ret)]
        body.append(stmt)
    check.body = body
    return ast.unparse(module) + "\n"


def _conform(node: ast.expr, annotation: ast.expr) -> ast.expr:
    if not _literal(node):
        return node
    value = conform_value(ast.literal_eval(node), annotation)
    return ast.parse(repr(value), mode="eval").body


def entry_function(prompt: str, entry_point: str) -> tuple[ast.FunctionDef, str]:
    """The entry-point function of a prompt and its docstring.

    A helper function named in that docstring is part of the specification and
    cannot be carried into a C# prompt of one method (HumanEval 32, 38, 50).
    """
    module = ast.parse(prompt + "    pass")
    funcs = [n for n in module.body if isinstance(n, ast.FunctionDef)]
    target = [f for f in funcs if f.name == entry_point]
    if len(target) != 1:
        raise TranslationError(f"no single function {entry_point} in the prompt")
    func = target[0]
    docs = [s for s in func.body if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
            and isinstance(s.value.value, str)]
    if not docs:
        raise TranslationError("prompt has no docstring")
    doc = docs[0].value.value
    for helper in funcs:
        if helper is not func and helper.name in doc:
            raise TranslationError(f"the docstring relies on helper function {helper.name}")
    return func, doc


def normalize(prompt: str, test: str, entry_point: str) -> tuple[str, str]:
    """(one annotated function with a docstring, its check() tests), in Python source."""
    func, doc = entry_function(prompt, entry_point)
    args = func.args.args
    if any(_needs_inference(a.annotation) for a in args) or _needs_inference(func.returns):
        inferred_args, inferred_ret, drop = infer_signature(len(args), test)
        params = [inferred_args[i] if _needs_inference(a.annotation) else ast.unparse(a.annotation)
                  for i, a in enumerate(args)]
        ret = inferred_ret if _needs_inference(func.returns) else ast.unparse(func.returns)
        test = _conform_tests(test, [ast.parse(p, mode="eval").body for p in params],
                              ast.parse(ret, mode="eval").body, drop)
    else:
        params = [ast.unparse(a.annotation) for a in args]
        ret = ast.unparse(func.returns)
    signature = ", ".join(f"{a.arg}: {t}" for a, t in zip(args, params))
    doc = normalize_doc(doc, entry_point).replace("\\", "\\\\")
    return f'def {func.name}({signature}) -> {ret}:\n    """{doc}"""\n', test


_FOLDABLE = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop, ast.List, ast.Tuple,
             ast.Dict, ast.Load, ast.Call, ast.Name)


def _fold(node: ast.expr, reference=None) -> ast.expr:
    """Replace a constant expression (``3 * 19``, ``str(4)``, ``ref([1, 2])``) by its value."""
    if isinstance(node, ast.Constant) or _literal(node) and not isinstance(node, ast.BinOp):
        return node
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    env = {"str": str, "len": len}
    if reference is not None and reference[0] in names:
        env[reference[0]] = reference[1]()  # load (exec) the canonical solution only when used
    if not all(isinstance(n, _FOLDABLE) for n in ast.walk(node)) or not names <= set(env):
        return node
    try:
        value = eval(compile(ast.fix_missing_locations(ast.Expression(node)), "<test>", "eval"), {"__builtins__": {}}, env)  # noqa: S307
    except Exception:  # noqa: BLE001 - not a constant expression after all
        return node
    return ast.parse(repr(value), mode="eval").body


def _normalize_assert(stmt: ast.Assert, reference) -> ast.Assert | None:
    """``assert lhs == rhs`` from the forms HumanEval uses, or None."""
    test = stmt.test
    tolerance = None
    match test:
        case ast.Compare(left=left, ops=[ast.Eq() | ast.Is()], comparators=[right]):
            pass
        case ast.UnaryOp(op=ast.Not(), operand=ast.Call() as call):
            left, right = call, ast.Constant(False)
        case ast.Call():
            left, right = test, ast.Constant(True)
        case ast.Compare(left=ast.Call(func=ast.Name(id="abs"), args=[ast.BinOp(op=ast.Sub(), left=left, right=right)]),
                         ops=[ast.Lt()], comparators=[ast.Constant(value=float() | int()) as eps]):
            # abs(f(x) - y) < eps: carried as the assert's message so that the C# test
            # compares with the same tolerance (exact float equality would fail correct code).
            tolerance = eps
        case _:
            return None
    for wrap in ("tuple", "list"):
        if all(isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and x.func.id == wrap
               and len(x.args) == 1 for x in (left, right)):
            left, right = left.args[0], right.args[0]
    if isinstance(left, ast.Call):
        left = ast.Call(func=left.func, args=[_fold(a) for a in left.args], keywords=[])
    right = _fold(right, reference)
    return ast.Assert(test=ast.Compare(left=left, ops=[ast.Eq()], comparators=[right]), msg=tolerance)


def _unroll(stmt: ast.For) -> list[ast.stmt]:
    """``for x in range(a, b): assert ...`` -> one assert per x."""
    match stmt:
        case ast.For(target=ast.Name(id=var), iter=ast.Call(func=ast.Name(id="range"), args=bounds), body=body):
            if not all(isinstance(b, ast.Assert) for b in body) or not all(_literal(b) for b in bounds):
                return []
        case _:
            return []
    out = []
    for x in range(*[ast.literal_eval(b) for b in bounds]):
        for b in body:
            class Sub(ast.NodeTransformer):
                def visit_Name(self, n):  # noqa: N802
                    return ast.Constant(x) if n.id == var else n
            out.append(Sub().visit(ast.parse(ast.unparse(b)).body[0]))
    return out


def clean_tests(test: str, reference=None) -> str:
    """Keep only what MultiPL-E can translate: ``assert <expr> == <expr>`` in check().

    ``reference`` is ``(name, loader)``: the loader returns the canonical solution, used to compute
    expected values written as calls to it (HumanEval 33, 37).
    """
    module = ast.parse(test)
    checks = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if len(checks) != 1:
        raise TranslationError("tests have no check() function")
    body: list[ast.stmt] = []
    for stmt in checks[0].body:
        for s in _unroll(stmt) if isinstance(stmt, ast.For) else [stmt]:
            if isinstance(s, ast.Assert):
                fixed = _normalize_assert(s, reference)
                if fixed is not None and not (isinstance(fixed.test.left, ast.Constant)):
                    body.append(fixed)
    if not body:
        raise TranslationError("check() has no `assert x == y` statement")
    checks[0].body = body
    module.body = checks
    return ast.unparse(module) + "\n"
