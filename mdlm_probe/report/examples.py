"""The report's example sections: decode trajectories, text diffs and failure patterns, each showing a few
records picked in id order and spread over the checkpoints (round robin)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from mdlm_probe.core.records import record_key
from mdlm_probe.core.rundir import Run
from mdlm_probe.runs import miners
from . import plots
from .render import TokenText, diff_segments
from .sections import ShiftPair, arm_of, base_id, is_correct, percent, shift_pairs, table_dict

MAX_TRAJECTORIES = 4
MAX_EXAMPLES = 2  # per checkpoint and pattern
MAX_PATTERN_EXAMPLES = 6  # per pattern, over all checkpoints
MAX_DIFFS = 6


# ----------------------------------------------------------------------------------------- section: trajectories
def _step_colour(step: int, max_step: int) -> tuple[str, str]:
    """Background and text colour for a commit step (viridis; -1 = not committed by the model)."""
    if step < 0:
        return "#d9d9d9", "#333"
    from matplotlib import colormaps

    r, g, b, _ = colormaps["viridis"](step / max(1, max_step))
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}", ("#000" if lum > 0.5 else "#fff")


def _trajectory_row(rec: dict[str, Any], glyphs: TokenText, max_step: int, label: str,
                    points: Sequence[int] = ()) -> dict[str, Any]:
    steps = (rec.get("trajectory") or {}).get("commit_step") or []
    ids = rec.get("output_ids") or []
    cells = []
    for q, ((glyph, kind), step) in enumerate(zip(glyphs(str(rec.get("ckpt")), ids), steps)):
        bg, fg = _step_colour(int(step), max_step)
        cells.append({"text": glyph, "style": f"background:{bg};color:{fg}", "pos": q, "step": int(step),
                      "cls": " ".join(c for c in (kind, "pt" if q in points else "",
                                                  "moved" if step < 0 else "") if c)})
    return {"label": label, "cells": cells, "verdict": rec.get("verdict"), "text": rec.get("text") or ""}


def _round_robin(items: list[Any], key, limit: int) -> list[Any]:
    """Up to `limit` items, alternating between groups (e.g. checkpoints) in sorted order."""
    groups: dict[Any, list] = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    out, names = [], sorted(groups)
    while len(out) < limit and any(groups.values()):
        for n in names:
            if groups[n] and len(out) < limit:
                out.append(groups[n].pop(0))
    return out


def _interesting_pairs(pairs: list[ShiftPair]) -> list[ShiftPair]:
    """Paired shifts, the most telling first: right -> wrong flips, then changed text, then the rest;
    one setting per sample before a second one, so the examples cover different prompts."""
    def rank(p: ShiftPair):
        c, s = p.clean, p.shifted
        flip = is_correct(c) and not is_correct(s)
        changed = c.get("text") != s.get("text")
        return (not flip, not changed, p.setting[1], p.arm, str(s["id"]))
    ranked = sorted((p for p in pairs if p.clean is not None), key=rank)
    groups: dict[tuple[str, str], list[ShiftPair]] = {}
    for p in ranked:
        groups.setdefault((p.arm, base_id(p.shifted)), []).append(p)
    # One pair per sample first; among a sample's equally telling settings, rotate so modes alternate.
    first, rest = [], []
    for i, g in enumerate(groups.values()):
        top = [p for p in g if rank(p)[:2] == rank(g[0])[:2]]
        pick = top[i % len(top)]
        first.append(pick)
        rest += [p for p in g if p is not pick]
    return first + rest


def section_trajectories(runs: list[Run], glyphs: TokenText) -> dict[str, Any] | None:
    pairs = _round_robin(_interesting_pairs(shift_pairs(runs)), key=lambda p: p.arm, limit=MAX_TRAJECTORIES)
    items = []
    for p in pairs:
        iv = p.shifted.get("intervention") or {}
        steps = [s for rec in (p.clean, p.shifted) for s in (rec.get("trajectory") or {}).get("commit_step") or []]
        max_step = max(steps, default=0)
        pts = [int(x) for x in iv.get("points") or []]
        mode, frac, when = p.setting
        items.append({
            "title": f"{p.arm} · {base_id(p.shifted)} · {mode} {frac:g} at {when}",
            "note": f"edit after step {iv.get('fired_step', '?')} at response positions {', '.join(map(str, pts))}",
            "rows": [_trajectory_row(p.clean, glyphs, max_step, "clean"),
                     _trajectory_row(p.shifted, glyphs, max_step, "shifted", pts)],
            "max_step": max_step, "fired_step": iv.get("fired_step"),
        })
    if not items:  # no shift runs: show a few plain decodes
        recs = [rec for r in runs for rec in r.samples if (rec.get("trajectory") or {}).get("commit_step")]
        for rec in _round_robin(recs, key=arm_of, limit=MAX_TRAJECTORIES):
            max_step = max((rec.get("trajectory") or {}).get("commit_step") or [0])
            items.append({"title": f"{arm_of(rec)} · {rec['id']}", "note": "no intervention",
                          "rows": [_trajectory_row(rec, glyphs, max_step, "output")], "max_step": max_step,
                          "fired_step": None})
    if not items:
        return None
    gradient = ",".join(_step_colour(i, 10)[0] for i in range(11))
    return {"samples": items, "gradient": f"background:linear-gradient(to right,{gradient})"}


# ----------------------------------------------------------------------------------------- section: diffs
def section_diffs(runs: list[Run]) -> dict[str, Any] | None:
    shift_items = []
    for p in _round_robin(_interesting_pairs(shift_pairs(runs)), key=lambda p: p.arm, limit=MAX_DIFFS):
        left, right = diff_segments(p.clean.get("text") or "", p.shifted.get("text") or "")
        mode, frac, when = p.setting
        shift_items.append({"title": f"{p.arm} · {base_id(p.shifted)} · {mode} {frac:g} at {when}",
                            "left_label": f"clean ({p.clean.get('verdict')})",
                            "right_label": f"shifted ({p.shifted.get('verdict')})", "left": left, "right": right})
    wrong = [rec for r in runs for rec in r.samples if rec.get("correct") is False and rec.get("reference")]
    ref_items = []
    for rec in _round_robin(wrong, key=arm_of, limit=MAX_DIFFS):
        left, right = diff_segments(rec.get("text") or "", rec.get("reference") or "")
        ref_items.append({"title": f"{arm_of(rec)} · {rec['id']} · {rec.get('verdict')}",
                          "left_label": f"output (extracted: {rec.get('extracted')})",
                          "right_label": f"reference (answer: {rec.get('reference_answer')})",
                          "left": left, "right": right, "prompt": rec.get("prompt") or ""})
    if not shift_items and not ref_items:
        return None
    return {"shift": shift_items, "reference": ref_items}


# ----------------------------------------------------------------------------------------- section: failure patterns
@dataclass
class PatternGroup:
    """Records counted together in the failure-pattern table: one checkpoint's eval records in one run, or
    a shift run's clean or shifted decodes of one checkpoint."""

    label: str  # the table's "checkpoint" cell
    run: Run
    arm: str  # checkpoint (plus a forced collapse map)
    kind: str  # "eval", "clean" or "shifted"
    records: list[dict[str, Any]]


