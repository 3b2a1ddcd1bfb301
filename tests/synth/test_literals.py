"""Values the sandbox's solver reports, written back as C# expressions of the declared type."""

import shutil

import pytest

from safurai_csharp.synth import literals

needs_toolchain = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="mono/bubblewrap not installed")


@pytest.mark.parametrize("value,ret,expected", [
    ("i12", "int", "12"),
    ("i-3", "long", "-3"),
    ("i5000000000", "long", "5000000000L"),
    ("i5000000000", "int", None),           # does not fit the declared type
    ("b1", "bool", "true"),
    ("d0.1", "double", "0.1d"),
    ("dNaN", "double", None),               # `== NaN` is never true
    ("f1.5", "float", "1.5f"),
    ("c0041", "char", "'A'"),
    ("c0027", "char", "'\\''"),
    ("c000a", "char", "'\\u000a'"),
    ("s3:00610022005c", "string", '"a\\"\\\\"'),
    ("s1:00e9", "string", '"\\u00e9"'),
    ("s2:d83dde00", "string", '"\\ud83d\\ude00"'),   # a surrogate pair stays two units
    ("s2:0061", "string", None),            # the length does not match its units
    ("n", "string", "null"),
    ("n", "int", None),                     # no null for a value type
    ("n", "int?", "null"),
    ("L2 i1 i2", "List<long>", "new List<long> { 1, 2 }"),
    ("L0", "int[]", "new int[] { }"),
    ("L1 s4:007b00200020007d", "List<string>", 'new List<string> { "{  }" }'),  # contents stay as they are
    ("D0", "Dictionary<string, int>", "new Dictionary<string, int> { }"),
    ("L1 L2 i1 i2", "List<List<int>>", "new List<List<int>> { new List<int> { 1, 2 } }"),
    ("D1 s1:0061 i2", "Dictionary<string, int>", 'new Dictionary<string, int> { { "a", 2 } }'),
    ("T2 i1 s1:0062", "Tuple<int, string>", 'new Tuple<int, string>(1, "b")'),
    ("i7", "Nullable<long>", "7"),
    ("L1 i1", "long", None),                # a shape that does not fit
    ("?type", "object", None),
    ("L2 i1", "List<int>", None),           # truncated tokens
])
def test_render(value, ret, expected):
    assert literals.render(value, ret) == expected


@needs_toolchain
def test_a_rendered_value_equals_what_the_solver_reported():
    """Round trip through the real sandbox: the solver reports each call's value, and an
    assertion against its rendering passes (collections by content, via structural_fresh)."""
    from safurai_csharp.csharp import Executor, Limits, Program
    from safurai_csharp.csharp.modes import structural_fresh
    from safurai_csharp.synth.completion_format import tests_block

    cases = [
        ("long", "(long)x * 3000000000L", "F(2)"),
        ("string", "\"q\\\"\\u00e9\\\\\" + x", "F(1)"),
        ("double", "x / 3.0", "F(1)"),
        ("float", "x / 3.0f", "F(2)"),
        ("List<long>", "new List<long> { x, -x }", "F(4)"),
        ("Dictionary<string, List<int>>",
         "new Dictionary<string, List<int>> { { \"k\", new List<int> { x } } }", "F(5)"),
        ("Tuple<int, bool>", "Tuple.Create(x, x > 1)", "F(3)"),
        ("int[]", "new int[] { x, x }", "F(9)"),
        ("char", "(char)('a' + x)", "F(2)"),
    ]
    head = ("using System;\nusing System.Collections.Generic;\nusing System.Diagnostics;\nusing System.Linq;\n"
            "class Problem {\n")

    def program(ret: str, body: str, assertion: str) -> Program:
        return Program(prompt=f"{head}    public static {ret} F(int x) {{\n", completion=f"        return {body};",
                       tests=tests_block(assertion))

    ex = Executor(Limits(), workers=2)
    probed = ex.run([program(ret, body, f"Debug.Assert(new object[] {{ {call} }} != null);")
                     for ret, body, call in cases])
    assert all(r.passed for r in probed), probed
    values = [ex.site_values(i) for i in range(len(cases))]
    assert all(v and len(v) == 1 and v[0][0] == 0 for v in values), values
    lits = [literals.render(v[0][1], ret) for v, (ret, _b, _c) in zip(values, cases)]
    assert None not in lits, lits
    checks = ex.run([program(ret, body, structural_fresh(f"Debug.Assert({call} == {lit});"))
                     for (ret, body, call), lit in zip(cases, lits)])
    assert [r.status.value for r in checks] == ["pass"] * len(cases), list(zip(lits, checks))
    # and a wrong value fails: the assertion is about the value, not vacuous
    wrong = ex.run([program("List<long>", "new List<long> { x, -x }", structural_fresh(
        "Debug.Assert(F(4) == new List<long> { 4, 4 });"))])
    assert wrong[0].status.value == "assertion_failed"
