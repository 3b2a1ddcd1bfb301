import pytest

from safurai_csharp.evaluation import EvaluationInputError, match_completions, summarise

PROBLEMS = [{"name": "A"}, {"name": "B"}, {"name": "C"}]


def test_match_orders_like_problems_and_leaves_gaps():
    rows = [{"name": "C", "completions": ["c"]}, {"name": "A", "completions": ["a1", "a2"]}]
    assert match_completions(PROBLEMS, rows) == [["a1", "a2"], [], ["c"]]


@pytest.mark.parametrize(
    "rows,message",
    [
        ([{"name": "Z", "completions": ["x"]}], "unknown problem 'Z'"),
        ([{"completions": ["x"]}], "missing string field 'name'"),
        ([{"name": "A", "completions": "x"}], "non-empty list of strings"),
        ([{"name": "A", "completions": []}], "non-empty list of strings"),
        ([{"name": "A", "completions": ["x"]}, {"name": "A", "completions": ["y"]}], "appears twice"),
    ],
)
def test_bad_completions_are_named(rows, message):
    with pytest.raises(EvaluationInputError, match=message):
        match_completions(PROBLEMS, rows)


def r(*passed):
    return [{"status": "pass" if p else "compile_error", "passed": p} for p in passed]


def test_summary_counts_and_unbiased_pass_at_k():
    results = [r(True, False), r(False, False), r(True, True), []]  # last problem unscored
    s = summarise(results, "corrected")
    assert s["problems"] == 3 and s["programs"] == 6
    assert s["pass@1"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert s["status"] == {"compile_error": 3, "pass": 3}
    assert s["compile_rate"] == pytest.approx(0.5)
    assert s["problems_solved"] == 2
    assert "pass@10" not in s  # needs n >= 10
    lo, hi = s["pass@1_ci95"]
    assert lo <= s["pass@1"] <= hi
