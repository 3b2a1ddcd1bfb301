"""official vs corrected on upstream problems, with correct solutions written by hand."""

import pytest

from safurai_csharp.csharp import Executor, Limits, Program, Status

from _csharp_cases import needs_toolchain

pytestmark = needs_toolchain

SOLUTIONS = {
    "HumanEval_0_has_close_elements": (
        "        for (int i = 0; i < numbers.Count; i++)\n"
        "            for (int j = i + 1; j < numbers.Count; j++)\n"
        "                if (Math.Abs(numbers[i] - numbers[j]) < threshold) return true;\n"
        "        return false;\n"
    ),
    "HumanEval_100_make_a_pile": (
        "        var r = new List<long>();\n        for (long i = 0; i < n; i++) r.Add(n + 2 * i);\n        return r;\n"
    ),
    "HumanEval_12_longest": (
        "        if (strings.Count == 0) return null;\n        string best = strings[0];\n"
        "        foreach (var s in strings) if (s.Length > best.Length) best = s;\n        return best;\n"
    ),
    "HumanEval_136_largest_smallest_integers": (
        "        long? neg = null, pos = null;\n"
        "        foreach (var x in lst) {\n"
        "            if (x < 0 && (neg == null || x > neg)) neg = x;\n"
        "            if (x > 0 && (pos == null || x < pos)) pos = x;\n"
        "        }\n        return Tuple.Create(neg, pos);\n"
    ),
}
# official verdicts of these *correct* solutions: upstream defects make three fail
OFFICIAL = {
    "HumanEval_0_has_close_elements": Status.PASS,
    "HumanEval_100_make_a_pile": Status.ASSERTION_FAILED,  # List.Equals is reference equality
    "HumanEval_12_longest": Status.EXCEPTION,  # null.Equals(null)
    "HumanEval_136_largest_smallest_integers": Status.ASSERTION_FAILED,  # Tuple<long?,long?> vs Tuple<long?,long>
}


def test_official_vs_corrected(upstream):
    names = list(SOLUTIONS)
    programs = [
        Program(upstream[n]["prompt"], SOLUTIONS[n], upstream[n]["tests"], mode=mode, name=n)
        for mode in ("official", "corrected")
        for n in names
    ]
    res = Executor(Limits(timeout_s=5), workers=2).run(programs)
    official, corrected = res[: len(names)], res[len(names) :]
    assert {n: r.status for n, r in zip(names, official)} == OFFICIAL
    assert all(r.status is Status.PASS for r in corrected), corrected


def test_corrected_still_fails_wrong_answers(upstream):
    n = "HumanEval_100_make_a_pile"
    wrong = "        var r = new List<long>();\n        for (long i = 0; i < n; i++) r.Add(n + i);\n        return r;\n"
    nulls = "        return null;\n"
    res = Executor(Limits(timeout_s=5), workers=1).run(
        [Program(upstream[n]["prompt"], c, upstream[n]["tests"], mode="corrected") for c in (wrong, nulls)]
    )
    assert [r.status for r in res] == [Status.ASSERTION_FAILED, Status.ASSERTION_FAILED]
