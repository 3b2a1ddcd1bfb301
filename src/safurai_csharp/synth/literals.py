"""A value the sandbox's solver reported (harness_cs.Codec's tokens) written back as a C#
expression of the method's declared return type: `12`, `"ab"`, `new List<long> { 1, 2 }`,
`new Tuple<int, string>(1, "x")`.

The decomposed recipe's output agreement (synth/decomposed.py) writes an assertion from what
several sampled bodies return on the same input; the expression must compile as the declared
type and compare by value once `modes.structural_fresh` has rewritten `==` against a fresh
`new` into `Eq.Structural`. Anything that cannot be written exactly (NaN, infinities, a type
the codec marks `?`, a shape that does not fit the declared type) gives None, and the site is
not used.
"""

from __future__ import annotations

import math
import re

from ..csharp.split import type_args

# the suffix a constant outside int's range needs, and each type's range
_INTS = {"long": "L", "int": "", "short": "", "byte": "", "sbyte": "", "ulong": "UL", "uint": "U", "ushort": ""}
_RANGES = {"long": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1), "short": (-(2**15), 2**15 - 1),
           "byte": (0, 255), "sbyte": (-128, 127), "ulong": (0, 2**64 - 1), "uint": (0, 2**32 - 1),
           "ushort": (0, 65535)}
_ALIASES = {"Int64": "long", "Int32": "int", "Boolean": "bool", "String": "string", "Char": "char",
            "Single": "float", "Double": "double"}
_VALUE_TYPES = {*_INTS, "bool", "char", "float", "double", "decimal"}
_SEQUENCES = {"List", "IList", "IEnumerable", "ICollection", "IReadOnlyList"}
_GENERIC = re.compile(r"(?:System\.)?(?:Collections\.Generic\.)?(\w+)<(.+)>")


class _Node:
    __slots__ = ("kind", "text", "items")

    def __init__(self, kind: str, text: str, items: list[_Node] | None = None) -> None:
        self.kind, self.text, self.items = kind, text, items


def decode(text: str) -> _Node | None:
    """The codec's space-separated tokens as a tree, or None when they do not form one value."""
    tokens = text.split(" ")
    pos = 0

    def node(depth: int) -> _Node:
        nonlocal pos
        if pos >= len(tokens) or depth > 64 or not tokens[pos]:
            raise ValueError("truncated")
        tok = tokens[pos]
        pos += 1
        kind, rest = tok[0], tok[1:]
        if kind not in "LTD":
            return _Node(kind, rest)
        n = int(rest)
        if n < 0 or n > len(tokens):
            raise ValueError("bad count")
        return _Node(kind, rest, [node(depth + 1) for _ in range(2 * n if kind == "D" else n)])

    try:
        value = node(0)
    except ValueError:
        return None
    return value if pos == len(tokens) else None


def _escape(s: str, quote: str) -> str:
    """Printable ASCII as itself (what a person writes), the quote and backslash escaped, every
    other UTF-16 unit as \\uXXXX: the literal is plain ASCII whatever the value holds."""
    out = []
    for ch in s:
        code = ord(ch)
        if ch in (quote, "\\"):
            out.append("\\" + ch)
        elif 32 <= code < 127:
            out.append(ch)
        else:
            out.extend(f"\\u{unit:04x}" for unit in _units(ch))
    return "".join(out)


def _units(ch: str) -> list[int]:
    data = ch.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _init(items: list[str]) -> str:
    """A collection initializer: `{ a, b }`, or `{ }` when empty."""
    return "{ " + ", ".join(items) + " }" if items else "{ }"


def _string(s: str) -> str:
    return '"' + _escape(s, '"') + '"'


def _text(hex_units: str) -> str | None:
    """UTF-16 code units, 4 hex digits each, as a Python string (surrogate pairs joined)."""
    if len(hex_units) % 4:
        return None
    units = bytes().join(int(hex_units[i : i + 4], 16).to_bytes(2, "big") for i in range(0, len(hex_units), 4))
    try:
        return units.decode("utf-16-be")
    except UnicodeDecodeError:
        return None


def _scalar(node: _Node, t: str) -> str | None:
    t = _ALIASES.get(t, t)
    if node.kind == "i" and t in _INTS and re.fullmatch(r"-?\d{1,20}", node.text):
        n = int(node.text)
        lo, hi = _RANGES[t]
        if not lo <= n <= hi:
            return None
        return str(n) if -(2**31) <= n < 2**31 else f"{n}{_INTS[t]}"  # an int constant converts implicitly
    if node.kind == "b" and t == "bool" and node.text in ("0", "1"):
        return "true" if node.text == "1" else "false"
    if node.kind in "df" and t in ("double", "float"):
        try:
            x = float(node.text)
        except ValueError:
            return None
        if not math.isfinite(x):
            return None  # `== double.NaN` is never true; infinities are rare enough to skip
        lit = repr(x) if node.kind == "d" else node.text  # float: its own round-trip text
        if node.kind == "f" and not re.fullmatch(r"-?\d+(\.\d+)?(E[+-]?\d+)?", node.text):
            return None
        return lit + ("f" if t == "float" else "d")
    if node.kind == "m" and t == "decimal" and re.fullmatch(r"-?\d+(\.\d+)?", node.text):
        return node.text + "m"
    if node.kind == "c" and t == "char" and re.fullmatch(r"[0-9a-f]{4}", node.text):
        return "'" + _escape(chr(int(node.text, 16)), "'") + "'"
    if node.kind == "s" and t == "string":
        length, _, units = node.text.partition(":")
        s = _text(units)
        return _string(s) if s is not None and length.isdigit() and int(length) == len(units) // 4 else None
    return None


def render(value: str, ret: str) -> str | None:
    """A C# expression of type `ret` equal to the codec value `value`, or None."""
    node = decode(value)
    return None if node is None else _render(node, " ".join(ret.split()))


def _render(node: _Node, t: str) -> str | None:
    t = t.strip()
    t = t[len("System."):] if t.startswith("System.") else t
    if node.kind == "n":  # null: for reference and nullable types only
        return None if _ALIASES.get(t, t) in _VALUE_TYPES else "null"
    if t.endswith("?"):
        return _render(node, t[:-1])
    if t.endswith("[]"):
        if node.kind != "L":
            return None
        items = [_render(x, t[:-2]) for x in node.items or []]
        return None if None in items else f"new {t} {_init(items)}"
    m = _GENERIC.fullmatch(t)
    if m is None:
        return _scalar(node, t)
    name, args = m.group(1), type_args(m.group(2))
    if args is None:
        return None
    if name == "Nullable" and len(args) == 1:
        return _render(node, args[0])
    if name in _SEQUENCES and len(args) == 1 and node.kind == "L":
        items = [_render(x, args[0]) for x in node.items or []]
        return None if None in items else f"new List<{args[0]}> {_init(items)}"
    if name in ("Dictionary", "IDictionary") and len(args) == 2 and node.kind == "D":
        its = node.items or []
        pairs = [(_render(its[i], args[0]), _render(its[i + 1], args[1])) for i in range(0, len(its), 2)]
        if any(k is None or v is None for k, v in pairs):
            return None
        return f"new Dictionary<{args[0]}, {args[1]}> {_init([f'{{ {k}, {v} }}' for k, v in pairs])}"
    if name == "Tuple" and node.kind == "T" and len(node.items or []) == len(args):
        items = [_render(x, a) for x, a in zip(node.items or [], args)]
        return None if None in items else f"new Tuple<{', '.join(args)}>({', '.join(items)})"
    return None
