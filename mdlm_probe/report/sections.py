"""The report's summary sections, one function each: what was run, run cards, accuracy, paired comparisons,
shift sensitivity, invariance and frontier studies. Each returns the values its part of the template
shows (and the frames written as CSV), or None when the runs hold no data for it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Sequence

import pandas as pd

from mdlm_probe.core.cards import card_columns, differing_fields, flatten
from mdlm_probe.core.checkpoints import read_sidecar, resolve
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.rundir import Run
from mdlm_probe.core.stats import paired_binary, wilson
from mdlm_probe.runs.compare import compare_rows
from mdlm_probe.runs.shift import summarize
from mdlm_probe.tasks.interventions import when_label
from . import plots
from .inputs import STUDY_FILES, Study
from .render import diff_segments

MAX_FLIP_DIFFS = 6  # per invariance variant


# ----------------------------------------------------------------------------------------- record helpers
def arm_of(rec: dict[str, Any]) -> str:
    """What a record's accuracy belongs to: the checkpoint, plus the collapse map when one was forced."""
    ckpt = str(rec.get("ckpt") or "?")
    forced = (rec.get("sampler") or {}).get("collapse")
    return f"{ckpt} [{forced}]" if forced else ckpt


def base_id(rec: dict[str, Any]) -> str:
    """The benchmark id without the shift setting suffix."""
    return str(rec["id"]).split("@", 1)[0]


def shift_setting(rec: dict[str, Any]) -> tuple[str, float, str] | None:
    """(mode, fraction, when) of a shifted record, `when` like "0.5" or "step 10"; None for a clean one."""
    iv = rec.get("intervention")
    if not isinstance(iv, dict):
        return None
    frac = iv.get("fraction")
    if iv.get("fixed_positions") or (frac is None and iv.get("points")):
        frac = iv.get("k", len(iv.get("points") or ())) / max(1, len(iv.get("canvas_after") or ()))
    if not frac:
        return None
    mode = str(iv.get("mode", "?")) + ("-left" if iv.get("direction") == "left" else "")
    when = when_label(float(iv["at"]) if iv.get("at") is not None else float("nan"), iv.get("at_step"))
    return (mode, float(frac), when)


def is_correct(rec: dict[str, Any]) -> bool:
    return bool(rec.get("correct"))


# ----------------------------------------------------------------------------------------- section: what was run
def section_runs(runs: list[Run]) -> dict[str, Any]:
    rows, samplers, ckpts = [], [], {}
    for r in runs:
        cfg = r.config
        recs = r.records
        names = sorted({str(x.get("ckpt")) for x in recs if x.get("ckpt")} | set(_config_ckpts(cfg)))
        benches = sorted({str(x.get("benchmark")) for x in recs if x.get("benchmark")}
                         | ({str(cfg["benchmark"])} if isinstance(cfg.get("benchmark"), str) else set()))
        versions = cfg.get("versions") or {}
        rows.append({
            "run": r.label, "command": cfg.get("command", ""), "checkpoints": ", ".join(names),
            "benchmarks": ", ".join(benches), "eval records": len(r.samples), "shift records": len(r.shift),
            "error records": len(r.errors), "skipped lines": r.skipped, "created": cfg.get("created", ""),
            "versions": ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
        })
        for name in names:
            ckpts.setdefault(name, None)
        per_ckpt = [c for c in cfg.get("checkpoints") or [] if isinstance(c, dict) and isinstance(c.get("sampler"), dict)]
        if per_ckpt:  # a shift run: each checkpoint decodes with its own sidecar's settings
            for c in per_ckpt:
                samplers.append({"run": f"{r.label} · {c.get('name')}", **{k: _cell(v) for k, v in c["sampler"].items()}})
        else:
            sampler = cfg.get("sampler") or next((x.get("sampler") for x in recs if x.get("sampler")), None)
            if isinstance(sampler, dict):
                samplers.append({"run": r.label, **{k: _cell(v) for k, v in sampler.items()}})
        settings = {k: cfg[k] for k in ("data_source", "limit", "num_fewshot", "grid", "seed") if cfg.get(k) is not None}
        if settings:
            rows[-1]["settings"] = json.dumps(settings, sort_keys=True)
    paths = _ckpt_paths(runs)
    side_rows = []
    for name in sorted(ckpts):
        side = _sidecar_from_configs(runs, name)
        for where in ([name] if side is None else []) + paths.get(name, []):
            try:
                side = side or read_sidecar(resolve(where))
            except BadInput:
                pass
        if not side:
            side_rows.append({"checkpoint": name, "objective": "(no sidecar found)"})
            continue
        held = side.get("heldout") or {}
        side_rows.append({
            "checkpoint": name, "objective": side.get("objective"), "collapse": side.get("collapse"),
            "ctc_weight": side.get("ctc_weight"), "slack_gaps": side.get("slack_gaps"), "init": side.get("init"), "data": side.get("data"),
            "steps": side.get("steps"), "batch_size": side.get("batch_size"), "lr": side.get("lr"),
            "train_seconds": side.get("train_seconds"), "device": side.get("device"),
            "held-out accuracy": "" if not held else f"{held.get('accuracy')} (n={held.get('n')}, {held.get('benchmark')})",
            "code_commit": side.get("code_commit"),
        })
    return {"runs": table_dict(rows), "checkpoints": table_dict(side_rows), "samplers": table_dict(samplers),
            "frames": {"runs": pd.DataFrame(rows), "checkpoints": pd.DataFrame(side_rows),
                       "samplers": pd.DataFrame(samplers)}}


