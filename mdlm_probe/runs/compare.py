"""Comparing runs on the samples they share (paired statistics), and `write_compare`, which owns
compare.json / compare.csv.

`compare_runs` answers "is run B worse than run A on the same samples, and is it the trailing zeros?":
accuracy with Wilson intervals, the paired difference with a bootstrap interval, an exact McNemar test,
the ids that flipped each way, and per-pattern rate differences (mdlm_probe.runs.miners).
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from mdlm_probe.core import stats
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.rundir import Run, load_run, make_folder
from . import miners

# Sampler keys that may differ between compared runs: the collapse map is a scoring choice (decoding the
# same canvas under each map is exactly what one compares), the batch size only groups prompts.
SAMPLER_FREE = ("collapse", "batch_size")


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
            notes.append(f"benchmark differs: {runs[0].label}={b0!r}, {r.label}={b!r}")
        diff = sorted(k for k in set(s0) | set(s) if s0.get(k) != s.get(k))
        if diff:
            notes.append(f"sampler differs ({runs[0].label} vs {r.label}): "
                         + ", ".join(f"{k} {s0.get(k)!r} vs {s.get(k)!r}" for k in diff))
    if notes and not force:
        raise BadInput(notes[0] + " (use --force to compare anyway)")
    return notes


def collapse_of(rec: dict[str, Any]) -> str:
    """The collapse map a record was scored with: the one forced in its sampler settings, else the one its
    checkpoint chose (the record's `collapse`), else "own" (the checkpoint's default, not recorded)."""
    return (rec.get("sampler") or {}).get("collapse") or rec.get("collapse") or "own"


def _scored(rec: dict[str, Any]) -> bool:
    return isinstance(rec.get("correct"), bool)


def compare_pair(a: Run, b: Run, ids: list[str], patterns: list[str], seed: int = 0) -> dict[str, Any]:
    """Paired comparison of b against a on `ids` (all scored in both)."""
    ra = {r["id"]: r for r in a.records}
    rb = {r["id"]: r for r in b.records}
    acc = stats.paired_binary([ra[i]["correct"] for i in ids], [rb[i]["correct"] for i in ids], seed=seed)
    out = {"a": a.label, "b": b.label, "n": len(ids), "diff": acc.diff, "diff_ci": list(acc.ci), "mcnemar_p": acc.p,
           "b_right_a_wrong": [ids[k] for k in acc.only_b], "a_right_b_wrong": [ids[k] for k in acc.only_a],
           "patterns": {}}
    for p in patterns:
        ha = [int(bool(miners.DETECTORS[p](ra[i]))) for i in ids]
        hb = [int(bool(miners.DETECTORS[p](rb[i]))) for i in ids]
        q = stats.paired_binary(ha, hb, seed=seed)
        out["patterns"][p] = {"rate_a": q.mean_a, "rate_b": q.mean_b, "diff": q.diff, "diff_ci": list(q.ci),
                              "mcnemar_p": q.p}
    return out


def compare_runs(runs: list[Run], force: bool = False, patterns: list[str] | None = None,
                 seed: int = 0) -> dict[str, Any]:
    """Every run against the first, on the ids all runs share and score."""
    if len(runs) < 2:
        raise BadInput("compare needs at least two run directories")
    names = [r.label for r in runs]
    if len(set(names)) < len(names):  # same folder name under different parents: use the paths
        for r in runs:
            r.label = str(r.dir)
    notes = check_comparable(runs, force)
    shared = set.intersection(*({r["id"] for r in run.records} for run in runs))
    if not shared:
        base = set.intersection(*({r["id"].split("@")[0] for r in run.records} for run in runs))
        hint = " (shift records are `<id>@<setting>`: compare shift runs with shift runs)" if base else ""
        raise BadInput("the runs share no sample ids: " + ", ".join(r.label for r in runs) + hint)
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
        acc.append({"run": run.label, "dir": str(run.dir), "ckpt": recs[scored[0]].get("ckpt"),
                    "collapse": collapse_of(recs[scored[0]]),
                    "n": len(scored), "correct": k, "accuracy": k / len(scored), "ci": [lo, hi]})
    pairs = [compare_pair(runs[0], r, scored, patterns, seed) for r in runs[1:]]
    return {"runs": acc, "n_shared": len(shared), "n_compared": len(scored), "notes": notes, "pairs": pairs}


def compare_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for compare.csv: one per (pair, metric); `ci_low`/`ci_high` bound `diff` (docs/conventions.md)."""
    rows = []
    for p in result["pairs"]:
        acc = {a["run"]: a["accuracy"] for a in result["runs"]}
        rows.append({"a": p["a"], "b": p["b"], "metric": "accuracy", "n": p["n"], "value_a": acc[p["a"]],
                     "value_b": acc[p["b"]], "diff": p["diff"], "ci_low": p["diff_ci"][0], "ci_high": p["diff_ci"][1],
                     "mcnemar_p": p["mcnemar_p"], "b_right_a_wrong": len(p["b_right_a_wrong"]),
                     "a_right_b_wrong": len(p["a_right_b_wrong"])})
        for name, q in p["patterns"].items():
            rows.append({"a": p["a"], "b": p["b"], "metric": f"rate:{name}", "n": p["n"], "value_a": q["rate_a"],
                         "value_b": q["rate_b"], "diff": q["diff"], "ci_low": q["diff_ci"][0],
                         "ci_high": q["diff_ci"][1], "mcnemar_p": q["mcnemar_p"], "b_right_a_wrong": None,
                         "a_right_b_wrong": None})
    return rows


