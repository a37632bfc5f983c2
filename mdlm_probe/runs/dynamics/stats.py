"""Intervals for the dynamics tables: bootstrap means, AUC with a bootstrap interval, risk ratios (Katz)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from mdlm_probe.core.stats import Z95, wilson

N_BOOT = 1000


def mean_ci(xs: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """Mean with a percentile bootstrap 95% interval (nan without data)."""
    a = np.asarray([x for x in xs if x is not None], dtype=float)
    if len(a) == 0:
        return (math.nan,) * 3
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, len(a), size=(N_BOOT, len(a)))].mean(1)
    return float(a.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def share_ci(k: int, n: int) -> tuple[float, float, float]:
    lo, hi = wilson(k, n)
    return (k / n if n else math.nan), lo, hi


def rankdata(a: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their average rank (scipy's default, without scipy)."""
    order = np.argsort(a, kind="mergesort")
    sa = a[order]
    starts = np.r_[0, np.flatnonzero(sa[1:] != sa[:-1]) + 1]
    ends = np.r_[starts[1:], len(sa)]
    ranks = np.empty(len(a), dtype=float)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """P(score of a positive > score of a negative), ties counting one half (Mann-Whitney); nan if one class is empty."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    ranks = rankdata(s)  # average ranks: ties count one half
    u = ranks[y].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def auc_ci(scores: Sequence[float], labels: Sequence[bool], seed: int = 0) -> tuple[float, float, float]:
    """AUC with a percentile bootstrap 95% interval over samples (resamples lacking a class are skipped)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    a = auc(s, y)
    if math.isnan(a):
        return (a, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(N_BOOT // 2):  # AUC is O(n^2) per draw; 500 draws keep a 300-sample run quick
        idx = rng.integers(0, len(s), len(s))
        v = auc(s[idx], y[idx])
        if not math.isnan(v):
            vals.append(v)
    if not vals:
        return (a, math.nan, math.nan)
    return a, float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def risk_ratio(k1: int, n1: int, k0: int, n0: int) -> tuple[float, float, float]:
    """P(event | exposed) / P(event | not), Katz log interval; 0.5 added to each cell when one is empty."""
    if n1 == 0 or n0 == 0:
        return (math.nan,) * 3
    if k1 == 0 or k0 == 0 or k1 == n1 or k0 == n0:
        k1, n1, k0, n0 = k1 + 0.5, n1 + 1, k0 + 0.5, n0 + 1
    rr = (k1 / n1) / (k0 / n0)
    se = math.sqrt(1 / k1 - 1 / n1 + 1 / k0 - 1 / n0)
    return rr, rr * math.exp(-Z95 * se), rr * math.exp(Z95 * se)
