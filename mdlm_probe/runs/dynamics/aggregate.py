"""Per checkpoint and condition: the dynamics' means and shares with 95% intervals, artifact origins, the
predictors of a wrong answer, and cache drift against correctness. Rows of `dynamics_summary.csv`."""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from .record import DECILES
from .stats import auc_ci, mean_ci, risk_ratio, share_ci

SUMMARY_FIELDS = ["run", "ckpt", "condition", "section", "metric", "n", "value", "ci_low", "ci_high", "note"]
MEANS = ("tau_b", "tau_b_within_block", "tau_b_content", "parallel_mean", "parallel_max", "share_before_content",
         "length_fixed_frac")
SHARES = ("eos_before_answer", "premature")
# Features whose association with a wrong answer is measured. Confidences enter negated, so for every feature an
# AUC above 0.5 means "larger values go with wrong answers".
FEATURES = ("tau_b", "tau_b_content", "parallel_mean", "parallel_max", "share_before_content", "length_fixed_frac",
            "eos_before_answer", "premature", "answer_tz_before_lead", "answer_same_step", "neg_answer_min_conf",
            "neg_min_conf", "neg_mean_conf", "drift_kl_mean", "drift_disagree")
BINARY = ("eos_before_answer", "premature", "answer_tz_before_lead", "answer_same_step")


def condition(rec: dict[str, Any]) -> str:
    """A record's decoding condition: cache, threshold and block layout; a shift record adds its setting."""
    s = rec.get("sampler") or {}
    parts = [s.get("cache") or "none"]
    if s.get("threshold") is not None:
        parts.append(f"thr{s['threshold']}")
    parts.append(f"b{s.get('block_length')}s{s.get('steps')}")
    rid = str(rec.get("id", ""))
    if "@" in rid:
        parts.append(rid.rsplit("@", 1)[1])
    return " ".join(parts)


def feature(row: dict[str, Any], name: str) -> float | None:
    if name.startswith("neg_"):
        v = row.get(name[4:])
        return None if v is None else -float(v)
    if name.startswith("drift_"):
        d = row.get("drift") or {}
        if name == "drift_disagree":
            return None if d.get("top1_agree") is None else 1.0 - float(d["top1_agree"])
        return d.get(name[6:])
    v = row.get(name)
    return None if v is None else float(v)


def _row(run, ckpt, cond, section, metric, n, v, lo=math.nan, hi=math.nan, note="") -> dict[str, Any]:
    f = (lambda x: None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 5))
    return {"run": run, "ckpt": ckpt, "condition": cond, "section": section, "metric": metric, "n": n,
            "value": f(v), "ci_low": f(lo), "ci_high": f(hi), "note": note}


