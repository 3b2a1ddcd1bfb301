"""Rendered tasks rewritten to MultiPL-E's C# types: signature, body and tests change together,
strings, comments and the statement do not, and only a rewrite that still passes in the sandbox
is kept."""

import shutil

import pytest

from safurai_csharp.synth.completion_format import render
from safurai_csharp.synth.conventions import choose, rewrite, variants
from safurai_csharp.synth.program import with_standard_usings

needs_toolchain = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mcs", "mono", "bwrap", "prlimit")), reason="mono/bubblewrap not installed")


def task_of(method: str, tests: str, statement: str = "Sum the int values; an int[] is given.") -> object:
    sol = with_standard_usings(f"public static class K\n{{\n{method}\n}}")
    return render({"id": "t", "instruction": statement, "solution": sol, "tests": tests})


SUM = task_of("""    public static int Sum(int[] xs)
    {
        int total = 0; // an int accumulator
        for (int i = 0; i < xs.Length; i++) total += xs[i];
        Console.Write("int");
        return total;
    }""", "Debug.Assert(K.Sum(new int[] { 1, 2, 3 }) == 6);\nDebug.Assert(Sum(new int[] {}) == 0);\n"
          "Debug.Assert(Sum(new int[] { -4 }) == -4);")


def signature(task) -> str:
    return task.prompt.rstrip().split("\n")[-1].strip()


def test_signature_body_and_tests_follow_multipl_e_but_strings_and_comments_do_not():
    new = rewrite(SUM, lists=True, long_loops=True, floats=True)
    assert signature(new) == "public static long Sum(List<long> xs) {"
    assert "long total = 0; // an int accumulator" in new.completion
    assert "for (long i = 0; i < xs.Count; i++)" in new.completion
    assert 'Console.Write("int");' in new.completion
    assert "Debug.Assert(Sum(new List<long>(new long[] { 1, 2, 3 })) == 6);" in new.tests
    assert "Sum(new List<long>(new long[] {})) == 0" in new.tests
    # the statement is the task's prose: it keeps its words
    assert "// Sum the int values; an int[] is given." in new.prompt
    kept = rewrite(SUM, lists=False, long_loops=False, floats=True)
    assert signature(kept) == "public static long Sum(long[] xs) {"
    assert "for (int i = 0; i < xs.Length; i++)" in kept.completion
    assert "Sum(new long[] { 1, 2, 3 })" in kept.tests


def test_floats_get_float_literals_and_array_returns_become_lists():
    scale = task_of("""    public static double[] Scale(double[] xs, double k)
    {
        var label = "2.5 double";
        return xs.Select(x => x * k + 0.5).ToArray();
    }""", "Debug.Assert(K.Scale(new double[] { 1.0 }, 2.0).SequenceEqual(new double[] { 2.5 }));")
    new = rewrite(scale, lists=True, long_loops=True, floats=True)
    assert signature(new) == "public static List<float> Scale(List<float> xs, float k) {"
    assert "return xs.Select(x => x * k + 0.5f).ToList();" in new.completion
    assert 'var label = "2.5 double";' in new.completion
    assert "Scale(new List<float>(new float[] { 1.0f }), 2.0f).SequenceEqual(new List<float>(new float[] { 2.5f }))" \
        in new.tests
    unwrapped = rewrite(scale, lists=True, long_loops=True, floats=True, list_returns=False)
    assert ".ToArray();" in unwrapped.completion and "List<float> Scale(" in signature(unwrapped)


def test_int_tuples_in_tests_become_long_tuples():
    pair = task_of("""    public static Tuple<int, int> MinMax(List<int> xs)
    {
        return Tuple.Create(xs.Min(), xs.Max());
    }""", "Debug.Assert(K.MinMax(new List<int> { 3, -1 }).Equals(Tuple.Create(-1, 3)));")
    new = rewrite(pair, lists=True, long_loops=True, floats=True)
    assert signature(new) == "public static Tuple<long, long> MinMax(List<long> xs) {"
    assert "MinMax(new List<long> { 3, -1 }).Equals(Tuple.Create(-1L, 3L))" in new.tests


def test_variants_are_distinct_and_absent_when_nothing_changes():
    labels = [v.label for v in variants(SUM)]
    assert labels[0] == "long-list" and len(set(labels)) == len(labels)
    bodies = [(v.task.prompt, v.task.completion, v.task.tests) for v in variants(SUM)]
    assert len(set(bodies)) == len(bodies) and (SUM.prompt, SUM.completion, SUM.tests) not in bodies
    words = task_of("""    public static string Shout(string s)
    {
        return s.ToUpper() + "!";
    }""", 'Debug.Assert(K.Shout("a") == "A!");')
    assert variants(words) == []


@needs_toolchain
def test_choose_keeps_the_first_rewrite_that_passes_else_the_task_else_nothing():
    from safurai_csharp.csharp import Executor, Limits

    top = task_of("""    public static int Max(int[] xs)
    {
        int m = xs[0];
        foreach (int x in xs) if (x > m) m = x;
        return m;
    }""", "Debug.Assert(K.Max(new int[] { 1, 7, 3 }) == 7);\nDebug.Assert(Max(new int[] { -2 }) == -2);\n"
          "Debug.Assert(Max(new int[] { 5, 5 }) == 5);")
    # long i cannot index a List<long>: the full rewrite fails to compile, int loops pass
    take = task_of("""    public static int SumFrom(int[] xs, int start)
    {
        int s = 0;
        for (int i = 0; i < xs.Length; i++) if (i >= start) s += xs[i];
        return s;
    }""", "Debug.Assert(K.SumFrom(new int[] { 1, 2, 3 }, 1) == 5);\nDebug.Assert(SumFrom(new int[] { 4 }, 0) == 4);\n"
          "Debug.Assert(SumFrom(new int[] { 4, 5 }, 2) == 0);")
    # string.Substring takes an int: no rewrite compiles, the task as written passes
    tail = task_of("""    public static string Tail(string s, int k)
    {
        return s.Substring(k);
    }""", 'Debug.Assert(K.Tail("abc", 1) == "bc");\nDebug.Assert(Tail("abc", 0) == "abc");\nDebug.Assert(Tail("", 0) == "");')
    broken = task_of("""    public static int Twice(int x)
    {
        return x * 3;
    }""", "Debug.Assert(K.Twice(1) == 2);\nDebug.Assert(Twice(0) == 0);\nDebug.Assert(Twice(2) == 4);")
    chosen, labels = choose([top, take, tail, broken], Executor(Limits(timeout_s=10), workers=2))
    assert labels == ["long-list", "long_but_loops-list", "as_written", "failed"]
    assert signature(chosen[0]) == "public static long Max(List<long> xs) {" and "foreach (long x in xs)" in chosen[0].completion
    assert signature(chosen[1]) == "public static long SumFrom(List<long> xs, long start) {"
    assert "for (int i = 0; i < xs.Count; i++)" in chosen[1].completion
    assert chosen[2] == tail and chosen[3] is None
