"""Pure text tests of the test-mode rewrite and the assertion instrumentation."""

import re

import pytest

from safurai_csharp.csharp import apply_mode, build_program, changed_by_correction, instrument
from safurai_csharp.csharp.modes import structural_fresh

TESTS = (
    "    }\n    public static void Main(string[] args) {\n"
    '    Debug.Assert(F((new List<long>(new long[]{(long)1L}))).Equals((new List<long>(new long[]{(long)2L}))));\n'
    '    Debug.Assert(G(("a)b(")).Equals(("x.Equals(y)")));\n'
    "    Debug.Assert(H(1L) == (2L));\n"
    "    // Debug.Assert(Commented().Equals(1));\n"
    "    }\n\n}\n"
)


def test_official_is_identity():
    assert apply_mode(TESTS, "official") == TESTS


def test_corrected_rewrites_only_top_level_equals():
    out = apply_mode(TESTS, "corrected")
    assert (
        "Debug.Assert(global::SafuraiHarness.Eq.Structural(F((new List<long>(new long[]{(long)1L}))), "
        "(new List<long>(new long[]{(long)2L}))));" in out
    )
    # parentheses and `.Equals(` inside string literals do not confuse the matcher
    assert 'Debug.Assert(global::SafuraiHarness.Eq.Structural(G(("a)b(")), ("x.Equals(y)")));' in out
    assert "Debug.Assert(H(1L) == (2L));" in out
    assert "// Debug.Assert(Commented().Equals(1));" in out  # comments untouched


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="official, corrected"):
        apply_mode(TESTS, "strict")


def test_instrument_gives_each_site_a_distinct_token():
    out, tokens = instrument(TESTS)
    assert len(tokens) == 3 and len(set(tokens)) == 3
    found = [int(t, 16) for t in re.findall(r"Checker\.Assert\(0x([0-9a-f]+)L, ", out)]
    assert found == tokens
    assert "// Debug.Assert(Commented()" in out
    assert out.count("Debug.Assert(") == 1  # only the commented one is left


def test_build_program_is_multipl_e_concatenation():
    assert build_program("P{", "C", TESTS, "official") == "P{C\n" + TESTS


def test_upstream_corrected_changes(upstream):
    """Every upstream `.Equals` assertion is rewritten; the only other change is dropping
    HumanEval_92's two contradicting assertions."""
    changed = [n for n, r in upstream.items() if changed_by_correction(r["tests"])]
    with_equals = [n for n, r in upstream.items() if ".Equals(" in r["tests"]]
    assert sorted(changed) == sorted(with_equals + ["HumanEval_92_any_int"])
    assert "HumanEval_12_longest" in changed and "HumanEval_136_largest_smallest_integers" in changed
    tests92 = upstream["HumanEval_92_any_int"]["tests"]
    assert apply_mode(tests92, "corrected").count("Debug.Assert(") == tests92.count("Debug.Assert(") - 2
    for name in with_equals:
        out = apply_mode(upstream[name]["tests"], "corrected")
        assert ".Equals(" not in out.replace("Eq.Structural", ""), name
        assert out.count("Debug.Assert(") == upstream[name]["tests"].count("Debug.Assert(")


def test_corrected_drops_only_assertions_that_contradict_by_value():
    from safurai_csharp.csharp.modes import drop_contradictions

    tests = (
        "    Debug.Assert(AnyInt((float)3L, (float)4L, (float)7L) == (true));\n"
        "    Debug.Assert(AnyInt((float)2L, (float)1L, (float)1L) == (true));\n"
        "    Debug.Assert(AnyInt((3.0f), (float)4L, (float)7L) == (false));\n"
    )
    assert drop_contradictions(tests) == "    Debug.Assert(AnyInt((float)2L, (float)1L, (float)1L) == (true));\n"


def test_contradiction_check_keeps_string_literals_exact():
    from safurai_csharp.csharp.modes import drop_contradictions

    # Same text once whitespace is ignored, but different strings: not a contradiction.
    tests = (
        '    Debug.Assert(F(("apple pi e")) == (true));\n'
        '    Debug.Assert(F(("apple pie")) == (false));\n'
        '    Debug.Assert(F(("3.0f")) == (false));\n'
        '    Debug.Assert(F(("3f")) == (true));\n'
    )
    assert drop_contradictions(tests) == tests


@pytest.mark.parametrize("line, expected", [
    # a collection built in the assertion, compared by reference: unpassable as written
    ("Debug.Assert(F(1) == new List<int> { 1, 2 });",
     "Debug.Assert(global::SafuraiHarness.Eq.Structural(F(1), new List<int> { 1, 2 }));"),
    ("Debug.Assert(F(1).Equals(new[] { 1, 2 }));",
     "Debug.Assert(global::SafuraiHarness.Eq.Structural(F(1), new[] { 1, 2 }));"),
    ("Debug.Assert((new int[] { 1 }) == F(2));",
     "Debug.Assert(global::SafuraiHarness.Eq.Structural((new int[] { 1 }), F(2)));"),
    ('Debug.Assert(F(1) == new Dictionary<string, List<int>> { { "a", new List<int> { 1 } } });',
     'Debug.Assert(global::SafuraiHarness.Eq.Structural(F(1), new Dictionary<string, List<int>> '
     '{ { "a", new List<int> { 1 } } }));'),
    ("Debug.Assert(F(x => x == 1) == new List<int> { 1 });",
     "Debug.Assert(global::SafuraiHarness.Eq.Structural(F(x => x == 1), new List<int> { 1 }));"),
    # everything else stays as written
    ("Debug.Assert(F(1) == 3);", None),
    ("Debug.Assert(F(new List<int> { 1 }) == 2);", None),
    ("Debug.Assert(F(1).SequenceEqual(new List<int> { 1 }));", None),
    ("Debug.Assert(ok && F(1) == new List<int>());", None),
    ("Debug.Assert(a<b || F(1) == new List<int>());", None),
    ("Debug.Assert(F(1) == new List<int>() ? true : false);", None),
    ('Debug.Assert(F(1) == new List<int> { 1 }, "message");', None),
    ("Debug.Assert(F(1) != new List<int> { 1 });", None),
    ('Debug.Assert(F("x == new List<int>()") == 2);', None),
    ("// Debug.Assert(F(1) == new List<int> { 1 });", None),
])
def test_structural_fresh_rewrites_only_comparisons_with_a_fresh_object(line, expected):
    assert structural_fresh(line) == (expected or line)
    assert structural_fresh(structural_fresh(line)) == structural_fresh(line)  # idempotent
