"""Python (HumanEval) -> C# translation, MultiPL-E style.

A port of the logic of MultiPL-E's C# translator (nuprl/MultiPL-E,
dataset_builder/humaneval_to_cs.py, which subclasses humaneval_to_cpp.py and is
driven by generic_translator.py; BSD-3-Clause, (c) the MultiPL-E authors),
restructured for this project.  Upstream's quirks are reproduced on purpose,
because the point is byte-identical output: string literals are only
newline-escaped, a tuple "contains None" when the text ``null`` appears in it,
and the coercion of a value to an expected type is a textual rewrite of its
first ``new X(`` constructor.

Every translated expression is a pair ``(code, pytype)`` where ``pytype`` is a
Python annotation AST (or None for names and calls, whose type is unknown).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

STRING, FLOAT, INT, BOOL, NULL = "string", "float", "long", "bool", "null"
LIST, TUPLE, DICT, NULLABLE, ANY = "List", "Tuple", "Dictionary", "Nullable", "object"
MAKE_TUPLE = "Tuple.Create"
PRIMITIVES = (FLOAT, BOOL, INT)

# Python parameter names that are C# keywords or clash with C# names, and
# upstream's replacement for each (C++ parent's two plus the C# additions).
KEYWORDS = {
    "operator": "op",
    "strlen": "string_length",
    "string": "str",
    "base": "numBase",
    "decimal": "decimalNum",
}

USINGS = (
    "using System;\n"
    "using System.Numerics;\n"
    "using System.Diagnostics;\n"
    "using System.Collections.Generic;\n"
    "using System.Linq;\n"
    "using System.Text;\n"
    "using System.Security.Cryptography;\n"
)
FLOAT_TOLERANCE = 1e-4
CLASS_NAME = "Problem"
INDENT = "    "
STOP_TOKENS = ["\n    }\n"]

# Every newline plus the whitespace after it (blank lines included) becomes one
# comment line start: why upstream prompts never have empty "//" lines.
_LINESTART = re.compile(r"\n(\s*)")


class TranslationError(ValueError):
    """The Python source uses something MultiPL-E's C# translator cannot express."""


def to_camel_case(name: str) -> str:
    # str.title() lower-cases the rest of each part: minSubArraySum -> Minsubarraysum.
    return "".join(part.title() for part in name.split("_"))


def gen_var(name: str) -> str:
    return KEYWORDS.get(name, name)


def is_primitive(cs_type: str) -> bool:
    return cs_type in PRIMITIVES


# ---------------------------------------------------------------- types


def _name(id_: str) -> ast.Name:
    return ast.Name(id=id_)


