"""Statistics shared by eval, shift, compare and report: Wilson intervals, paired bootstrap, McNemar, and
the paired comparison of two 0/1 outcomes built from them (`paired_binary`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score 95% interval for k successes out of n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0,
                     ) -> tuple[float, float, float]:
    """Mean of (b - a) over paired samples with a percentile 95% bootstrap interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b):
        raise ValueError("paired samples differ in length")
    if len(a) == 0:
        return (float("nan"),) * 3
    d = b - a
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    means = d[idx].mean(1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))



def paired_ratio_bootstrap(drop_a: Sequence[float], drop_b: Sequence[float], n_boot: int = 2000, seed: int = 0,
                           ) -> tuple[float, float, float]:
    """1 - mean(drop_b) / mean(drop_a) over paired samples (a repair's recovered share: drop_a without it,
    drop_b with it, per sample) with a percentile 95% bootstrap interval; resamples whose mean(drop_a) is 0
    are left out of the interval, and the point is nan when mean(drop_a) is 0."""
    a, b = np.asarray(drop_a, dtype=float), np.asarray(drop_b, dtype=float)
    if len(a) != len(b):
        raise ValueError("paired samples differ in length")
    if len(a) == 0 or a.mean() == 0:
        return (float("nan"),) * 3
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    ma, mb = a[idx].mean(1), b[idx].mean(1)
    ok = ma != 0
    shares = 1 - mb[ok] / ma[ok]
    return float(1 - b.mean() / a.mean()), float(np.percentile(shares, 2.5)), float(np.percentile(shares, 97.5))

def mcnemar_exact(b01: int, b10: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts (binomial test with p = 1/2)."""
    n = b01 + b10
    if n == 0:
        return 1.0
    k = min(b01, b10)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@dataclass
class Paired:
    """Two 0/1 outcomes on the same samples (e.g. correct under run a and run b), b against a."""

    n: int
    mean_a: float
    mean_b: float
    diff: float  # mean(b - a)
    ci: tuple[float, float]  # percentile bootstrap 95% interval of diff
    only_a: list[int]  # positions where a is 1 and b is 0
    only_b: list[int]  # positions where b is 1 and a is 0
    p: float  # exact McNemar p on the discordant pairs


def paired_binary(a: Sequence[bool | int | float], b: Sequence[bool | int | float], seed: int = 0) -> Paired:
    """The paired comparison that compare and report both show: means, the difference with its bootstrap
    CI, who is right where the other is wrong, and McNemar's p."""
    xa, xb = [bool(x) for x in a], [bool(x) for x in b]
    diff, lo, hi = paired_bootstrap([float(x) for x in xa], [float(x) for x in xb], seed=seed)
    only_a = [i for i, (x, y) in enumerate(zip(xa, xb)) if x and not y]
    only_b = [i for i, (x, y) in enumerate(zip(xa, xb)) if y and not x]
    n = len(xa)
    return Paired(n=n, mean_a=sum(xa) / n if n else math.nan, mean_b=sum(xb) / n if n else math.nan, diff=diff,
                  ci=(lo, hi), only_a=only_a, only_b=only_b, p=mcnemar_exact(len(only_a), len(only_b)))