def _ckpt_paths(runs: list[Run]) -> dict[str, list[str]]:
    """Checkpoint name -> folders the run configs recorded for it (eval: `checkpoint`; shift: `checkpoints[].path`)."""
    out: dict[str, list[str]] = {}
    for r in runs:
        cfg = r.config
        if isinstance(cfg.get("ckpt"), str) and isinstance(cfg.get("checkpoint"), str):
            out.setdefault(cfg["ckpt"], []).append(cfg["checkpoint"])
        for c in cfg.get("checkpoints") or []:
            if isinstance(c, dict) and c.get("name") and isinstance(c.get("path"), str):
                out.setdefault(str(c["name"]), []).append(c["path"])
    return out


def _config_ckpts(cfg: dict[str, Any]) -> list[str]:
    c = cfg.get("ckpt", cfg.get("ckpts", cfg.get("checkpoints")))
    if isinstance(c, str):
        return [c]
    if isinstance(c, list):
        return [x if isinstance(x, str) else str(x.get("name", x)) for x in c]
    if isinstance(c, dict):
        return [str(k) for k in c]
    return []


def _sidecar_from_configs(runs: list[Run], name: str) -> dict[str, Any] | None:
    """A sidecar copied into a run config (keyed by checkpoint name), if any run stored one."""
    for r in runs:
        for key in ("sidecars", "sidecar"):
            s = r.config.get(key)
            if isinstance(s, dict) and isinstance(s.get(name), dict):
                return s[name]
            if key == "sidecar" and isinstance(s, dict) and s.get("name") == name:
                return s
    return None


def _cell(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, (dict, list)) else ("" if v is None else v)


def table_dict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows -> {columns, rows} for the template (union of keys, first-seen order)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    return {"columns": cols, "rows": [[_cell(r.get(c)) for c in cols] for r in rows]}


def _df_table(df: pd.DataFrame) -> dict[str, Any]:
    return {"columns": list(df.columns), "rows": [[_fmt(v) for v in row] for row in df.itertuples(index=False)]}


def percent(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * float(x):.1f}%"


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) >= 1e-3 or v == 0 else f"{v:.2g}"
    return _cell(v)


