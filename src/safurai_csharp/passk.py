"""pass@k (the unbiased estimator of Chen et al. 2021, as MultiPL-E uses) and its uncertainty."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import EvaluationInputError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) passes."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"k must be in 1..n={n}, got {k}")
    if n - c < k:
        return 1.0
    # 1 - C(n-c, k) / C(n, k), as a product to stay exact for large n.
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean over problems of pass@k; counts holds (n, c) per problem."""
    if not counts:
        raise ValueError("no problems")
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def bootstrap_interval(
    counts: Sequence[tuple[int, int]], k: int = 1, *, level: float = 0.95,
    resamples: int = 2000, seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap over problems: the benchmark's problems are the sampling unit,
    so this interval says how much the score would move on another draw of problems."""
    if not counts:
        raise ValueError("no problems")
    return bootstrap_mean_interval([pass_at_k(n, c, k) for n, c in counts], level=level,
                                   resamples=resamples, seed=seed)


def bootstrap_mean_interval(
    values: Sequence[float], *, level: float = 0.95, resamples: int = 2000, seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-problem values. With paired values
    (candidate minus baseline score of each problem) it is the paired bootstrap: a problem
    is drawn with both of its scores."""
    if not values:
        raise ValueError("no problems")
    scores = list(values)
    rng = random.Random(seed)
    m = len(scores)
    means = sorted(sum(scores[rng.randrange(m)] for _ in range(m)) / m for _ in range(resamples))
    lo = means[int(math.floor((1 - level) / 2 * (resamples - 1)))]
    hi = means[int(math.ceil((1 + level) / 2 * (resamples - 1)))]
    return lo, hi


def problem_counts(records: Sequence[Mapping[str, Any]], modes: Sequence[str],
                   source: str) -> dict[str, dict[str, tuple[int, int, int]]]:
    """{problem: {mode: (n, passed, compile_errors)}} from an eval stage's results.jsonl records,
    in their order (n and passed are what pass_at_k takes); checks the layout and names `source`
    (e.g. eval_multipl_e@base) in its errors."""
    out: dict[str, dict[str, tuple[int, int, int]]] = {}
    for i, rec in enumerate(records, 1):
        name = rec.get("name")
        if not isinstance(name, str):
            raise EvaluationInputError(f"{source} record {i}: missing string field 'name'")
        if name in out:
            raise EvaluationInputError(f"{source}: problem {name!r} appears twice")
        out[name] = {}
        for mode in modes:
            results = (rec.get("results") or {}).get(mode)
            if not isinstance(results, list) or not results or not all(isinstance(r, Mapping) for r in results):
                raise EvaluationInputError(
                    f"{source}: problem {name!r} has no scored completions for mode {mode!r} "
                    f"(is {mode} among the test modes of that run? rerun {source} with it)")
            out[name][mode] = (len(results), sum(1 for r in results if r.get("passed") is True),
                               sum(1 for r in results if r.get("status") == "compile_error"))
    if not out:
        raise EvaluationInputError(f"{source}: no problems in the results")
    return out
