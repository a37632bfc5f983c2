"""Win rates against one baseline, computed as Arena-Hard-Auto's `show_result` computes them (docs/arena_hard.md).

Two methods, both reproduced number for number on tests/fixtures/arena_hard/results.json (made with its own code):

- `legacy_bt` (default; commit 3071ef95, the v0.1 leaderboards and the gpt-4-0314 protocol): Bradley-Terry on an
  Elo scale (scale 400, base 10, baseline anchored at 1000) over battle rows (a strong verdict is 3 rows), the
  point estimate from all battles, the interval from the 2.5/97.5 percentiles of the bootstrap Elo (100 rounds
  of resampling all battle rows, every model's pooled, with replacement).
- `main_plain` (commit 196f6b82, without style control): per model, the mean of its score rows over 100
  resamples within the model; the point is the mean of those means, the interval their 5%/95% quantiles.

Every battle is a model against the same baseline (a star design), so the Bradley-Terry likelihood splits per
model and its maximum has a closed form: win rate = (wins + ties / 2) / battles. That is what the logistic
regression Arena-Hard fits converges to (to its tolerance, ~1e-9). Its bootstrap draws come from numpy's global
generator seeded once with 42 (`np.random.seed(42)` at import, nothing drawn before) through pandas'
`sample(frac=1, replace=True)`, i.e. `randint(0, n, n)` per round; `np.random.RandomState(seed)` gives the
same sequence, so the intervals match too, as long as the battle rows are in Arena-Hard's order (the
judgments' order, game 1's rows before game 2's; `battle_rows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

SCALE, BASE, INIT = 400.0, 10.0, 1000.0
ROUNDS, SEED = 100, 42
CLIP = 1e-9  # a model that wins (or loses) every battle has an unbounded rating; its win rate is clipped to 1 - CLIP


@dataclass
class WinRate:
    model: str
    score: float  # win rate against the baseline, 0..1
    lower: float
    upper: float
    n: int  # battle rows (legacy) or score rows (main)
    method: str
    elo: float | None = None

    def to_dict(self) -> dict:
        return {"model": self.model, "win_rate": self.score, "lower": self.lower, "upper": self.upper, "n": self.n,
                "method": self.method, "elo": self.elo}


def elo_of(p: float) -> float:
    p = min(max(p, CLIP), 1 - CLIP)
    return SCALE * math.log10(p / (1 - p)) + INIT


def p_of(elo: float) -> float:
    """Win rate against the baseline (rated INIT) of a model rated `elo`."""
    return 1.0 / (1.0 + BASE ** ((INIT - elo) / SCALE))


def _star_points(models: np.ndarray, won: np.ndarray, names: Sequence[str]) -> dict[str, tuple[float, int]]:
    """(win rate, n) per model from battle rows: won is 1 (model), 0 (baseline) or 0.5 (tie)."""
    out = {}
    for m in names:
        sel = won[models == m]
        out[m] = (float(sel.mean()) if len(sel) else math.nan, int(len(sel)))
    return out


def legacy_bt(rows: Sequence[tuple[str, float]], rounds: int = ROUNDS, seed: int = SEED) -> dict[str, WinRate]:
    """Legacy show_result's win rates. `rows`: (model, 1 | 0.5 | 0 for model win | tie | baseline win) per battle
    row, in Arena-Hard's order. Interval: percentiles 2.5/97.5 of the bootstrap Elo, mapped to win rates."""
    names = list(dict.fromkeys(m for m, _ in rows))
    models = np.array([m for m, _ in rows], dtype=object)
    won = np.array([w for _, w in rows], dtype=float)
    point = _star_points(models, won, names)
    rs = np.random.RandomState(seed)
    boot = {m: [] for m in names}
    for _ in range(rounds):
        idx = rs.randint(0, len(rows), size=len(rows))
        for m, (p, n) in _star_points(models[idx], won[idx], names).items():
            boot[m].append(elo_of(p) if n else math.nan)  # a model absent from a resample: no rating that round
    out = {}
    for m in names:
        b = np.array(boot[m], dtype=float)
        b = b[~np.isnan(b)]
        p, n = point[m]
        lo, hi = (p_of(float(np.percentile(b, 2.5))), p_of(float(np.percentile(b, 97.5)))) if len(b) else (math.nan,) * 2
        out[m] = WinRate(m, min(max(p, CLIP), 1 - CLIP), lo, hi, n, "legacy_bt", elo=elo_of(p))
    return out


def main_plain(scores: dict[str, Sequence[float]], rounds: int = ROUNDS, seed: int = SEED) -> dict[str, WinRate]:
    """Main show_result's plain leaderboard: per model (in sorted order, as pandas groupby visits them) the
    score rows resampled within the model; point = mean of the resample means, interval = 5%/95% quantiles."""
    rs = np.random.RandomState(seed)
    names = sorted(scores)
    arr = {m: np.asarray(scores[m], dtype=float) for m in names}
    means: dict[str, list[float]] = {m: [] for m in names}
    for _ in range(rounds):
        for m in names:
            n = len(arr[m])
            if n:
                means[m].append(float(arr[m][rs.randint(0, n, size=n)].mean()))
    out = {}
    for m in names:
        b = np.array(means[m])
        out[m] = WinRate(m, float(b.mean()) if len(b) else math.nan,
                         float(np.quantile(b, 0.05)) if len(b) else math.nan,
                         float(np.quantile(b, 0.95)) if len(b) else math.nan, len(arr[m]), "main_plain")
    return out


METHODS = {"legacy": legacy_bt, "main": main_plain}


def per_question_means(scores: dict[str, list[float]]) -> dict[str, float]:
    """question -> mean of its score rows (a strong verdict's three rows weigh three times)."""
    return {q: sum(v) / len(v) for q, v in scores.items() if v}


def paired_questions(a: dict[str, float], b: dict[str, float]) -> tuple[list[str], list[float], list[float]]:
    """The questions both have a score for (either run losing a game drops the question for both), sorted."""
    common = sorted(set(a) & set(b))
    return common, [a[q] for q in common], [b[q] for q in common]


def counts(rows: Iterable[tuple[str, float]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for m, w in rows:
        c = out.setdefault(m, {"model": 0, "tie": 0, "baseline": 0})
        c["model" if w == 1 else "baseline" if w == 0 else "tie"] += 1
    return out