# ----------------------------------------------------------------------------------------- section: run cards
def section_cards(runs: list[Run]) -> dict[str, Any] | None:
    """One card per run (per checkpoint of a shift run; cards.card_columns) side by side; a field whose
    value differs between them is marked. Runs without a card (compare folders) are left out."""
    columns = [col for r in runs for col in card_columns(r.label, r.config)]
    if not columns:
        return None
    labels, cards = [label for label, _ in columns], [card for _, card in columns]
    flats = [flatten(c) for c in cards]
    differ = differing_fields(cards) if len(cards) > 1 else set()
    fields = list(dict.fromkeys(k for f in flats for k in f))
    rows = [{"field": k, "differs": k in differ,
             "cells": ["-" if k not in f else ("null" if f[k] is None else
                                                json.dumps(f[k]) if isinstance(f[k], (dict, list, bool)) else str(f[k]))
                        for f in flats]} for k in fields]
    frame = pd.DataFrame([{"field": r["field"], "differs": r["differs"],
                           **dict(zip(labels, r["cells"]))} for r in rows])
    return {"labels": labels, "rows": rows, "differing": sorted(differ), "frames": {"run_cards": frame}}


# ----------------------------------------------------------------------------------------- section: accuracy
def accuracy_frame(runs: list[Run]) -> pd.DataFrame:
    rows = []
    evaluated = {(arm_of(x), x.get("benchmark")) for r in runs for x in r.samples}
    for r in runs:
        # A shift run's clean decodes (ids `<id>@clean`) stand in for eval records of checkpoints that
        # have none on that benchmark.
        clean = [x for x in r.shift if not x.get("intervention") and (arm_of(x), x.get("benchmark")) not in evaluated]
        for rec in r.samples + clean:
            rows.append({"run": r.label, "arm": arm_of(rec), "benchmark": rec.get("benchmark") or "?",
                         "id": base_id(rec), "correct": is_correct(rec), "scored": rec.get("correct") is not None})
    return pd.DataFrame(rows, columns=["run", "arm", "benchmark", "id", "correct", "scored"])


