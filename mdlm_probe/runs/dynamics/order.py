"""Commit order and parallelism of one trajectory (pure functions over `trajectory.commit_step`).

Kendall's tau here is tau-b: (C - D) / sqrt((n0 - n1)(n0 - n2)) over all pairs of committed positions, where
n0 = n(n-1)/2, n1 counts pairs tied in position (none: positions are distinct) and n2 pairs tied in commit
step (tokens committed in the same step). A strictly left-to-right decode (one token per step, in order) has
tau = 1; right to left -1. Ties count neither as concordant nor discordant, so a decode that commits whole
blocks at once, in order, still has tau = 1, and one that commits everything in one step has no tau (None).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def committed(steps: Sequence[int]) -> list[int]:
    """Positions the model committed (commit_step >= 0)."""
    return [i for i, s in enumerate(steps) if s is not None and s >= 0]


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b between two equal-length sequences; None when either is constant or has < 2 items."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(a)
    if n < 2 or len(b) != n:
        return None
    iu = np.triu_indices(n, 1)
    da = np.sign(a[:, None] - a[None, :])[iu]  # (n0,) pairwise signs
    db = np.sign(b[:, None] - b[None, :])[iu]
    n0 = len(da)
    n1, n2 = int((da == 0).sum()), int((db == 0).sum())
    den = math.sqrt((n0 - n1) * (n0 - n2))
    if den == 0:
        return None
    return float((da * db).sum() / den)


def tau_order(steps: Sequence[int], positions: Sequence[int] | None = None) -> float | None:
    """tau-b between commit step and position over the committed positions (of `positions`, default all)."""
    pos = committed(steps) if positions is None else [p for p in positions if steps[p] >= 0]
    return kendall_tau_b(pos, [steps[p] for p in pos])


def tau_within_blocks(steps: Sequence[int], blocks: Sequence[int]) -> float | None:
    """Mean over blocks of tau-b inside each block (blocks where it is defined): the order a block was filled
    in, without the left-to-right order the blocks themselves impose."""
    vals = []
    for blk in sorted({b for b in blocks if b is not None and b >= 0}):
        t = tau_order(steps, [i for i, b in enumerate(blocks) if b == blk])
        if t is not None:
            vals.append(t)
    return float(np.mean(vals)) if vals else None


def per_step_counts(steps: Sequence[int]) -> dict[int, int]:
    """step -> tokens the model committed in it (steps that committed nothing are absent)."""
    out: dict[int, int] = {}
    for s in steps:
        if s is not None and s >= 0:
            out[s] = out.get(s, 0) + 1
    return out


def parallelism(steps: Sequence[int]) -> tuple[float | None, int]:
    """(mean, max) tokens committed per step, over the steps that committed at least one token."""
    counts = per_step_counts(steps)
    if not counts:
        return None, 0
    return sum(counts.values()) / len(counts), max(counts.values())


def share_before(steps: Sequence[int], content: Sequence[int]) -> float | None:
    """Share of the response (all positions) committed strictly before the first content position committed;
    None without a committed content position."""
    first = [steps[p] for p in content if steps[p] >= 0]
    if not first or not steps:
        return None
    s0 = min(first)
    return sum(1 for s in steps if 0 <= s < s0) / len(steps)
