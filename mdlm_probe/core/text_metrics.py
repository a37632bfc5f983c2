"""How far a shifted output is from its clean twin: edit distance, chrF, and the per-pair metrics the
shift summary averages (`pair_metrics`)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance (insert, delete, substitute; cost 1) between two sequences."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def norm_edit(a: Sequence, b: Sequence) -> float:
    """Levenshtein / the longer length: 0 identical, 1 nothing in common (0 for two empty sequences)."""
    n = max(len(a), len(b))
    return 0.0 if n == 0 else levenshtein(a, b) / n


def chrf(hyp: str, ref: str, order: int = 6, beta: float = 2.0) -> float:
    """Sentence chrF (Popović 2015) as sacreBLEU computes it: character 1..6-grams, whitespace removed,
    precision and recall averaged over the orders both sides have, then F-beta; 0..100.
    Two identical strings score 100 (sacreBLEU gives 0 for two empty ones)."""
    if hyp == ref:
        return 100.0
    h, r = "".join(hyp.split()), "".join(ref.split())
    prec = rec = 0.0
    eff = 0
    for n in range(1, order + 1):
        hg = _ngrams(h, n)
        rg = _ngrams(r, n)
        nh, nr = sum(hg.values()), sum(rg.values())
        if nh and nr:
            match = sum(min(c, rg[g]) for g, c in hg.items() if g in rg)
            prec += match / nh
            rec += match / nr
            eff += 1
    if eff == 0 or prec + rec == 0:
        return 0.0
    prec, rec = prec / eff, rec / eff
    return 100 * (1 + beta ** 2) * prec * rec / (beta ** 2 * prec + rec)


def _ngrams(s: str, n: int) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for i in range(len(s) - n + 1):
        out[s[i: i + n]] += 1
    return out


def pair_metrics(clean: dict[str, Any], shifted: dict[str, Any]) -> dict[str, Any]:
    """Per-sample comparison of a shifted record with its clean twin."""
    c, s = bool(clean.get("correct")), bool(shifted.get("correct"))
    return {
        "clean_correct": c, "shifted_correct": s,
        "broken": c and not s, "fixed": s and not c,
        "edit_tokens": norm_edit(clean["output_ids"], shifted["output_ids"]),
        "edit_text": norm_edit(clean["text"], shifted["text"]),
        "chrf": chrf(shifted["text"], clean["text"]),
        "absorbed": shifted["text"] == clean["text"],
    }