def _pattern_groups(runs: list[Run]) -> list[PatternGroup]:
    """One group per run, checkpoint and kind, ordered by label then run."""
    groups: dict[tuple[str, str, str], PatternGroup] = {}
    for r in runs:
        evals = {id(x) for x in r.samples}
        for rec in r.records:
            kind = "eval" if id(rec) in evals else ("shifted" if rec.get("intervention") else "clean")
            arm = arm_of(rec)
            name = arm if kind == "eval" else f"{arm} · {kind}"
            g = groups.setdefault((r.label, arm, kind), PatternGroup(name, r, arm, kind, []))
            g.records.append(rec)
    ordered = sorted(groups.values(), key=lambda g: (g.label, g.run.label))
    names = [g.label for g in ordered]
    for g in ordered:
        if names.count(g.label) > 1:  # the same checkpoint and kind in several runs
            g.label = f"{g.label} ({g.run.label})"
    return ordered


def _findings(run: Run, records: list[dict[str, Any]], patterns: list[str]):
    """(record, Finding) pairs: from the run's errors.jsonl when `mdlm-probe errors` wrote one, else mined now.

    A finding belongs to the record with its (checkpoint, id): the checkpoints of a shift run share ids."""
    if run.errors:
        by_key = {(x.get("ckpt"), str(x["id"])): x for x in records}
        return [(by_key[(e.get("ckpt"), str(e.get("id")))],
                 miners.Finding(str(e.get("pattern")), int(e.get("start") or 0), int(e.get("end") or 0),
                                str(e.get("evidence") or ""), dict(e.get("details") or {})))
                for e in run.errors if (e.get("ckpt"), str(e.get("id"))) in by_key and e.get("pattern") in patterns]
    return miners.mine_records(records, patterns)