# ----------------------------------------------------------------------------------------- which runs are compared
def ckpts_of(run: Run) -> list[str]:
    """The checkpoints a run's records belong to, in order of appearance."""
    return list(dict.fromkeys(str(r.get("ckpt")) for r in run.records))


def ckpt_view(run: Run, ckpt: str, label: str) -> Run:
    """The part of a run that belongs to one checkpoint (a shift run may hold several)."""
    return replace(run, samples=[r for r in run.samples if str(r.get("ckpt")) == ckpt],
                   shift=[r for r in run.shift if str(r.get("ckpt")) == ckpt], label=label)


def match_checkpoints(runs: list[Run], ckpts: Sequence[str] = ()) -> list[tuple[str, list[Run]]]:
    """The comparisons to make, each (what is compared, runs whose first is the baseline).

    Runs holding one checkpoint each are compared as they are. With several checkpoints in a run:
    `ckpts` (--ckpt) keeps only those; then one run alone compares its checkpoints against its first, and
    several runs compare each checkpoint name with itself across the runs that hold it."""
    held = [ckpts_of(r) for r in runs]
    if ckpts:
        for r, h in zip(runs, held):
            if not set(ckpts) & set(h):
                raise BadInput(f"{r.label} holds no checkpoint {' or '.join(ckpts)} (it holds {', '.join(h)})")
        held = [[c for c in h if c in ckpts] for h in held]
    multi = any(len(h) > 1 for h in held)
    if not multi and (ckpts or len(runs) > 1):
        views = [ckpt_view(r, h[0], f"{r.label}/{h[0]}") if ckpts and len(ckpts_of(r)) > 1 else r
                 for r, h in zip(runs, held)]
        return [(" vs ".join(v.label for v in views), views)]
    if len(runs) == 1:
        if len(held[0]) < 2:
            raise BadInput("compare needs at least two run directories (or one run holding several checkpoints)")
        views = [ckpt_view(runs[0], c, f"{runs[0].label}/{c}") for c in held[0]]
        return [(f"the checkpoints of {runs[0].label}: {', '.join(held[0][1:])} against {held[0][0]}", views)]
    groups = []
    for c in dict.fromkeys(c for h in held for c in h):
        views = [ckpt_view(r, c, f"{r.label}/{c}" if len(h) > 1 else r.label) for r, h in zip(runs, held) if c in h]
        if len(views) > 1:
            groups.append((f"{c}: " + " vs ".join(v.label for v in views), views))
    if not groups:
        raise BadInput("no checkpoint is held by two of the runs; choose with --ckpt ("
                       + "; ".join(f"{r.label}: {', '.join(h)}" for r, h in zip(runs, held)) + ")")
    return groups


def compare_groups(groups: list[tuple[str, list[Run]]], force: bool = False, patterns: list[str] | None = None,
                   seed: int = 0) -> dict[str, Any]:
    """`compare_runs` on each group, in one result. One group: exactly `compare_runs`'s result; several:
    runs, pairs and notes of every group together, `groups` saying what each compared and on how many ids."""
    results = [compare_runs(list(runs), force=force, patterns=patterns, seed=seed) for _, runs in groups]
    if len(results) == 1:
        return {**results[0], "compared": groups[0][0]}
    return {"runs": [a for r in results for a in r["runs"]], "n_shared": min(r["n_shared"] for r in results),
            "n_compared": min(r["n_compared"] for r in results), "notes": [n for r in results for n in r["notes"]],
            "pairs": [p for r in results for p in r["pairs"]], "compared": "; ".join(g for g, _ in groups),
            "groups": [{"compared": g, "n_shared": r["n_shared"], "n_compared": r["n_compared"]}
                       for (g, _), r in zip(groups, results)]}


def write_compare(run_dirs: Sequence[Path | str], out: Path | str | None = None, *, force: bool = False,
                  patterns: list[str] | None = None, seed: int = 0, ckpts: Sequence[str] = (),
                  ) -> tuple[dict[str, Any], Path]:
    """Compare runs (see `match_checkpoints` for which) and write compare.json and compare.csv into `out`
    (default: compare_<A>_vs_<B>... beside the first run). Returns (result, out)."""
    runs = [load_run(d, need_records=True) for d in run_dirs]
    if len(runs) < 2 and not (len(runs) == 1 and len(ckpts_of(runs[0])) > 1):
        raise BadInput("compare needs at least two run directories (or one run holding several checkpoints)")
    if len({r.label for r in runs}) < len(runs):  # same folder name under different parents: use the paths
        for r in runs:
            r.label = str(r.dir)
    res = compare_groups(match_checkpoints(runs, ckpts), force=force, patterns=patterns, seed=seed)
    out = Path(out) if out is not None else runs[0].dir.parent / ("compare_" + "_vs_".join(r.dir.name for r in runs))
    make_folder(out)
    (out / "compare.json").write_text(json.dumps(res, indent=2) + "\n")
    rows = compare_rows(res)
    with open(out / "compare.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return res, out