def section_accuracy(runs: list[Run], unpaired_runs: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """Accuracy per checkpoint and benchmark, and paired comparisons between arms. Arms measured only in
    `unpaired_runs` (invariance/frontier sub-runs, compared in their own sections) are not paired."""
    df = accuracy_frame(runs)
    df = df[df["scored"]]
    if df.empty:
        return None
    # An arm measured in several runs on one benchmark keeps the runs apart (settings may differ).
    multi = df.groupby(["arm", "benchmark"])["run"].nunique()
    df = df.assign(arm=[a if multi[(a, b)] == 1 else f"{a} ({r})" for a, b, r in zip(df.arm, df.benchmark, df.run)])
    rows = []
    for (arm, bench), g in sorted(df.groupby(["arm", "benchmark"]), key=lambda kv: kv[0]):
        k, n = int(g["correct"].sum()), len(g)
        lo, hi = wilson(k, n)
        rows.append({"checkpoint": arm, "benchmark": bench, "n": n, "correct": k, "accuracy": k / n,
                     "ci_low": round(lo, 6), "ci_high": round(hi, 6)})
    acc = pd.DataFrame(rows)
    pairs = []
    for bench, g in sorted(df.groupby("benchmark"), key=lambda kv: kv[0]):
        by_arm = {a: dict(zip(s["id"], s["correct"])) for a, s in g.groupby("arm")
                  if not set(s["run"]) <= unpaired_runs}
        for a, b in combinations(sorted(by_arm), 2):
            ids = sorted(set(by_arm[a]) & set(by_arm[b]))
            if not ids:
                continue
            xa = [float(by_arm[a][i]) for i in ids]
            xb = [float(by_arm[b][i]) for i in ids]
            pr = paired_binary(xa, xb)
            pairs.append({"benchmark": bench, "a": a, "b": b, "n shared": pr.n, "acc a": pr.mean_a,
                          "acc b": pr.mean_b, "b - a": pr.diff, "ci_low": pr.ci[0], "ci_high": pr.ci[1],
                          "only a right": len(pr.only_a), "only b right": len(pr.only_b), "mcnemar p": pr.p})
    paired = pd.DataFrame(pairs)
    return {"table": _df_table(acc), "paired": _df_table(paired) if pairs else None,
            "plot": plots.png_data_uri(plots.accuracy_figure(acc)), "frames": {"accuracy": acc, "paired": paired}}


def section_compare(runs: list[Run]) -> dict[str, Any] | None:
    """The tables of `mdlm-probe compare` runs (compare.json): accuracy and pattern-rate differences."""
    rows, notes = [], []
    for r in runs:
        if not r.compare:
            continue
        for row in compare_rows(r.compare):
            rows.append({"compare": r.label, **row})
        notes += [f"{r.label}: {n}" for n in r.compare.get("notes") or []]
    if not rows:
        return None
    df = pd.DataFrame(rows)
    return {"table": _df_table(df), "notes": notes, "frames": {"compare": df}}


# ----------------------------------------------------------------------------------------- section: shift sensitivity
@dataclass
class ShiftPair:
    run: str
    arm: str
    setting: tuple[str, float, str]
    shifted: dict[str, Any]
    clean: dict[str, Any] | None


def shift_pairs(runs: list[Run]) -> list[ShiftPair]:
    """Every shifted record with its clean partner (same checkpoint, `intervention.clean_id`)."""
    local: dict[tuple[str, str, str], dict] = {}
    anywhere: dict[tuple[str, str], dict] = {}
    for r in runs:
        for rec in r.samples + [x for x in r.shift if shift_setting(x) is None]:
            local.setdefault((r.label, arm_of(rec), str(rec["id"])), rec)
            anywhere.setdefault((arm_of(rec), str(rec["id"])), rec)
    out = []
    for r in runs:
        for rec in r.shift:
            setting = shift_setting(rec)
            if setting is None:
                continue
            arm = arm_of(rec)
            cid = str((rec.get("intervention") or {}).get("clean_id") or base_id(rec))
            clean = local.get((r.label, arm, cid)) or anywhere.get((arm, cid))
            out.append(ShiftPair(run=r.label, arm=arm, setting=setting, shifted=rec, clean=clean))
    return out


def section_shift(runs: list[Run]) -> dict[str, Any] | None:
    """The shift library's summary (paired drop with CI, flips, edit distance, absorbed) over every shift run."""
    rows = []
    many = sum(1 for r in runs if r.shift) > 1
    for r in runs:
        if not any(shift_setting(x) for x in r.shift):
            continue
        for row in summarize(r.shift):
            k = round(row["acc_shifted"] * row["n"])
            lo, hi = wilson(k, row["n"])
            row = {"checkpoint": row.pop("ckpt") + (f" ({r.label})" if many else ""), **row,
                   "acc_lo": round(lo, 6), "acc_hi": round(hi, 6)}
            rows.append(row)
    if not rows:
        return None
    table = pd.DataFrame(rows)
    numeric = table[table["fraction"].map(lambda f: not isinstance(f, str))]
    n_unpaired = sum(1 for p in shift_pairs(runs) if p.clean is None)
    return {"table": _df_table(table), "lines": _shift_figure(numeric, plots.shift_accuracy_figure),
            "heatmap": _shift_figure(numeric, plots.drop_heatmap_figure), "unpaired": n_unpaired,
            "frames": {"shift": table}}


def _shift_figure(table: pd.DataFrame, figure) -> str | None:
    """One of the shift figures (`plots.shift_accuracy_figure`, `plots.drop_heatmap_figure`) drawn from the
    report's shift table, as a data URI; None when the table has no fraction rows."""
    if table.empty:
        return None
    plots.pyplot(report=True)  # the report's fonts
    fig = figure(table.rename(columns={"checkpoint": "ckpt"}).to_dict("records"))
    return plots.png_data_uri(fig) if fig is not None else None


# ----------------------------------------------------------------------------------------- section: invariance
def _ci_text(ci: Sequence[float] | None) -> str:
    return "" if not ci else f"[{_fmt(float(ci[0]))}, {_fmt(float(ci[1]))}]"


def section_invariance(studies: list[Study]) -> dict[str, Any] | None:
    """Per invariance folder: each variant against the baseline (identical outputs, paired accuracy
    difference with its bootstrap CI, McNemar p, flips) and the outputs that changed, verdict flips first,
    as diffs against the baseline's."""
    items, frames = [], []
    for st in (s for s in studies if s.kind == "invariance"):
        res, rows, changed = st.result, [], []
        for v in res.get("variants") or []:
            n = int(v.get("n") or 0)
            same = int(v.get("identical", n))
            is_base = "diff" not in v  # the baseline: nothing to compare it with
            rows.append({"variant": v.get("variant"), "settings": json.dumps(v.get("settings"), sort_keys=True),
                         "n": n, "accuracy": v.get("accuracy"), "accuracy 95% CI": _ci_text(v.get("ci")),
                         "identical outputs": "" if is_base else f"{same}/{n} ({percent(v.get('identical_share'))})",
                         "diff vs base": None if is_base else v["diff"], "diff 95% CI": _ci_text(v.get("diff_ci")),
                         "McNemar p": v.get("mcnemar_p"),
                         "base right, variant wrong": ", ".join(map(str, v.get("base_right_variant_wrong") or [])),
                         "variant right, base wrong": ", ".join(map(str, v.get("variant_right_base_wrong") or []))})
            flips = sorted(v.get("changed") or [], key=lambda c: (c.get("correct_base") == c.get("correct"), str(c.get("id"))))
            for c in flips[:MAX_FLIP_DIFFS]:
                left, right = diff_segments(c.get("text_base") or "", c.get("text") or "")
                verdict = lambda ok: "right" if ok else "wrong"  # noqa: E731
                changed.append({"title": f"{v.get('variant')} · {c.get('id')}" + (
                    " · verdict flips" if c.get("correct_base") != c.get("correct") else " · same verdict"),
                    "left_label": f"base ({verdict(c.get('correct_base'))})",
                    "right_label": f"{v.get('variant')} ({verdict(c.get('correct'))})", "left": left, "right": right})
            if len(flips) > MAX_FLIP_DIFFS:
                changed.append({"title": f"{v.get('variant')}: {len(flips) - MAX_FLIP_DIFFS} more changed outputs "
                                         f"in {st.dir / STUDY_FILES['invariance']}", "left": [], "right": [],
                                "left_label": "", "right_label": ""})
        df = pd.DataFrame(rows)
        frames.append(df.assign(study=st.dir.name))
        items.append({"title": f"{st.dir.name}: {res.get('benchmark')} · {res.get('ckpt')} · limit {res.get('limit')}",
                      "base": json.dumps(res.get("base"), sort_keys=True), "table": _df_table(df), "changed": changed})
    if not items:
        return None
    return {"studies": items, "frames": {"invariance": pd.concat(frames, ignore_index=True)}}


# ----------------------------------------------------------------------------------------- section: frontier
def section_frontier(studies: list[Study]) -> dict[str, Any] | None:
    """Per frontier folder: accuracy (Wilson CI) against speed for each mode, Pareto-optimal modes starred,
    and the plot of both speed measures."""
    items, frames = [], []
    for st in (s for s in studies if s.kind == "frontier"):
        res = st.result
        modes = res.get("modes") or []
        star = lambda r, k: "*" if r.get(k) else ""  # noqa: E731
        rows = [{"mode": r.get("mode"), "n": r.get("n"), "accuracy": r.get("accuracy"),
                 "accuracy 95% CI": _ci_text(r.get("ci")), "NFE per sample": r.get("nfe_mean"),
                 "tokens per forward": f"{_fmt(r.get('tokens_per_forward'))}{star(r, 'pareto_tokens_per_forward')}",
                 "tokens/s": f"{_fmt(r.get('tokens_per_second'))}{star(r, 'pareto_tokens_per_second')}",
                 "s per sample": r.get("seconds_per_sample")} for r in modes]
        plot = None
        if modes:
            plots.pyplot(report=True)  # the report's fonts
            plot = plots.png_data_uri(plots.frontier_figure(modes))
        frames.append(pd.DataFrame([{k: v for k, v in r.items() if k not in ("settings", "ci")} for r in modes])
                      .assign(study=st.dir.name))
        items.append({"title": f"{st.dir.name}: {res.get('benchmark')} · {res.get('ckpt')} · limit {res.get('limit')}",
                      "table": table_dict(rows), "plot": plot})
    if not items:
        return None
    return {"studies": items, "frames": {"frontier": pd.concat(frames, ignore_index=True)}}
