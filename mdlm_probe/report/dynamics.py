"""The report's "Decoding dynamics" section: commit-order heat maps, order/EOS, artifact origins, predictors of a
wrong answer and cache drift, from `runs.dynamics` (its dynamics_summary.csv when `mdlm-probe dynamics` wrote one,
else computed here without writing)."""

from __future__ import annotations

import csv
import re
from typing import Any

import numpy as np
import pandas as pd

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.dynamics import DYNAMICS_SUMMARY, analyse_run
from mdlm_probe.runs.dynamics.aggregate import condition
from mdlm_probe.runs.dynamics.run import has_trajectory
from . import plots
from .sections import table_dict

PER_KIND = 2  # heat-map samples per checkpoint: this many correct and this many wrong
ORDER_METRICS = ("accuracy", "tau_b", "tau_b_content", "parallel_mean", "parallel_max", "share_before_content",
                 "length_fixed_frac", "eos_before_answer", "premature")
SELECTION_RULE = (f"the first {PER_KIND} correct and the first {PER_KIND} wrong records (by id) of each checkpoint, "
                  "taken from its first condition in this order: exact forward without threshold, then any")


def _summary(run) -> list[dict[str, Any]] | None:
    path = run.dir / DYNAMICS_SUMMARY
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            for k in ("value", "ci_low", "ci_high"):
                r[k] = float(r[k]) if r.get(k) not in (None, "") else None
        return rows
    if not any(has_trajectory(r) for r in run.records):
        return None
    try:
        return analyse_run(run.dir, write=False).summary
    except BadInput:
        return None


def _ci(r: dict[str, Any]) -> str:
    if r["value"] is None:
        return "-"
    ci = "" if r["ci_low"] is None else f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
    return f"{r['value']:.3f}{ci}"


def _pivot(rows, section: str, metrics=None, prefix: str | None = None) -> list[dict[str, Any]]:
    """One table row per (run, checkpoint, condition), a column per metric (value [95% CI])."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        if r["section"] != section or (metrics and r["metric"] not in metrics):
            continue
        if prefix and not r["metric"].startswith(prefix):
            continue
        key = (r["run"], r["ckpt"], r["condition"])
        row = out.setdefault(key, {"run": r["run"], "checkpoint": r["ckpt"], "condition": r["condition"]})
        row[f"{r['metric']} (n={r['n']})" if section == "origins" else r["metric"]] = _ci(r)
    return list(out.values())


def _natural(rid: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", rid)]


def heatmap_samples(runs) -> list[tuple[str, dict[str, Any]]]:
    """(checkpoint, record) by SELECTION_RULE."""
    by_ckpt: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for rec in run.records:
            if has_trajectory(rec) and rec.get("correct") is not None:
                by_ckpt.setdefault(str(rec.get("ckpt")), []).append(rec)
    out = []
    for ckpt in sorted(by_ckpt):
        recs = by_ckpt[ckpt]
        conds = sorted({condition(r) for r in recs}, key=lambda c: (not c.startswith("none b"), c))
        pick = sorted((r for r in recs if condition(r) == conds[0]), key=lambda r: _natural(str(r["id"])))
        for want in (True, False):
            out += [(ckpt, r) for r in [r for r in pick if bool(r["correct"]) == want][:PER_KIND]]
    return out


def heatmap_figure(samples: list[tuple[str, dict[str, Any]]], ckpts: list[str]):
    """A panel per sample: which step (y) committed which position (x), shaded in its checkpoint's colour
    (darker = higher confidence at commit)."""
    if not samples:
        return None
    from matplotlib.colors import LinearSegmentedColormap
    plt = plots.pyplot(report=True)
    cols = min(4, len(samples))
    rows = -(-len(samples) // cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(3.0 * cols, 2.4 * rows), constrained_layout=True)
    for ax in axes.flat[len(samples):]:
        ax.axis("off")
    for ax, (ckpt, rec) in zip(axes.flat, samples):
        steps = rec["trajectory"]["commit_step"]
        conf = rec["trajectory"].get("confidence") or [1.0] * len(steps)
        n = max(max(steps) + 1, 1)
        grid = np.zeros((n, len(steps)))
        for p, (s, c) in enumerate(zip(steps, conf)):
            if s >= 0:
                grid[s, p] = 0.35 + 0.65 * max(0.0, min(1.0, float(c)))
        cmap = LinearSegmentedColormap.from_list("ck", ["#ffffff", plots.colour(ckpts.index(ckpt))])
        ax.imshow(grid, aspect="auto", origin="lower", cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{ckpt} · {rec['id']} · {'correct' if rec['correct'] else 'wrong'}", fontsize=7)
        ax.set_xlabel("position", fontsize=7)
        ax.set_ylabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
    return fig


def section_dynamics(runs) -> dict[str, Any] | None:
    """None when no run holds trajectories."""
    summary = []
    for run in runs:
        rows = _summary(run)
        if rows:
            summary += [{**r, "run": run.label} for r in rows]
    if not summary:
        return None
    samples = heatmap_samples(runs)
    ckpts = sorted({str(r["ckpt"]) for r in summary} | {c for c, _ in samples})
    fig = heatmap_figure(samples, ckpts)
    order = _order_rows(summary)
    origins = _pivot(summary, "origins", prefix="all:")
    predictors = [{"run": r["run"], "checkpoint": r["ckpt"], "condition": r["condition"],
                   "feature": r["metric"], "n": r["n"], "value [95% CI]": _ci(r), "note": r["note"]}
                  for r in summary if r["section"] == "predictors"]
    drift = _pivot(summary, "drift")
    acc = {(r["run"], r["ckpt"], r["condition"]): _ci(r) for r in summary if r["metric"] == "accuracy"}
    for d in drift:
        d["accuracy"] = acc.get((d["run"], d["checkpoint"], d["condition"]), "-")
    return {"rule": SELECTION_RULE, "plot": plots.png_data_uri(fig) if fig is not None else None,
            "order": table_dict(order), "origins": table_dict(origins) if origins else None,
            "predictors": table_dict(predictors) if predictors else None,
            "drift": table_dict(drift) if drift else None,
            "frames": {"dynamics_summary": pd.DataFrame(summary)}}


def _order_rows(summary) -> list[dict[str, Any]]:
    """Commit order and EOS: one row per (run, checkpoint, condition)."""
    rows = [{**r, "section": "order"} for r in summary
            if r["section"] in ("outcome", "order", "eos") and r["metric"] in ORDER_METRICS]
    return _pivot(rows, "order")