def _example(label: str, rec: dict[str, Any], f) -> dict[str, Any]:
    text = rec.get("text") or ""
    a, b = max(0, min(f.start, len(text))), max(0, min(f.end, len(text)))
    segs = [{"text": text[:a], "cls": ""}, {"text": text[a:b], "cls": "mark"}, {"text": text[b:], "cls": ""}]
    lost = None
    d = f.details or {}
    if f.pattern == "trailing-zero" and d.get("reference_number") and d.get("zeros_lost"):
        ref, k = str(d["reference_number"]), int(d["zeros_lost"])
        lost = [{"text": ref[:-k], "cls": ""}, {"text": ref[-k:], "cls": "lost"}]
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(d.items()))
    return {"title": f"{f.pattern} · {label} · {rec['id']} · {rec.get('verdict')}", "detail": detail,
            "text": [x for x in segs if x["text"]], "lost": lost, "reference": rec.get("reference") or ""}


def section_patterns(runs: list[Run]) -> tuple[dict[str, Any] | None, str]:
    """Pattern rates per checkpoint (mdlm_probe.runs.miners) and examples; (None, why) when there is nothing to show."""
    patterns = list(miners.DETECTORS)
    rows = []
    candidates: dict[str, list[tuple[str, dict, Any]]] = {p: [] for p in patterns}
    groups = _pattern_groups(runs)
    for g in groups:
        hits = _findings(g.run, g.records, patterns)
        for row in miners.pattern_summary(g.records, hits, patterns):
            rows.append({"checkpoint": g.label, **row})
        for p in patterns:
            mine = sorted((h for h in hits if h[1].pattern == p), key=lambda h: (str(h[0]["id"]), h[1].start))
            seen: set[tuple[Any, str]] = set()
            for rec, f in mine:
                if len(seen) < MAX_EXAMPLES and record_key(rec) not in seen:
                    seen.add(record_key(rec))
                    candidates[p].append((g.label, rec, f))
    # Per pattern a few examples, alternating between checkpoints.
    examples = [_example(label, rec, f) for p in patterns
                for label, rec, f in _round_robin(candidates[p], key=lambda c: c[0], limit=MAX_PATTERN_EXAMPLES)]
    if not rows:
        return None, "No records to mine for failure patterns."
    table = pd.DataFrame(rows)
    # Shown pivoted (one row per checkpoint); the CSV keeps every count.
    shown = []
    for label, g in table.groupby("checkpoint", sort=False):
        row = {"checkpoint": label, "records": int(g["n"].max()), "wrong": int(g["n_wrong"].max())}
        for r in g.itertuples(index=False):
            row[r.pattern] = f"{r.records} ({percent(r.rate)} · {percent(r.rate_wrong)} of wrong)"
        shown.append(row)
    source = ("Counted from errors.jsonl (mdlm-probe errors) where a run has one, else mined now with every "
              "detector. Each cell: records with the pattern (share of all records · share of the wrong answers); "
              "reference-based patterns count only records with a reference.")
    return {"table": table_dict(shown), "plot": _patterns_plot(table, groups), "examples": examples, "source": source,
            "frames": {"patterns": table}}, ""


def _patterns_plot(table: pd.DataFrame, groups: list[PatternGroup]) -> str | None:
    """The pattern-rate bars, one row of panels per condition (eval, shift clean, shift shifted; with the
    benchmark when the groups span several, with the run when a checkpoint has a condition twice)."""
    kinds = {"eval": "eval runs", "clean": "shift runs, clean decodes", "shifted": "shift runs, shifted decodes"}
    benches = [sorted({str(x.get("benchmark") or "?") for x in g.records}) for g in groups]
    several = len({b for bs in benches for b in bs}) > 1
    conds = [kinds[g.kind] + (f" · {', '.join(b)}" if several else "") for g, b in zip(groups, benches)]
    pairs = list(zip((g.arm for g in groups), conds))
    conds = [c if pairs.count((g.arm, c)) == 1 else f"{c} ({g.run.label})" for g, c in zip(groups, conds)]
    fig = plots.patterns_figure(table, [(g.label, g.arm, c) for g, c in zip(groups, conds)])
    return plots.png_data_uri(fig) if fig is not None else None
