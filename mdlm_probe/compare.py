"""Reading run directories, and comparing runs on the samples they share (paired statistics).

`compare_runs` answers "is run B worse than run A on the same samples, and is it the trailing zeros?":
accuracy with Wilson intervals, the paired difference with a bootstrap interval, an exact McNemar test,
the ids that flipped each way, and per-pattern rate differences (mdlm_probe.miners).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import miners, stats
from .errors import BadInput
from .records import dedupe, read_records

RECORD_FILES = ("samples.jsonl", "shift.jsonl")
# Sampler keys that may differ between compared runs: the collapse map is a scoring choice (decoding the
# same canvas under each map is exactly what one compares), the batch size only groups prompts.
SAMPLER_FREE = ("collapse", "batch_size")


@dataclass
class Run:
    dir: Path
    name: str
    config: dict[str, Any]
    records: list[dict[str, Any]]
    n_bad: int = 0
    files: list[str] = field(default_factory=list)


def load_run(run_dir: Path | str) -> Run:
    """A run directory's records (samples.jsonl and/or shift.jsonl). Malformed lines are skipped with a
    warning; a directory with no readable records is bad input."""
    d = Path(run_dir)
    if not d.is_dir():
        raise BadInput(f"no run directory {d}")
    files = [f for f in RECORD_FILES if (d / f).is_file()]
    if not files:
        raise BadInput(f"{d} holds no samples.jsonl or shift.jsonl")
    recs, bad = [], 0
    for f in files:
        r, b = read_records(d / f)
        recs += r
        bad += b
    usable = [r for r in recs if isinstance(r.get("text"), str)]
    bad += len(recs) - len(usable)
    recs = list(dedupe(usable))
    if bad:
        warnings.warn(f"{d}: skipped {bad} malformed line(s) (not JSON, no id, or no text)", stacklevel=2)
    if not recs:
        raise BadInput(f"{d}: no usable records in {', '.join(files)}" + (f" ({bad} malformed lines)" if bad else ""))
    cfg = {}
    if (d / "config.json").is_file():
        try:
            cfg = json.loads((d / "config.json").read_text())
        except json.JSONDecodeError:
            warnings.warn(f"{d}: corrupt config.json ignored", stacklevel=2)
    return Run(dir=d, name=d.name, config=cfg, records=recs, n_bad=bad, files=files)


def run_settings(run: Run) -> tuple[Any, dict[str, Any]]:
    """(benchmark, sampler settings) of a run: from config.json, else from its first record."""
    first = run.records[0]
    bench = run.config.get("benchmark") or first.get("benchmark")
    sampler = run.config.get("sampler") or first.get("sampler") or {}
    return bench, {k: v for k, v in sampler.items() if k not in SAMPLER_FREE}


def check_comparable(runs: list[Run], force: bool = False) -> list[str]:
    """Differences in benchmark or sampler settings: bad input unless `force` (then returned as notes)."""
    notes = []
    b0, s0 = run_settings(runs[0])
    for r in runs[1:]:
        b, s = run_settings(r)
        if b != b0:
            notes.append(f"benchmark differs: {runs[0].name}={b0!r}, {r.name}={b!r}")
        diff = sorted(k for k in set(s0) | set(s) if s0.get(k) != s.get(k))
        if diff:
            notes.append(f"sampler differs ({runs[0].name} vs {r.name}): "
                         + ", ".join(f"{k} {s0.get(k)!r} vs {s.get(k)!r}" for k in diff))
    if notes and not force:
        raise BadInput(notes[0] + " (use --force to compare anyway)")
    return notes


def _scored(rec: dict[str, Any]) -> bool:
    return isinstance(rec.get("correct"), bool)


def compare_pair(a: Run, b: Run, ids: list[str], patterns: list[str], seed: int = 0) -> dict[str, Any]:
    """Paired comparison of b against a on `ids` (all scored in both)."""
    ra = {r["id"]: r for r in a.records}
    rb = {r["id"]: r for r in b.records}
    ya = [int(ra[i]["correct"]) for i in ids]
    yb = [int(rb[i]["correct"]) for i in ids]
    diff, lo, hi = stats.paired_bootstrap(ya, yb, seed=seed)
    gained = [i for i, x, y in zip(ids, ya, yb) if not x and y]  # wrong in a, right in b
    lost = [i for i, x, y in zip(ids, ya, yb) if x and not y]
    out = {"a": a.name, "b": b.name, "n": len(ids), "diff": diff, "diff_ci": [lo, hi],
           "mcnemar_p": stats.mcnemar_exact(len(gained), len(lost)),
           "b_right_a_wrong": gained, "a_right_b_wrong": lost, "patterns": {}}
    for p in patterns:
        ha = [int(bool(miners.DETECTORS[p](ra[i]))) for i in ids]
        hb = [int(bool(miners.DETECTORS[p](rb[i]))) for i in ids]
        d, plo, phi = stats.paired_bootstrap(ha, hb, seed=seed)
        out["patterns"][p] = {"rate_a": sum(ha) / len(ids), "rate_b": sum(hb) / len(ids), "diff": d,
                              "diff_ci": [plo, phi],
                              "mcnemar_p": stats.mcnemar_exact(sum(x < y for x, y in zip(ha, hb)),
                                                               sum(x > y for x, y in zip(ha, hb)))}
    return out


def compare_runs(runs: list[Run], force: bool = False, patterns: list[str] | None = None,
                 seed: int = 0) -> dict[str, Any]:
    """Every run against the first, on the ids all runs share and score."""
    if len(runs) < 2:
        raise BadInput("compare needs at least two run directories")
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # same folder name under different parents: use the paths
        for r in runs:
            r.name = str(r.dir)
    notes = check_comparable(runs, force)
    shared = set.intersection(*({r["id"] for r in run.records} for run in runs))
    if not shared:
        base = set.intersection(*({r["id"].split("@")[0] for r in run.records} for run in runs))
        hint = " (shift records are `<id>@<setting>`: compare shift runs with shift runs)" if base else ""
        raise BadInput("the runs share no sample ids: " + ", ".join(r.name for r in runs) + hint)
    by_id = [{r["id"]: r for r in run.records} for run in runs]
    scored = sorted(i for i in shared if all(_scored(recs[i]) for recs in by_id))
    if not scored:
        raise BadInput(f"none of the {len(shared)} shared samples is scored in every run "
                       "(no reference, so `correct` is null)")
    if len(scored) < len(shared):
        notes.append(f"{len(shared) - len(scored)} shared ids left out: not scored in every run")
    patterns = list(miners.DETECTORS) if patterns is None else patterns
    acc = []
    for run, recs in zip(runs, by_id):
        k = sum(bool(recs[i]["correct"]) for i in scored)
        lo, hi = stats.wilson(k, len(scored))
        acc.append({"run": run.name, "dir": str(run.dir), "ckpt": recs[scored[0]].get("ckpt"),
                    "collapse": (recs[scored[0]].get("sampler") or {}).get("collapse"),
                    "n": len(scored), "correct": k, "accuracy": k / len(scored), "ci": [lo, hi]})
    pairs = [compare_pair(runs[0], r, scored, patterns, seed) for r in runs[1:]]
    return {"runs": acc, "n_shared": len(shared), "n_compared": len(scored), "notes": notes, "pairs": pairs}


def compare_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for compare.csv: one per (pair, metric)."""
    rows = []
    for p in result["pairs"]:
        acc = {a["run"]: a["accuracy"] for a in result["runs"]}
        rows.append({"a": p["a"], "b": p["b"], "metric": "accuracy", "n": p["n"], "value_a": acc[p["a"]],
                     "value_b": acc[p["b"]], "diff": p["diff"], "ci_lo": p["diff_ci"][0], "ci_hi": p["diff_ci"][1],
                     "mcnemar_p": p["mcnemar_p"], "b_right_a_wrong": len(p["b_right_a_wrong"]),
                     "a_right_b_wrong": len(p["a_right_b_wrong"])})
        for name, q in p["patterns"].items():
            rows.append({"a": p["a"], "b": p["b"], "metric": f"rate:{name}", "n": p["n"], "value_a": q["rate_a"],
                         "value_b": q["rate_b"], "diff": q["diff"], "ci_lo": q["diff_ci"][0],
                         "ci_hi": q["diff_ci"][1], "mcnemar_p": q["mcnemar_p"], "b_right_a_wrong": None,
                         "a_right_b_wrong": None})
    return rows
