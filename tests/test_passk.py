import math
from itertools import combinations

import pytest

from safurai_csharp.passk import bootstrap_interval, mean_pass_at_k, pass_at_k


@pytest.mark.parametrize("n,c,k", [(5, 2, 1), (5, 2, 3), (10, 0, 1), (10, 10, 5), (6, 3, 2)])
def test_pass_at_k_matches_enumeration(n, c, k):
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    expected = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert math.isclose(pass_at_k(n, c, k), expected, rel_tol=1e-12)


def test_pass_at_1_is_fraction_correct():
    assert pass_at_k(20, 7, 1) == pytest.approx(7 / 20)


def test_invalid_inputs():
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 6)


def test_mean_and_interval():
    counts = [(1, 1)] * 30 + [(1, 0)] * 70
    assert mean_pass_at_k(counts, 1) == pytest.approx(0.3)
    lo, hi = bootstrap_interval(counts, 1)
    assert lo < 0.3 < hi
    assert 0.18 < lo and hi < 0.42  # about +-1.96 * sqrt(.3*.7/100) = +-0.09
    assert bootstrap_interval(counts, 1) == (lo, hi)  # seeded: reproducible
