"""Paired significance tests for two models scored on the same problems (stage report).

The problems are the sampling unit and each is scored by both models, so the tests look at
per-problem differences only: a problem both models solve (or both fail) says nothing about
which model is better. Pure Python on purpose (math.comb, random): no scipy dependency.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

# Per-problem pass rates are fractions c/n; sums of them that are equal in exact arithmetic
# may differ in the last bits as floats.
_TOLERANCE = 1e-9


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n fair coin flips (Binomial(n, 1/2)):
    twice the smaller tail, capped at 1 (the distribution is symmetric)."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1))
    return min(1.0, 2 * tail / 2**n)


def mcnemar_exact(improved: int, regressed: int) -> float:
    """Exact McNemar test (greedy n=1): under "both models are equally good" each discordant
    problem (solved by exactly one model) is as likely to favour either, so the count of
    problems only the candidate solves is Binomial(improved + regressed, 1/2)."""
    if improved < 0 or regressed < 0:
        raise ValueError(f"counts must be >= 0, got improved={improved}, regressed={regressed}")
    return binomial_two_sided(improved, improved + regressed)


def sign_flip_test(differences: Sequence[float], permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided paired permutation test of mean difference 0 (n > 1: per-problem pass-rate
    differences). Under the null hypothesis the two models' scores of a problem are
    exchangeable, so each difference is as likely to carry either sign. Zero differences
    cannot change the statistic and are left out. When 2^(nonzero differences) is at most
    `permutations` every sign pattern is enumerated (an exact p-value; for differences of
    +-1 it equals the exact McNemar test); otherwise `permutations` random patterns
    (seeded), with the (count + 1) / (permutations + 1) correction so that p is never 0."""
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    nonzero = [d for d in differences if abs(d) > _TOLERANCE]
    if not nonzero:
        return 1.0
    observed = abs(sum(nonzero)) - _TOLERANCE
    if 2 ** len(nonzero) <= permutations:
        hits = sum(abs(sum(s * d for s, d in zip(signs, nonzero, strict=True))) >= observed
                   for signs in itertools.product((1, -1), repeat=len(nonzero)))
        return hits / 2 ** len(nonzero)
    rng = random.Random(seed)
    hits = 0
    for _ in range(permutations):
        total = sum(d if rng.random() < 0.5 else -d for d in nonzero)
        hits += abs(total) >= observed
    return (hits + 1) / (permutations + 1)
