"""The power analysis of the report's paired test (safurai-csharp power)."""

import json

import pytest

from safurai_csharp.cli import main
from safurai_csharp.errors import EvaluationInputError
from safurai_csharp.power import PowerInputError, power, rates, shifted

# 40 problems: 10 always solved, 10 half the time, 20 never
BASE = [1.0] * 10 + [0.5] * 10 + [0.0] * 20


def record(name, passed):
    return {"name": name, "completions": ["x"] * len(passed),
            "results": {"corrected": [{"passed": p, "status": "pass" if p else "assertion_failed"} for p in passed]}}


def test_rates_are_each_problems_pass_share():
    recs = [record("a", [True, False, True, True]), record("b", [False] * 4)]
    assert rates(recs, "corrected") == [0.75, 0.0]
    with pytest.raises(EvaluationInputError, match="problem 'a' has no scored completions for mode 'official'"):
        rates(recs, "official")


@pytest.mark.parametrize("spread", ["headroom", "concentrated"])
@pytest.mark.parametrize("gain", [0.05, 0.1, -0.05])
def test_the_candidate_mean_moves_by_the_gain_and_stays_a_rate(spread, gain):
    cand = shifted(BASE, gain, spread)
    assert sum(cand) / len(cand) == pytest.approx(sum(BASE) / len(BASE) + gain)
    assert all(0.0 <= p <= 1.0 for p in cand)
    assert all(c == 1.0 for c in cand[:10]) or gain < 0  # a solved problem cannot improve
    assert shifted(BASE, 0.0, spread) == BASE


def test_concentrated_moves_few_problems_headroom_moves_all_unsolved():
    moved = lambda cand: sum(1 for b, c in zip(BASE, cand) if c != b)  # noqa: E731
    assert moved(shifted(BASE, 0.05, "concentrated")) == 4  # 2 problems' worth, by 0.5 each
    assert moved(shifted(BASE, 0.05, "headroom")) == 30
    with pytest.raises(PowerInputError, match="does not fit"):
        shifted(BASE, 0.8, "headroom")
    with pytest.raises(PowerInputError, match="spread"):
        shifted(BASE, 0.1, "sideways")


def test_power_is_the_false_positive_rate_without_a_gain_and_grows_with_n():
    assert power(BASE, 0.0, 10, sims=300) <= 0.1
    weak, strong = power(BASE, 0.05, 1, sims=300), power(BASE, 0.05, 20, sims=300)
    assert strong > weak and strong > 0.5
    assert power(BASE, 0.3, 1, sims=100) > 0.9  # n = 1: the exact McNemar test


def test_the_cli_prints_a_row_per_gain_n_and_spread(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(record(f"p{i}", [p >= 0.5, p == 1.0])) + "\n" for i, p in enumerate(BASE)))
    assert main(["power", "--results", str(path), "--gain", "0.05", "--n", "1", "4", "--sims", "50"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("+0.050", "1", "headroom"), ("+0.050", "4", "headroom"),
                                                 ("+0.050", "1", "concentrated"), ("+0.050", "4", "concentrated")]
    assert all(0.0 <= float(r[3]) <= 1.0 for r in rows)
    assert main(["power", "--results", str(tmp_path / "none.jsonl")]) == 2


def test_few_moved_problems_meet_the_reports_exact_floor():
    # only 4 problems can differ: report's sign-flip test enumerates the 16 sign patterns, and
    # its smallest p-value, 2/16, is never below 0.05, however many samples per problem
    base = [0.5] * 4 + [1.0] * 36
    assert power(base, -0.05, 20, spread="concentrated", sims=200) == 0.0
