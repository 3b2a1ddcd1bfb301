"""Parsing teacher answers and the C# helpers that build and mutate example programs."""

import pytest

from safurai_csharp.synth.parse import ParseError, complete_statements, parse_answer, render_answer
from safurai_csharp.synth.program import (assert_only, assertion_count, calls_solution, method_names, program,
                                          split_statements, static_methods, stub_bodies, top_level_types,
                                          with_standard_usings, wrap_bare_methods, rename_clashing_classes)

SOL = '''public static class Text
{
    // "{" in a comment and a string must not confuse the body finder
    public static int CountVowels(string s)
    {
        int n = 0;
        foreach (char c in s) if ("aeiou{".IndexOf(c) >= 0) n++;
        return n;
    }
    static bool IsEven(int x) => x % 2 == 0;
    public static List<T> Keep<T>(IEnumerable<T> xs, Func<T, bool> p) where T : IComparable<T> { return xs.Where(p).ToList(); }
    public static (int Lo, int Hi) Bounds(int[] a) { return (a.Min(), a.Max()); }
    public static void SortInPlace(int[] a) { Array.Sort(a); }
}'''


def test_static_methods_and_mutant():
    assert method_names(SOL) == ["CountVowels", "IsEven", "Keep", "Bounds", "SortInPlace"]
    stub = stub_bodies(SOL)
    assert "{ return default(int); }" in stub and "=> default(bool);" in stub
    assert "{ return default(List<T>); }" in stub and "{ return default((int Lo, int Hi)); }" in stub
    assert "Array.Sort" not in stub and "SortInPlace(int[] a) { }" in stub
    assert stub_bodies("public class Empty { }") is None


def test_local_functions_stay_inside_their_method():
    sol = "public static class A { public static int F(int x) { static int G(int y) { return y; } return G(x); } }"
    assert [m[1] for m in static_methods(sol)] == ["F"]


def test_calls_and_asserts_ignore_comments_and_strings():
    tests = '// Debug.Assert(Text.CountVowels("a") == 1);\nDebug.Assert("CountVowels(" != null);\nDebug.Assert(1 == 1);'
    assert assertion_count(tests) == 2
    assert not calls_solution(SOL, tests)
    assert calls_solution(SOL, 'Debug.Assert(Text.CountVowels("ab") == 1);')


def test_program_shape():
    p = program(SOL, "Debug.Assert(Text.CountVowels(\"a\") == 1);")
    assert p.prompt.startswith("using System;") and "class Problem" in p.tests and "static void Main" in p.tests


def test_parse_roundtrip_and_repairs():
    answer = render_answer("Count the vowels of a string, ignoring case.", SOL, "Debug.Assert(Text.CountVowels(\"ae\") == 2);")
    p = parse_answer(answer)
    assert p.solution.endswith(SOL) and p.solution.startswith("using System;\n") and p.tests.startswith("Debug.Assert")
    drifted = ("**Task:**\nReverse a string; null stays null, empty stays empty.\n\n**Solution:**\n```\n"
               "public static class S {\n    public static string Rev(string s) { return s; }\n"
               "    public static void Main() { Console.WriteLine(Rev(\"ab\")); }\n}\n```\n"
               "**Tests:**\n```csharp\nclass T {\n  static void Main() {\n    Debug.Assert(S.Rev(\"a\") == \"a\");\n  }\n}\n```")
    p = parse_answer(drifted)
    assert "Main" not in p.solution and p.tests == 'Debug.Assert(S.Rev("a") == "a");'


def test_answers_comparing_a_result_with_a_fresh_collection_compare_contents():
    # every recipe's tests (the answer recipe's, evolve's) go through parse_answer
    answer = render_answer("Split a sentence into its words, in order.",
                           "public static class W {\n    public static List<string> Split(string s) { return null; }\n}",
                           'Debug.Assert(W.Split("a b") == new List<string> { "a", "b" });\n'
                           'Debug.Assert(W.Split("").Count == 0);')
    assert parse_answer(answer).tests.splitlines() == [
        'Debug.Assert(global::SafuraiHarness.Eq.Structural(W.Split("a b"), new List<string> { "a", "b" }));',
        'Debug.Assert(W.Split("").Count == 0);']


@pytest.mark.parametrize("raw, reason", [
    ("", "missing_task"),
    ("I'm sorry, I cannot help with that.", "missing_task"),
    ("### Task\nshort\n### Solution\n```csharp\nclass A{}\n```\n### Tests\n```csharp\nDebug.Assert(true);\n```", "empty_task"),
    ("### Task\nWrite a function that adds two numbers together.\n### Solution\n```python\ndef f(): pass\n```\n"
     "### Tests\n```csharp\nDebug.Assert(true);\n```", "solution_not_csharp"),
    ("### Task\nWrite a function that adds two numbers together.\n### Solution\nno code here\n"
     "### Tests\n```csharp\nDebug.Assert(true);\n```", "no_solution_code_block"),
    ("### Task\nWrite a function that adds two numbers together.\n### Solution\n```csharp\nclass A{}\n```\n"
     "### Tests\n```csharp\nConsole.WriteLine(1);\n```", "tests_without_assert"),
    ("### Task\nWrite a function that adds two numbers together.\n### Solution\n```csharp\nclass A{}\n```\n", "missing_tests"),
    ("\x00\xff```\n### Tests\n```", "missing_task"),
])
def test_malformed_answers_are_reasons_not_crashes(raw, reason):
    with pytest.raises(ParseError) as exc:
        parse_answer(raw)
    assert exc.value.reason == reason