def summarise(run: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every summary row of one run, grouped by (checkpoint, condition)."""
    out: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r.get("ckpt"), r["condition"]), []).append(r)
    for (ckpt, cond), g in groups.items():
        out += group_rows(run, ckpt, cond, g)
    return out


def group_rows(run, ckpt, cond, g) -> list[dict[str, Any]]:
    out = []
    add = lambda *a, **k: out.append(_row(run, ckpt, cond, *a, **k))  # noqa: E731
    scored = [r for r in g if r.get("correct") is not None]
    add("outcome", "accuracy", len(scored), *share_ci(sum(bool(r["correct"]) for r in scored), len(scored)))
    add("outcome", "aligned", len(g), *share_ci(sum(bool(r.get("aligned")) for r in g), len(g)))
    for m in MEANS:
        xs = [r[m] for r in g if r.get(m) is not None]
        add("order" if m != "length_fixed_frac" else "eos", m, len(xs), *mean_ci(xs))
    for m in SHARES:
        xs = [bool(r[m]) for r in g if r.get(m) is not None]
        add("eos", m, len(xs), *share_ci(sum(xs), len(xs)))
    for d in range(DECILES):
        xs = [r["eos_density"][d] for r in g if r.get("eos_density") and r["eos_density"][d] is not None]
        add("eos", f"eos_density_decile{d}", len(xs), *mean_ci(xs), note="share of a tenth's commits that are EOS")
    out += number_rows(run, ckpt, cond, g)
    out += token_rows(run, ckpt, cond, g)
    out += origin_rows(run, ckpt, cond, g)
    out += predictor_rows(run, ckpt, cond, scored)
    drift = [r for r in g if r.get("drift")]
    if drift:
        for k in ("kl_mean", "top1_agree"):
            add("drift", k, len(drift), *mean_ci([r["drift"][k] for r in drift]))
        k = sum(bool(r["drift"].get("committed_differ")) for r in drift)
        add("drift", "any_commit_differs", len(drift), *share_ci(k, len(drift)),
            note="share of samples with a committed token the exact forward would not have chosen")
    return out


def number_rows(run, ckpt, cond, g) -> list[dict[str, Any]]:
    out = []
    nums = [n for r in g for n in r.get("numbers") or []]
    for label, sel in (("numbers", nums), ("answers", [n for n in nums if n["final_answer"]]),
                       ("flagged", [n for n in nums if n["miner_flagged"]])):
        with_tz = [n for n in sel if n["trailing_zeros"]]
        out.append(_row(run, ckpt, cond, "numbers", f"{label}:tz_before_lead", len(with_tz),
                        *share_ci(sum(n["tz_before_lead"] for n in with_tz), len(with_tz)),
                        note="of numbers with trailing zeros"))
        multi = [n for n in sel if len(n["steps"]) > 1]
        out.append(_row(run, ckpt, cond, "numbers", f"{label}:same_step", len(multi),
                        *share_ci(sum(n["same_step"] for n in multi), len(multi)), note="of multi-digit numbers"))
        out.append(_row(run, ckpt, cond, "numbers", f"{label}:left_to_right", len(multi),
                        *share_ci(sum(n["left_to_right"] for n in multi), len(multi)), note="of multi-digit numbers"))
        out.append(_row(run, ckpt, cond, "numbers", f"{label}:min_conf", len(sel),
                        *mean_ci([n["min_conf"] for n in sel if n["min_conf"] is not None])))
    return out


def token_rows(run, ckpt, cond, g) -> list[dict[str, Any]]:
    out = []
    for level in ("answer", "text"):
        right = [c for r in g for c in ((r.get("tokens") or {}).get(level) or {}).get("right", [])]
        wrong = [c for r in g for c in ((r.get("tokens") or {}).get(level) or {}).get("wrong", [])]
        if not right and not wrong:
            continue
        out.append(_row(run, ckpt, cond, "tokens", f"{level}:conf_right", len(right), *mean_ci(right)))
        out.append(_row(run, ckpt, cond, "tokens", f"{level}:conf_wrong", len(wrong), *mean_ci(wrong)))
        out.append(_row(run, ckpt, cond, "tokens", f"{level}:auc_lowconf_wrong", len(right) + len(wrong),
                        *auc_ci([-c for c in right + wrong], [False] * len(right) + [True] * len(wrong)),
                        note="AUC of low confidence at commit for telling wrong tokens from right ones"))
    return out


def origin_rows(run, ckpt, cond, g) -> list[dict[str, Any]]:
    out = []
    arts = [o for r in g for o in r.get("origins") or []]
    for pat in ("all",) + tuple(sorted({o["pattern"] for o in arts})):
        sel = [o for o in arts if pat in ("all", o["pattern"])]
        n = len(sel)
        for cls in ("same-step", "cross-step"):
            out.append(_row(run, ckpt, cond, "origins", f"{pat}:{cls}", n,
                            *share_ci(sum(o["origin"] == cls for o in sel), n)))
        out.append(_row(run, ckpt, cond, "origins", f"{pat}:masked_neighbourhood", n,
                        *share_ci(sum(o["masked_neighbourhood"] for o in sel), n)))
    return out


def predictor_rows(run, ckpt, cond, scored) -> list[dict[str, Any]]:
    out = []
    for f in FEATURES:
        pairs = [(feature(r, f), not r["correct"]) for r in scored if feature(r, f) is not None]
        if len(pairs) < 2:
            continue
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        out.append(_row(run, ckpt, cond, "predictors", f"auc:{f}", len(pairs), *auc_ci(xs, ys),
                        note="AUC > 0.5: larger values go with wrong answers"))
        if f in BINARY:
            k1 = sum(1 for x, y in pairs if x and y)
            n1 = sum(1 for x, _ in pairs if x)
            k0 = sum(1 for x, y in pairs if not x and y)
            n0 = len(pairs) - n1
            out.append(_row(run, ckpt, cond, "predictors", f"rr:{f}", len(pairs), *risk_ratio(k1, n1, k0, n0),
                            note=f"wrong {k1}/{n1} with vs {k0}/{n0} without"))
    return out


def rows_of(summary: Iterable[dict[str, Any]], section: str) -> list[dict[str, Any]]:
    return [r for r in summary if r["section"] == section]
