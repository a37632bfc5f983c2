"""Self-contained HTML reports from run directories (`mdlm-probe report`).

`build_report(run_dirs, out)` reads eval runs (samples.jsonl), shift runs (shift.jsonl) and failure
patterns (errors.jsonl, or mined on the fly with `mdlm_probe.miners`) and writes `index.html` plus the
CSV tables it shows. An invariance or frontier folder (invariance.json / frontier.json from `mdlm-probe
invariance` / `frontier`) adds its own section, and its sub-runs (runs/<variant>/) are read as runs, so
their cards line up with the fields that differ marked. The page opens from disk with no server and no network: CSS is inline, plots are
base64 PNGs, nothing links out. Every section appears only when the runs hold its data, otherwise a line
says what is missing.

This module gathers each section's rows; runs are read by `rundir`, statistics come from `stats`, figures
from `plots`, token glyphs and diffs from `render`, and the page is `templates/report.html.j2`.

Determinism: rows, examples and plots are ordered by ids and names only, plots carry no metadata, so a
rebuild from the same runs differs only in the "generated" timestamp. All text reaches the page through
Jinja2 autoescaping (model output is untrusted); this module never builds HTML strings.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from itertools import combinations
from pathlib import Path
from typing import Any, Sequence

import jinja2
import pandas as pd

from . import miners, plots
from .cards import card_columns, differing_fields, flatten
from .checkpoints import read_sidecar, resolve
from .compare import compare_rows
from .errors import BadInput
from .records import record_key
from .render import LEGEND, TokenText, diff_segments
from .rundir import Run, load_runs
from .shift import summarize
from .stats import paired_binary, wilson

MAX_TRAJECTORIES = 4
MAX_EXAMPLES = 2  # per checkpoint and pattern
MAX_PATTERN_EXAMPLES = 6  # per pattern, over all checkpoints
MAX_DIFFS = 6
MAX_FLIP_DIFFS = 6  # per invariance variant
STUDY_FILES = {"invariance": "invariance.json", "frontier": "frontier.json"}


# ----------------------------------------------------------------------------------------- loading runs
def read_runs(run_dirs: Sequence[Path | str]) -> list[Run]:
    """`rundir.load_runs`, each run's records ordered by id (examples and rows are picked in id order)."""
    runs = load_runs(run_dirs)
    for r in runs:
        r.samples = sorted(r.samples, key=lambda x: str(x["id"]))
        r.shift = sorted(r.shift, key=lambda x: str(x["id"]))
    return runs


@dataclass
class Study:
    """An invariance or frontier folder: its result file and the label of each sub-run (runs/<label>/)."""

    kind: str  # "invariance" or "frontier"
    dir: Path
    result: dict[str, Any]

    @property
    def labels(self) -> list[str]:
        rows = self.result.get("variants" if self.kind == "invariance" else "modes") or []
        return [str(r.get("variant" if self.kind == "invariance" else "mode")) for r in rows]


def split_studies(run_dirs: Sequence[Path | str]) -> tuple[list[Path | str], list[Study]]:
    """(plain run directories, invariance/frontier folders), in the order given."""
    plain, studies = [], []
    for d in run_dirs:
        kind = next((k for k, f in STUDY_FILES.items() if (Path(d) / f).is_file()), None)
        if kind is None:
            plain.append(d)
            continue
        path = Path(d) / STUDY_FILES[kind]
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise BadInput(f"{path}: not readable JSON ({e})") from None
        if not isinstance(result, dict):
            raise BadInput(f"{path}: not a {kind} result")
        studies.append(Study(kind, Path(d), result))
    return plain, studies


def read_runs_and_studies(run_dirs: Sequence[Path | str]) -> tuple[list[Run], list[Study]]:
    """`read_runs` over the plain run directories and every study's sub-runs, those labelled
    `<study folder>/<variant>`."""
    plain, studies = split_studies(run_dirs)
    subs = {(s.dir / "runs" / label).resolve(): f"{s.dir.name}/{label}" for s in studies for label in s.labels
            if (s.dir / "runs" / label).is_dir()}
    runs = read_runs([*plain, *subs])
    taken = {r.label for r in runs if r.dir.resolve() not in subs}
    for r in runs:
        if r.dir.resolve() in subs:
            label = subs[r.dir.resolve()]
            r.label = label if label not in taken else f"{label}#{len(taken)}"
            taken.add(r.label)
    return runs, studies


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
    when = f"step {iv['at_step']}" if iv.get("at_step") is not None else f"{float(iv.get('at', float('nan'))):g}"
    return (mode, float(frac), when)