def test_bare_methods_are_wrapped_and_usings_normalised():
    bare = "using System.IO;\npublic static int Twice(int x)\n{\n    return 2 * x;\n}"
    wrapped = wrap_bare_methods(bare)
    assert top_level_types(wrapped) == [("class", "Solution", False)] and "    public static int Twice" in wrapped
    assert wrap_bare_methods(SOL) == SOL
    normal = with_standard_usings(wrapped)
    assert normal.count("using System.IO;") == 1 and normal.startswith("using System;\nusing System.Collections.Generic;")
    assert with_standard_usings(normal) == normal
    # plain calls to a method of a top-level class compile thanks to `using static`
    assert "using static Solution;" in program(normal, "Debug.Assert(Twice(2) == 4);").prompt


def test_truncated_and_looping_tests_are_trimmed():
    cut = 'Debug.Assert(F(1) == 1);\nDebug.Assert(F(2) == 2);\nDebug.Assert(F(2) == 2);\nDebug.Assert(F(3) =='
    assert complete_statements(cut) == "Debug.Assert(F(1) == 1);\nDebug.Assert(F(2) == 2);"


def test_statement_split_and_assert_only():
    tests = 'Debug.Assert(F("a;b") == 1);\nbool t = false;\ntry { F(null); } catch (ArgumentException) { t = true; }\nDebug.Assert(t);'
    assert split_statements(tests) == ['Debug.Assert(F("a;b") == 1);', "bool t = false;",
                                       "try { F(null); } catch (ArgumentException) { t = true; }", "Debug.Assert(t);"]
    assert assert_only(tests) is None
    assert assert_only("Debug.Assert(F(1) == 1);\n// note\nDebug.Assert(F(2) == 2);") == ["Debug.Assert(F(1) == 1);",
                                                                                        "Debug.Assert(F(2) == 2);"]


def test_repairs_for_common_small_teacher_slips():
    bare = "public int Twice(int x)\n{\n    return 2 * x;\n}\nprivate List<int> Pair(int a) { return new List<int> { a, a }; }"
    wrapped = wrap_bare_methods(bare)
    assert "public static int Twice" in wrapped and "private static List<int> Pair" in wrapped
    assert wrapped.startswith("public static class Solution")
    sol = "public static class Add\n{\n    public static int Add(int a, int b) { return a + b; }\n}"
    new_sol, new_tests = rename_clashing_classes(sol, 'Debug.Assert(Add.Add(1, 2) == 3);\nDebug.Assert(Add(2, 2) == 4);')
    assert "class AddSolution" in new_sol and "static int Add(" in new_sol
    assert new_tests == 'Debug.Assert(AddSolution.Add(1, 2) == 3);\nDebug.Assert(Add(2, 2) == 4);'


def test_tests_calling_a_renamed_class_are_requalified():
    from safurai_csharp.synth.program import requalify_calls

    sol = "public static class MergeSort\n{\n    public static int[] Merge(int[] a, int[] b) { return a; }\n}"
    tests = ('Debug.Assert(Sorting.Merge(new[] { 1 }, new int[0]).SequenceEqual(new[] { 1 }));\n'
             'Debug.Assert(Math.Max(Sorting.Merge(new[] { 2 }, new[] { 3 })[0], 0) == 2); // Sorting.Merge(x)\n'
             'Debug.Assert(Enumerable.Range(0, 2).Count() == 2 && Other.Thing(1) == "Sorting.Merge(");')
    out = requalify_calls(sol, tests)
    assert out.count("MergeSort.Merge(") == 2  # the two calls in code
    assert "// Sorting.Merge(x)" in out and '"Sorting.Merge("' in out  # comments and strings untouched
    assert "Math.Max(" in out and "Enumerable.Range(" in out  # library classes stay
    assert "Other.Thing(1)" in out  # not a method of the solution
    two = sol + "\npublic static class Helper\n{\n    public static int Merge(int x) { return x; }\n}"
    assert requalify_calls(two, tests) == tests  # ambiguous: which class was meant?
    # and through the parser, which the sandbox then judges
    p = parse_answer(render_answer("Merge two sorted integer arrays into one sorted array.", sol, tests))
    assert "Sorting." not in p.tests.split("//")[0]


def test_an_empty_demo_class_left_by_the_main_is_dropped():
    sol = ("public static class Sq\n{\n    public static int F(int x) { return x * x; }\n}\n\n"
           "class Program\n{\n    static void Main()\n    {\n        Console.WriteLine(Sq.F(2));\n    }\n}\n"
           "public class Keep { }\n")
    p = parse_answer(render_answer("Return the square of an integer, negatives too.", sol,
                                   "Debug.Assert(Sq.F(2) == 4);"))
    assert "class Program" not in p.solution and "class Sq" in p.solution
    assert "class Keep" not in p.solution  # an empty class is nothing to learn either
