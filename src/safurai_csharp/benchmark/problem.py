"""Translate one Python problem (prompt + check function) to a C# prompt and tests.

Follows the flow of MultiPL-E's generic_translator.py (``translate_prompt``
with doctests="transform" and ``translate_tests``); see translate.py for
attribution.
"""

from __future__ import annotations

import ast
import logging
import re

from .translate import (
    CLASS_NAME,
    INDENT,
    USINGS,
    Context,
    TranslationError,
    _LINESTART,
    gen_var,
)

log = logging.getLogger(__name__)

_DOCTEST = re.compile(r">>>.*\n.*\n")


def _signature(source: str) -> tuple[ast.FunctionDef, str]:
    """The single function of a prompt and its docstring (upstream appends ``pass``)."""
    module = ast.parse(source + "    pass")
    funcs = [n for n in module.body if isinstance(n, ast.FunctionDef)]
    if len(funcs) != 1:
        # Prompts with helper functions (HumanEval 32, 38, 50) cannot be expressed.
        raise TranslationError(f"prompt defines {len(funcs)} functions, expected 1")
    func = funcs[0]
    match func.body:
        case [ast.Expr(value=ast.Constant(value=str(doc))), ast.Pass()]:
            return func, doc
    raise TranslationError("prompt body is not a docstring")


def _transform_doctests(ctx: Context, description: str) -> str:
    """Replace each ``>>> call`` / result pair with its C# translation."""
    out, pos = [], 0
    for m in _DOCTEST.finditer(description):
        out.append(description[pos : m.start()])
        call_line, result_line = description[m.start() : m.end()].split("\n")[:2]
        try:
            call = ast.parse(call_line.strip(">>> ")).body[0].value
            result = ast.parse(result_line.strip()).body[0].value
        except (SyntaxError, IndexError, AttributeError) as exc:
            raise TranslationError(f"doctest is not `>>> call` + result: {call_line!r}") from exc
        cs_call = ctx.expr(call)[0]
        cs_result = ctx.finalize_rhs(ctx.expr(result))
        out.append(">>> " + cs_call + "\n    " + cs_result + "\n")
        pos = m.end()
    out.append(description[pos:])
    return "".join(out)


def translate_prompt(ctx: Context, source: str) -> str:
    """C# prompt for a Python prompt (imports + one annotated function + docstring)."""
    func, doc = _signature(source)
    ctx.setup(func.name, func.args.args, func.returns)
    desc = _transform_doctests(ctx, doc) if ">>>" in doc else doc
    comment = INDENT + "// " + _LINESTART.sub("\n" + INDENT + "// ", desc.strip())
    params = ", ".join(f"{t} {gen_var(a.arg)}" for t, a in zip(ctx.args_type, func.args.args))
    return (
        f"{USINGS}class {CLASS_NAME} {{\n{comment}\n"
        f"{INDENT}public static {ctx.return_type} {ctx.entry_point}({params}) {{\n"
    )


def signature_line(prompt: str) -> str:
    """The ``public static ...`` line of a C# prompt (for fidelity reports)."""
    lines = [ln for ln in prompt.splitlines() if ln.lstrip().startswith("public static")]
    return lines[-1].strip() if lines else ""


def translate_tests(ctx: Context, test_source: str) -> str:
    """C# ``Main`` with one ``Debug.Assert`` per ``assert candidate(...) == value``.

    ``ctx`` must already be set up by :func:`translate_prompt`.  A test case
    that cannot be translated is dropped (as upstream does); any statement
    other than such an assert makes the whole problem untranslatable.
    """
    module = ast.parse(test_source)
    match module.body:
        case [ast.FunctionDef(body=body)] | [ast.Assign(), ast.FunctionDef(body=body)]:
            pass
        case _:
            raise TranslationError("tests are not one check() function (plus METADATA)")
    lines = [INDENT + "}", INDENT + "public static void Main(string[] args) {"]
    for i, stmt in enumerate(body):
        match stmt:
            case ast.Assert(test=ast.Compare(left=left, ops=[ast.Eq()], comparators=[right]), msg=tolerance):
                try:
                    lhs = ctx.expr(left)[0]
                    rhs = ctx.finalize_rhs(ctx.expr(right))
                except TranslationError as exc:
                    log.warning("dropping test case %d of %s: %s", i, ctx.entry_point, exc)
                    continue
                if isinstance(tolerance, ast.Constant):
                    lines.append(ctx.tolerance_assertion(lhs, rhs, tolerance.value))
                else:
                    lines.append(ctx.assertion(lhs, rhs))
            case ast.Expr(value=ast.Name(id="print")):
                pass
            case _:
                raise TranslationError(f"untranslatable test statement: {ast.unparse(stmt)[:60]}")
    if len(lines) == 2:
        raise TranslationError("no test case could be translated")
    lines += [INDENT + "}\n", "}\n"]
    return "\n".join(lines)
