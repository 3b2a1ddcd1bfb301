"""Power of the report's paired test: how often a true pass@1 gain of `gain` (absolute, 0.03 =
3 points) comes out significant (p < alpha) when both models are scored with n samples per
problem. `safurai-csharp power --results data/eval/base/results.jsonl --gain 0.03 --n 1 10 20`.

The baseline's per-problem pass rates come from an eval stage's results (c/n of each problem
in one test mode). The candidate's rates are the baseline's plus `gain`, spread over the
problems one of two ways (`shifted`): a little on every problem with headroom, or a lot on a
few problems; the truth lies between, and the two bound the power. Each simulated experiment draws
c ~ Binomial(n, p) per problem for both models independently and applies the test `report`
applies: the exact McNemar test for n = 1, the sign-flip permutation test on per-problem
differences otherwise (stats.py; exact where it enumerates, the same random flips elsewhere).
Greedy decoding (n = 1 at T 0) is modelled as one sample: a greedy run is not a draw, but
run-to-run it flips problems as one (docs/results.md).

Taking the observed rates c/n as the true ones is the plug-in estimate: with n = 1 they are
all 0 or 1 and the simulated baseline has no noise, so give it a sampled run (n >= 10).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import UserError
from .passk import problem_counts
from .stats import mcnemar_exact, sign_flip_test


class PowerInputError(UserError, ValueError):
    """A results file or an argument the power analysis cannot use."""


def rates(records: Sequence[Mapping[str, Any]], mode: str, source: str = "results") -> list[float]:
    """Per-problem pass rates c/n of one test mode from an eval stage's results.jsonl records."""
    return [counts[mode][1] / counts[mode][0] for counts in problem_counts(records, [mode], source).values()]


SPREADS = ("headroom", "concentrated")
# concentrated: how much one problem's rate moves (a problem newly solved half the time)
STEP = 0.5


def shifted(base: Sequence[float], gain: float, spread: str = "headroom") -> list[float]:
    """The candidate's rates: the mean moves by `gain`. `headroom` spreads it in proportion to
    1 - p (to p for a loss): every unsolved problem gains a little, the optimistic case for a
    test over problems. `concentrated` moves as few problems as it takes by STEP each, those
    nearest to the other side first (for a gain: the highest rates below 1), the pessimistic
    case (a few problems tipped, the rest unchanged)."""
    if spread not in SPREADS:
        raise PowerInputError(f"spread must be one of {', '.join(SPREADS)} (got {spread!r})")
    if gain == 0:
        return list(base)
    if spread == "concentrated":
        out, left, sign = list(base), abs(gain) * len(base), 1 if gain > 0 else -1
        for i in sorted(range(len(out)), key=lambda i: -out[i] * sign):
            if left <= 1e-12:
                break
            step = min(STEP, left, 1 - out[i] if sign > 0 else out[i])
            out[i] += sign * step
            left -= step
        if left > 1e-12:
            raise PowerInputError(f"a gain of {gain:+.3f} does not fit: the mean rate would leave [0, 1]")
        return out
    room = [1 - p for p in base] if gain > 0 else list(base)
    total = sum(room)
    if total < abs(gain) * len(base) - 1e-12:
        raise PowerInputError(f"a gain of {gain:+.3f} does not fit: the mean rate would leave [0, 1]")
    # each increment is at most the problem's room, since gain x problems <= total room
    return [min(1.0, max(0.0, p + gain * len(base) * r / total)) for p, r in zip(base, room, strict=True)]


def power(base: Sequence[float], gain: float, n: int, *, spread: str = "headroom", alpha: float = 0.05,
          sims: int = 400, permutations: int = 2000, seed: int = 0) -> float:
    """Share of `sims` simulated experiments whose paired test gives p < alpha."""
    import numpy as np

    if n < 1 or sims < 1 or permutations < 1 or not 0 < alpha < 1:
        raise PowerInputError("need n >= 1, sims >= 1, permutations >= 1 and 0 < alpha < 1")
    rng = np.random.default_rng(seed)
    p0, p1 = np.asarray(base, dtype=float), np.asarray(shifted(base, gain, spread), dtype=float)
    c0 = rng.binomial(n, p0, size=(sims, len(p0)))
    c1 = rng.binomial(n, p1, size=(sims, len(p1)))
    if n == 1:
        improved, regressed = ((c1 > c0).sum(axis=1), (c1 < c0).sum(axis=1))
        pvals = np.array([mcnemar_exact(int(i), int(r)) for i, r in zip(improved, regressed)])
    else:
        d = (c1 - c0) / n  # sims x problems
        # report's sign_flip_test enumerates every sign pattern when there are few enough
        # differing problems (where its p-value has a floor of 2/2^k); those experiments go
        # through it as they are. The rest: the same random flips, all experiments in one product.
        exact = (d != 0).sum(axis=1) <= math.log2(permutations)
        signs = rng.choice((-1.0, 1.0), size=(permutations, d.shape[1]))
        totals = np.abs(signs @ d.T)  # permutations x sims; zero differences add nothing
        observed = np.abs(d.sum(axis=1)) - 1e-9
        pvals = ((totals >= observed).sum(axis=0) + 1) / (permutations + 1)
        for i in np.flatnonzero(exact):
            pvals[i] = sign_flip_test(d[i].tolist(), permutations)
    return float((pvals < alpha).mean())


def table(base: Sequence[float], gains: Sequence[float], ns: Sequence[int], **kw: Any) -> list[dict[str, Any]]:
    out = []
    for g in gains:
        for n in ns:
            try:
                out.append({"gain": g, "n": n, "power": round(power(base, g, n, **kw), 3)})
            except PowerInputError:
                out.append({"gain": g, "n": n, "power": float("nan")})  # the gain does not fit this spread
    return out


def run(args: argparse.Namespace) -> None:
    from .jsonl import read_jsonl

    base = rates(read_jsonl(args.results), args.mode, args.results)
    print(f"{args.results} ({args.mode}): {len(base)} problems, mean pass rate {sum(base) / len(base):.3f}; "
          f"power of the paired test at p < {args.alpha}, {args.sims} simulated experiments each")
    print(f"{'gain':>7} {'n':>4} {'spread':>12} {'power':>6}")
    for spread in args.spread:
        for row in table(base, args.gain, args.n, spread=spread, alpha=args.alpha, sims=args.sims, seed=args.seed):
            print(f"{row['gain']:+7.3f} {row['n']:>4} {spread:>12} {row['power']:>6.3f}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("power", help="how likely the report's paired test detects a given gain, for n samples")
    p.add_argument("--results", default="data/eval/base/results.jsonl",
                   help="a baseline's eval results (a sampled run: n >= 10)")
    p.add_argument("--mode", default="corrected")
    p.add_argument("--gain", type=float, nargs="+", default=[0.03], help="true pass@1 gains, absolute")
    p.add_argument("--n", type=int, nargs="+", default=[1, 10, 20], help="samples per problem")
    p.add_argument("--spread", nargs="+", choices=SPREADS, default=list(SPREADS),
                   help="how the gain falls on problems: headroom (optimistic), concentrated (pessimistic)")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--sims", type=int, default=400, help="simulated experiments per cell (+-0.025 at 400)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