def _correct(rec: dict[str, Any]) -> bool:
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
    return {"runs": _table(rows), "checkpoints": _table(side_rows), "samplers": _table(samplers),
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


def _table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows -> {columns, rows} for the template (union of keys, first-seen order)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    return {"columns": cols, "rows": [[_cell(r.get(c)) for c in cols] for r in rows]}


def _df_table(df: pd.DataFrame) -> dict[str, Any]:
    return {"columns": list(df.columns), "rows": [[_fmt(v) for v in row] for row in df.itertuples(index=False)]}


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
                         "id": base_id(rec), "correct": _correct(rec), "scored": rec.get("correct") is not None})
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
                         "identical outputs": "" if is_base else f"{same}/{n} ({_pct(v.get('identical_share'))})",
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
                      "table": _table(rows), "plot": plot})
    if not items:
        return None
    return {"studies": items, "frames": {"frontier": pd.concat(frames, ignore_index=True)}}


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
        flip = _correct(c) and not _correct(s)
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
    """Pattern rates per checkpoint (mdlm_probe.miners) and examples; (None, why) when there is nothing to show."""
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
            row[r.pattern] = f"{r.records} ({_pct(r.rate)} · {_pct(r.rate_wrong)} of wrong)"
        shown.append(row)
    source = ("Counted from errors.jsonl (mdlm-probe errors) where a run has one, else mined now with every "
              "detector. Each cell: records with the pattern (share of all records · share of the wrong answers); "
              "reference-based patterns count only records with a reference.")
    return {"table": _table(shown), "plot": _patterns_plot(table, groups), "examples": examples, "source": source,
            "frames": {"patterns": table}}, ""


def _pct(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * float(x):.1f}%"


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


# ----------------------------------------------------------------------------------------- the page
def build_report(run_dirs: Sequence[Path | str], out: Path | str, title: str | None = None,
                 generated: str | None = None) -> Path:
    """Write `out/index.html` and the CSV tables it shows; returns the HTML path."""
    runs, studies = read_runs_and_studies(run_dirs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    glyphs = TokenText()
    runs_s = section_runs(runs)
    cards = section_cards(runs)
    study_runs = frozenset(r.label for r in runs if r.dir.resolve().parent.parent in {st.dir.resolve() for st in studies})
    accuracy = section_accuracy(runs, study_runs)
    compare = section_compare(runs)
    invariance = section_invariance(studies)
    frontier = section_frontier(studies)
    shift = section_shift(runs)
    patterns, patterns_absent = section_patterns(runs)
    trajectories = section_trajectories(runs, glyphs)
    diffs = section_diffs(runs)

    frames = dict(runs_s.pop("frames"))
    for sec in (cards, accuracy, compare, invariance, frontier, shift, patterns):
        if sec:
            frames.update(sec.pop("frames"))
    csv_files = []
    for name, df in frames.items():
        if df is None or df.empty:
            continue
        df.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
        csv_files.append(f"{name}.csv")
    try:
        pkg_version = version("mdlm-probe")
    except PackageNotFoundError:
        pkg_version = "unknown"
    env = jinja2.Environment(loader=jinja2.PackageLoader("mdlm_probe", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    toc = [("runs", "What was run"), ("accuracy", "Accuracy"),
           *([("invariance", "Invariance")] if invariance else []), *([("frontier", "Frontier")] if frontier else []),
           ("shift", "Shift sensitivity"), ("patterns", "Failure patterns"), ("trajectories", "Trajectories"),
           ("diffs", "Diffs")]
    html = env.get_template("report.html.j2").render(
        title=title or f"mdlm-probe report: {', '.join(r.label for r in runs)}",
        generated=generated or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        version=pkg_version, n_runs=len(runs), toc=toc, runs=runs_s, cards=cards, accuracy=accuracy, compare=compare,
        invariance=invariance, frontier=frontier, shift=shift,
        patterns=patterns, patterns_absent=patterns_absent, trajectories=trajectories, diffs=diffs,
        csv_files=csv_files, run_paths=[str(r.dir) for r in runs] + [str(st.dir) for st in studies],
        glyph_legend=LEGEND)
    path = out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
