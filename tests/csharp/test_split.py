"""split.py: where a program is split into solver and checker, and what each one holds."""

import pytest

from safurai_csharp.benchmark import build_humaneval_cs
from safurai_csharp.csharp.modes import apply_mode
from safurai_csharp.csharp.split import split, supported

PROMPT = "using System;\nusing System.Diagnostics;\nclass Problem {\n    public static long Add(long a, long b) {\n"


def make_tests(*lines: str) -> str:
    return "    }\n    public static void Main(string[] args) {\n" + "".join(f"    {l}\n" for l in lines) + "    }\n\n}\n"


def test_every_benchmark_problem_splits_in_both_modes():
    for row in build_humaneval_cs():
        for mode in ("official", "corrected"):
            assert split(row["prompt"], apply_mode(row["tests"], mode)) is not None, (row["name"], mode)


def test_the_solver_holds_the_arguments_and_no_expected_value():
    sp = split(PROMPT, make_tests("Debug.Assert(Add((1L), (2L)) == (31337L));", "Debug.Assert(Problem.Add(5L, 6L) == 11L);"))
    assert sp.sites == 2
    assert "Add((1L), (2L))" in sp.solver_tests and "Add(5L, 6L)" in sp.solver_tests
    assert "31337" not in sp.solver_tests and "Debug.Assert" not in sp.solver_tests
    assert "Replay.Site<long>(0) == (31337L)" in sp.checker_tests and "Replay.Site<long>(1) == 11L" in sp.checker_tests
    assert "Add(" not in sp.checker_tests


@pytest.mark.parametrize("body", [
    ["long x = Add(1L, 2L);", "Debug.Assert(x == 3L);"],            # not only assertions
    ["Debug.Assert(Add(1L, 2L) == 3L && Add(2L, 2L) == 4L);"],      # a call that may not run
    ["Debug.Assert(Add(1L, 2L) == 3L ? true : Add(0L, 0L) == 0L);"],
    ["Debug.Assert(Add(Add(1L, 1L), 1L) == 3L);"],                  # nested
    ["Debug.Assert(Other.Add(1L, 2L) == 3L);"],                     # another class's method
    ["Func<long, long, long> f = Add;", "Debug.Assert(f(1L, 2L) == 3L);"],
    ["for (long i = 0; i < 3; i++) Debug.Assert(Add(i, 0L) == i);"],
])
def test_tests_that_cannot_be_split_exactly_run_whole(body):
    assert split(PROMPT, make_tests(*body)) is None


@pytest.mark.parametrize("ret,ok", [
    ("long", True), ("List<long>", True), ("Dictionary<string,long>", True), ("Tuple<Nullable<long>, long>", True),
    ("long?", True), ("string[]", True), ("List<Tuple<long, string>>", True),
    ("object", False), ("Point", False), ("IEnumerable<long>", False), ("Dictionary<long>", False), ("void", False),
])
def test_return_types_the_codec_rebuilds(ret, ok):
    assert supported(ret) is ok
