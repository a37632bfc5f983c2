"""The report's opening section: what a reader came for, before any configuration.

`section_summary` reads the other sections' results (built first, frames still attached): each checkpoint's
accuracy per benchmark with its Wilson 95% CI, the key plots (accuracy, accuracy against the shifted
fraction), and the differences that matter: paired comparisons whose 95% CI excludes
zero (eval arms on shared ids, `compare` folders, invariance variants, each checkpoint's largest shift
drop), the Pareto-optimal decoding modes. Comparisons whose CI spans zero are counted, not listed.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

MAX_FINDINGS = 8  # per kind: the page opens short; the full tables are in their sections


def _num(x: Any, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{float(x):+.3f}" if signed else f"{float(x):.3f}"


def _ci(lo: Any, hi: Any, signed: bool = False) -> str:
    return f"[{_num(lo, signed)}, {_num(hi, signed)}]"


def _clear(lo: Any, hi: Any) -> bool:
    """The 95% CI excludes zero (NaN bounds never do)."""
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return False
    return not (math.isnan(lo) or math.isnan(hi)) and (lo > 0 or hi < 0)


def headline_rows(accuracy: dict[str, Any] | None) -> list[dict[str, str]]:
    frame = (accuracy or {}).get("frames", {}).get("accuracy")
    if frame is None or frame.empty:
        return []
    return [{"checkpoint": str(r["checkpoint"]), "benchmark": str(r["benchmark"]), "n": str(int(r["n"])),
             "accuracy": _num(r["accuracy"]), "95% CI": _ci(r["ci_low"], r["ci_high"])}
            for _, r in frame.iterrows()]


_SKIP = object()  # a row that is no finding either way (a baseline)


def _tally(frame: pd.DataFrame | None, finding) -> tuple[list[str], int]:
    """Each row through `finding(row)`: a sentence (a clear finding), None (not clear: counted) or _SKIP."""
    if frame is None or frame.empty:
        return [], 0
    found, unclear = [], 0
    for _, r in frame.iterrows():
        said = finding(r)
        if said is None:
            unclear += 1
        elif said is not _SKIP:
            found.append(said)
    return found, unclear


def _paired(frame: pd.DataFrame | None) -> tuple[list[str], int]:
    """Eval arms on shared ids: the clear differences as sentences, and how many were not clear."""
    def finding(r):
        if not _clear(r["ci_low"], r["ci_high"]):
            return None
        return (f"{r['b']} - {r['a']} on {r['benchmark']}: {_num(r['b - a'], True)} "
                f"{_ci(r['ci_low'], r['ci_high'], True)} accuracy (paired, n={int(r['n shared'])}, "
                f"McNemar p={float(r['mcnemar p']):.3g})")
    return _tally(frame, finding)


def _compare(compare: dict[str, Any] | None) -> tuple[list[str], int]:
    def finding(r):
        lo, hi = r.get("ci_low", r.get("ci_lo")), r.get("ci_high", r.get("ci_hi"))  # compare.json of any age
        if not _clear(lo, hi):
            return None
        return (f"{r['b']} - {r['a']} ({r['compare']}), {r['metric']}: {_num(r['diff'], True)} "
                f"{_ci(lo, hi, True)} (paired, n={int(r['n'])})")
    return _tally((compare or {}).get("frames", {}).get("compare"), finding)


def _invariance(invariance: dict[str, Any] | None) -> tuple[list[str], int]:
    def finding(r):
        if r.get("diff vs base") is None or pd.isna(r.get("diff vs base")):
            return _SKIP  # the baseline
        same = str(r.get("identical outputs") or "")
        ci = str(r.get("diff 95% CI") or "")
        lo, hi = (ci.strip("[]").split(", ") + ["", ""])[:2]
        if not _clear(lo, hi) and same.startswith(f"{int(r['n'])}/"):
            return None
        return (f"{r['study']}: {r['variant']} changes outputs ({same} identical), accuracy "
                f"{_num(r['diff vs base'], True)} {ci} against the baseline")
    return _tally((invariance or {}).get("frames", {}).get("invariance"), finding)


def _shift(shift: dict[str, Any] | None) -> tuple[list[str], int]:
    """Per checkpoint its largest shift drop, when that drop's 95% CI excludes zero."""
    frame = (shift or {}).get("frames", {}).get("shift")
    if frame is None or frame.empty:
        return [], 0
    out, unclear = [], 0
    for ckpt, g in frame.groupby("checkpoint", sort=True):
        r = g.loc[g["drop"].astype(float).idxmax()]
        if not _clear(r["drop_lo"], r["drop_hi"]):
            unclear += 1
            continue
        frac = r["fraction"] if isinstance(r["fraction"], str) else f"{float(r['fraction']):g}"
        out.append(f"shift, {ckpt}: largest accuracy drop {_num(r['drop'], True)} "
                   f"{_ci(r['drop_lo'], r['drop_hi'], True)} ({r['mode']}, p={frac}, at {r['at']}; "
                   f"clean {_num(r['acc_clean'])})")
    return out, unclear


def _frontier(frontier: dict[str, Any] | None) -> list[str]:
    frame = (frontier or {}).get("frames", {}).get("frontier")
    if frame is None or frame.empty:
        return []
    out = []
    for study, g in frame.groupby("study", sort=True):
        best = [str(m) for m, a, b in zip(g["mode"], g["pareto_tokens_per_second"], g["pareto_tokens_per_forward"])
                if a or b]
        out.append(f"frontier {study}: Pareto-optimal modes {', '.join(best) or 'none'}")
    return out


def section_summary(built: dict[str, Any]) -> dict[str, Any] | None:
    """The opening section from the built sections (`built`: section id -> its data, frames attached)."""
    headline = headline_rows(built.get("accuracy"))
    findings, unclear = [], 0
    for found, n in (_paired((built.get("accuracy") or {}).get("frames", {}).get("paired")),
                     _compare(built.get("compare")), _invariance(built.get("invariance")), _shift(built.get("shift"))):
        findings += found[:MAX_FINDINGS]
        unclear += n + max(0, len(found) - MAX_FINDINGS)
    findings += _frontier(built.get("frontier"))
    plots = [p for p in (
        {"alt": "accuracy per checkpoint and benchmark", "src": (built.get("accuracy") or {}).get("plot")},
        {"alt": "accuracy vs shifted fraction", "src": (built.get("shift") or {}).get("lines")},
    ) if p["src"]]  # shown here only (their sections point up); frontier plots stay in their section
    if not (headline or findings or plots):
        return None
    return {"headline": {"columns": list(headline[0]) if headline else [],
                         "rows": [list(r.values()) for r in headline]},
            "findings": findings, "unclear": unclear, "plots": plots}