@dataclass
class Context:
    """Per-problem state, as upstream keeps it on the translator object."""

    entry_point: str = ""
    args_type: list[str] = field(default_factory=list)
    return_type: str = ""
    # Tuple[T, ...] anywhere in the signature makes every tuple value a list.
    tuple_has_ellipsis: bool = False

    def cs_type(self, ann: ast.expr | None) -> str:
        """Translate a Python annotation to a C# type."""
        if ann is None:
            raise TranslationError("no annotation")
        match ann:
            case ast.Name(id="str"):
                return STRING
            case ast.Name(id="int"):
                return INT
            case ast.Name(id="float"):
                return FLOAT
            case ast.Name(id="bool"):
                return BOOL
            case ast.Name(id="None") | ast.Constant(value=None):
                return NULL
            case ast.Name(id="Any"):
                return ANY
            case ast.List(elts=elts):
                return f"{LIST}<{self.cs_type(elts[0])}>"
            case ast.Tuple(elts=elts):
                return f"{TUPLE}<{', '.join(self.cs_type(e) for e in elts)}>"
            case ast.Dict(keys=k, values=v):
                return f"{DICT}<{self.cs_type(k)},{self.cs_type(v)}>"
            case ast.Subscript(value=ast.Name(id="Dict"), slice=ast.Tuple(elts=kv)):
                return f"{DICT}<{self.cs_type(kv[0])},{self.cs_type(kv[1])}>"
            case ast.Subscript(value=ast.Name(id="List"), slice=elem):
                return f"{LIST}<{self.cs_type(elem)}>"
            case ast.Subscript(value=ast.Name(id="Tuple"), slice=elts):
                if isinstance(elts, ast.Tuple):
                    if any(isinstance(e, ast.Constant) and e.value is Ellipsis for e in elts.elts):
                        self.tuple_has_ellipsis = True
                        return f"{LIST}<{self.cs_type(elts.elts[0])}>"
                return self.cs_type(elts)
            case ast.Subscript(value=ast.Name(id="Optional"), slice=elem):
                inner = self.cs_type(elem)
                # Reference types are already nullable in C#.
                return f"{NULLABLE}<{inner}>" if is_primitive(inner) else inner
            case ast.Subscript(value=ast.Name(id="Union")):
                raise TranslationError("C# has no union types")
            case _:
                raise TranslationError(f"unhandled annotation: {ast.dump(ann)}")

    def setup(self, name: str, args: list[ast.arg], returns: ast.expr | None) -> None:
        self.tuple_has_ellipsis = False
        self.args_type = [self.cs_type(a.annotation) for a in args]
        self.entry_point = to_camel_case(name)
        self.return_type = self.cs_type(returns)

    # ------------------------------------------------------------ values

    def expr(self, node: ast.expr) -> tuple[str, ast.expr | None]:
        match node:
            case ast.Constant(value=v):
                return self.literal(v)
            case ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=n)):
                return self.literal(-n)
            case ast.Name(id=id_):
                return gen_var(id_), None
            case ast.List(elts=elts):
                return self.make_list([self.expr(e) for e in elts])
            case ast.Tuple(elts=elts):
                return self.make_tuple([self.expr(e) for e in elts])
            case ast.Dict(keys=keys, values=values):
                return self.make_dict([self.expr(k) for k in keys], [self.expr(v) for v in values])
            case ast.Call(func=func, args=args):
                return self.call(self.expr(func), [self.expr(a) for a in args])
            case _:
                raise TranslationError(f"unhandled expression: {ast.unparse(node)}")

    def literal(self, c: object) -> tuple[str, ast.expr]:
        if isinstance(c, bool):
            return str(c).lower(), _name("bool")
        if isinstance(c, str):
            # Upstream escapes newlines only (no quotes, no backslashes).
            return f'"{c}"'.replace("\n", "\\n"), _name("str")
        if isinstance(c, int):
            return repr(c) + "L", _name("int")
        if isinstance(c, float):
            return repr(c) + "f", _name("float")
        if c is None:
            return NULL, _name("None")
        raise TranslationError(f"unhandled literal {c!r}")

    def make_list(self, items: list[tuple[str, ast.expr | None]]) -> tuple[str, ast.expr]:
        if not items:
            return f"new {LIST}<{INT}>()", ast.List(elts=[_name("int")])
        elem_type = items[0][1]
        first = self.cs_type(elem_type)
        for _, t in items:
            other = self.cs_type(t)
            # Primitives can be cast to one another, objects cannot.
            if other != first and not is_primitive(other):
                elem_type = _name("Any")
        cs_elem = self.cs_type(elem_type)
        casts = [code if cs_elem == ANY else f"({cs_elem}){code}" for code, _ in items]
        code = f"new {LIST}<{cs_elem}>(new {cs_elem}[]{{{', '.join(casts)}}})"
        return code, ast.List(elts=[items[0][1]])

    def make_tuple(self, items: list[tuple[str, ast.expr | None]]) -> tuple[str, ast.expr]:
        if self.tuple_has_ellipsis:
            return self.make_list(items)
        if not items:
            return f"{MAKE_TUPLE}()", ast.Tuple(elts=[_name("int")])
        if NULL in ", ".join(code for code, _ in items):
            others = [t for _, t in items if self.cs_type(t) != NULL]
            other = self.cs_type(others[0]) if others else INT
            codes = [f"({NULLABLE}<{other}>){code}" if code == NULL else code for code, _ in items]
        else:
            codes = [code for code, _ in items]
        return f"{MAKE_TUPLE}({', '.join(codes)})", ast.Tuple(elts=[t for _, t in items])

    def make_dict(self, keys: list, values: list) -> tuple[str, ast.expr]:
        if not keys:
            dict_type = ast.Dict(keys=_name("int"), values=_name("int"))
            return f"new {self.cs_type(dict_type)}()", dict_type
        dict_type = ast.Dict(keys=keys[0][1], values=values[0][1])
        pairs = ", ".join(f"{{{k}, {v}}}" for (k, _), (v, _) in zip(keys, values))
        return f"new {self.cs_type(dict_type)}(){{{pairs}}}", dict_type

    def call(self, func: tuple[str, object], args: list) -> tuple[str, None]:
        name = to_camel_case(func[0])
        if name.lower() == "candidate":
            name = self.entry_point
        if len(args) != len(self.args_type):
            raise TranslationError(f"{name} called with {len(args)} arguments, expects {len(self.args_type)}")
        return f"{name}({', '.join(self.coerce(a, t) for a, t in zip(args, self.args_type))})", None

    def coerce(self, value: tuple[str, ast.expr | None], expected: str) -> str:
        """Make ``value`` have C# type ``expected`` (upstream's update_type)."""
        code, pytype = value
        if is_primitive(expected) and self.cs_type(pytype) != expected:
            return f"({expected}){code}"
        if self.cs_type(pytype) == expected:
            return f"({code})"
        if code.startswith(MAKE_TUPLE) or code.startswith(NULL) or NULLABLE in expected:
            return code
        if code == NULL:
            found: list[str] = []
        else:
            found = re.findall(rf"{DICT}<.+,.+>\(", code) or re.findall(r"new (.+?\()", code)
        if not found:
            coerced = f"{expected}({code})"
        else:
            coerced = code.replace(found[0], expected + "(")
        return f"({coerced.replace('(())', '()')})"

    def finalize_rhs(self, value: tuple[str, ast.expr | None]) -> str:
        return self.coerce(value, self.return_type)

    def tolerance_assertion(self, left: str, right: str, eps: float) -> str:
        # HumanEval's `abs(f(x) - y) < eps`; upstream hand-edited these tests into exact
        # equalities on other values, we keep HumanEval's cases and a tolerance. Python
        # checks in double precision; MultiPL-E maps float to C# `float` (~7 digits), where
        # representing the input alone can cost more than 1e-6 (123.456f - 123 is
        # 0.4560013f), so the tolerance is floored at FLOAT_TOLERANCE.
        tol = max(float(eps), FLOAT_TOLERANCE)
        return f"{INDENT}Debug.Assert(Math.Abs({left} - {right}) < {tol!r}f);"

    def assertion(self, left: str, right: str) -> str:
        # Upstream compares non-primitives with .Equals, which is reference
        # equality for List/Dictionary (MultiPL-E issue #71); kept for fidelity.
        if is_primitive(self.return_type):
            return f"{INDENT}Debug.Assert({left} == {right});"
        return f"{INDENT}Debug.Assert({left}.Equals({right}));"
