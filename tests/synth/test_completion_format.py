"""Examples rendered as MultiPL-E completion tasks: the prefix compiles with the right body,
MultiPL-E's stop token cuts exactly where the body ends, and the rendering refuses what one
method cannot hold."""

import shutil

import pytest

from safurai_csharp.benchmark.translate import STOP_TOKENS, USINGS
from safurai_csharp.engines import stop_at_stop_token, strip_prompt
from safurai_csharp.synth.completion_format import RenderError, indent_body, render, render_all, verify
from safurai_csharp.synth.program import with_standard_usings

needs_toolchain = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="mono/bubblewrap not installed")

SOLUTION = with_standard_usings("""public static class Runs
{
    // run-length encoding: "aaab" -> "a3b1"
    public static string Encode(string s)
    {
        if (s.Length == 0) return "";
        var sb = new StringBuilder();
        int count = 1;
        for (int i = 1; i <= s.Length; i++)
        {
            if (i < s.Length && s[i] == s[i - 1]) { count++; continue; }
            sb.Append(s[i - 1]).Append(count);
            count = 1;
        }
        return sb.ToString();
    }
}""")
TESTS = ('Debug.Assert(Runs.Encode("aaab") == "a3b1");\nDebug.Assert(Encode("") == "");\n'
         'var x = Runs.Encode("zz");\nDebug.Assert(x == "z2");')
EXAMPLE = {"id": "abc123", "instruction": "Run-length encode a string.\nEach run becomes the char and its count.",
           "solution": SOLUTION, "tests": TESTS}


def test_render_has_multipl_e_shape():
    task = render(EXAMPLE, "dev_abc123")
    assert task.prompt.startswith(USINGS + "class Problem {\n")
    assert "    // Run-length encode a string.\n    // Each run becomes the char and its count.\n" in task.prompt
    assert task.prompt.endswith("    public static string Encode(string s) {\n")
    assert task.entry_point == "Encode" and task.name == "dev_abc123"
    assert task.tests.startswith("    }\n    public static void Main(string[] args) {\n")
    assert task.tests.endswith("    }\n\n}\n")
    assert "Runs." not in task.tests and '    Debug.Assert(Encode("aaab") == "a3b1");' in task.tests
    # the body is indented one level deeper than the method, nested blocks keep their shape
    assert task.completion.startswith("\n        if (s.Length == 0)")
    assert "\n            if (i < s.Length" in task.completion
    problem = task.problem(source_id="abc123")
    assert problem["stop_tokens"] == STOP_TOKENS and problem["source_id"] == "abc123"


def test_stop_token_cuts_where_the_body_ends():
    task = render(EXAMPLE)
    # what a model trained on `target` emits after the stripped prompt, then keeps writing
    emitted = task.target + "    public static void Main(string[] args) {\n"
    assert stop_at_stop_token(emitted, STOP_TOKENS) == task.completion
    assert strip_prompt(task.prompt).endswith("{") and task.target.endswith("\n    }\n")


def test_expression_bodies_and_brace_line_statements():
    ex = dict(EXAMPLE, solution="public static class M { public static int Twice(int x) => 2 * x; }",
              tests="Debug.Assert(M.Twice(2) == 4);")
    assert render(ex).completion == "\n        return 2 * x;"
    assert indent_body(" return 1; ") == "        return 1;"
    assert indent_body(" a();\n        b();\n    ") == "        a();\n        b();"


@pytest.mark.parametrize("solution, tests, reason", [
    ("public static class A { public static int F(int x) { return G(x); } static int G(int x) { return x; } }",
     "Debug.Assert(A.F(1) == 1);", "helper_methods"),
    ("public class A { } public class B { public static int F() { return 1; } }", "Debug.Assert(B.F() == 1);",
     "not_one_class"),
    ("public static class A { public static int F() { return 1; } }", "Debug.Assert(1 == 1);", "entry_not_called"),
    ("public static class A { public static string F() { return @\"a\nb\"; } }", "Debug.Assert(A.F() != null);",
     "multiline_string"),
    ("public static class A { public static int F(this int x) { return x; } }", "Debug.Assert(A.F(1) == 1);",
     "extension_method"),
    ("public static class A { public static int F(int x) { return x; } }",
     "Debug.Assert(A.F(1) == 1);\nDebug.Assert(typeof(A) != null);", "tests_use_class"),
])
def test_render_refuses_what_one_method_cannot_hold(solution, tests, reason):
    with pytest.raises(RenderError) as err:
        render(dict(EXAMPLE, solution=solution, tests=tests))
    assert err.value.reason == reason


def test_render_all_counts_reasons():
    bad = dict(EXAMPLE, id="b", solution="public class A { } public class B { }")
    done, reasons = render_all([EXAMPLE, bad], prefix="dev_")
    assert [(i, t.name) for i, t in done] == [(0, "dev_abc123")] and reasons == {"not_one_class": 1}


@needs_toolchain
def test_rendered_prefix_compiles_and_passes_with_the_body_and_fails_without():
    from safurai_csharp.csharp import Executor, Limits

    regex = dict(EXAMPLE, id="re", solution=with_standard_usings(
        "public static class R { public static bool Digits(string s) { return Regex.IsMatch(s, \"^[0-9]+$\"); } }"),
        tests='Debug.Assert(R.Digits("12"));\nDebug.Assert(!R.Digits("a1"));\nDebug.Assert(R.Digits("0"));')
    tasks = [render(EXAMPLE), render(regex)]
    assert "using System.Text.RegularExpressions;" in tasks[1].prompt
    assert "RegularExpressions" not in tasks[0].prompt  # only the namespaces the body needs
    executor = Executor(Limits(timeout_s=10), workers=2)
    assert verify(tasks, executor) == [True, True]
    wrong = executor.run([tasks[0].program("\n        return s;")])[0]
    assert not wrong.passed and wrong.status.value == "assertion_failed"
