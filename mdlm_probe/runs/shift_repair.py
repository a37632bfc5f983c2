"""`shift --repair NAME`: every decode of a shift sweep run twice, without and with the repair, on the same
problems and shift points, and what the repair recovered (docs/repair.md).

The run directory `out` holds the sweep without repair (as `shift` writes it); `out/repair-NAME/` (settings
other than the defaults appended, `repair_dir`) holds the same sweep with repair NAME (its own config.json, shift.jsonl, summary), so several repairs share one sweep
without. Both resume. `repair-NAME/repair_summary.csv` and `.json` pair them per checkpoint x mode x fraction x at: the drop without repair, the drop with it (each the
paired clean - shifted accuracy of its own sweep), the recovered share 1 - drop_with / drop_without with a
paired bootstrap 95% CI, the NFE per sample of the shifted decodes with and without, and the clean accuracy
with and without the repair (a repair that breaks clean answers shows here).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from mdlm_probe.core.stats import paired_bootstrap, paired_ratio_bootstrap
from mdlm_probe.decoding import SamplerConfig
from mdlm_probe.tasks.interventions import when_label
from .shift import ShiftGrid, ShiftRun, mode_label, run_shift, where_label, write_summary_csv

REPAIR_KEYS = ("repair", "repair_threshold", "repair_budget", "repair_window", "repair_scope", "repair_every",
               "repair_stride")
REPAIR_CSV, REPAIR_JSON = "repair_summary.csv", "repair_summary.json"


def repair_dir(out: Path | str, sampler: dict[str, Any]) -> Path:
    """Where the sweep with the repair goes: `out/repair-NAME`, with each setting given that is not the
    default after it (`repair-remask-low-t0.9-b8`: threshold 0.9, budget 8), so settings do not collide."""
    defaults = SamplerConfig.ADDED_LATER
    tags = [f"{short}{sampler[k]:g}" if not isinstance(sampler[k], str) else f"{short}{sampler[k]}"
            for k, short in (("repair_threshold", "t"), ("repair_budget", "b"), ("repair_window", "w"),
                             ("repair_scope", "s"), ("repair_every", "e"), ("repair_stride", "k")) if sampler.get(k) is not None and sampler[k] != defaults[k]]
    return Path(out) / "-".join(["repair", str(sampler["repair"]), *tags])


@dataclass
class ShiftRepairRun:
    base: ShiftRun  # the sweep without repair (in `out`)
    repaired: ShiftRun  # the same sweep with it (in `out/repair-NAME`)
    rows: list[dict[str, Any]]  # repair_summary rows


def without_repair(sampler: dict[str, Any] | None) -> dict[str, Any]:
    """The sampler options with every repair setting left out (their defaults: repair off)."""
    return {k: v for k, v in (sampler or {}).items() if k not in REPAIR_KEYS}


def run_shift_repair(ckpts, out: Path | str, grid: ShiftGrid, *, sampler: dict[str, Any], **kw) -> ShiftRepairRun:
    """`run_shift` without the repair into `out`, with it into `out/repair-NAME`, and the paired summary there."""
    out = Path(out)
    base = run_shift(ckpts, out, grid, sampler=without_repair(sampler), **kw)
    repaired = run_shift(ckpts, repair_dir(out, sampler), grid, sampler=sampler, **kw)
    rows = repair_summary(base.records, repaired.records)
    write_summary_csv(rows, repaired.out / REPAIR_CSV)
    (repaired.out / REPAIR_JSON).write_text(json.dumps(rows, indent=1, default=float) + "\n")
    return ShiftRepairRun(base=base, repaired=repaired, rows=rows)


def _key(r: dict[str, Any]) -> tuple:
    iv = r["intervention"]
    return (r["ckpt"], mode_label(iv["mode"], iv.get("direction")), where_label(iv),
            when_label(iv.get("at"), iv.get("at_step")))


def repair_summary(base: Iterable[dict[str, Any]], repaired: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per checkpoint x mode x fraction x at, over the problems both sweeps decoded (clean and shifted)."""
    b = {(r["ckpt"], r["id"]): r for r in base}
    rp = {(r["ckpt"], r["id"]): r for r in repaired}
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for (ck, i), s in b.items():
        if not s.get("intervention"):
            continue
        c_id = (ck, s["intervention"]["clean_id"])
        quad = (b.get(c_id), s, rp.get(c_id), rp.get((ck, i)))
        if all(q is not None for q in quad):
            groups[_key(s)].append(quad)
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], str(k[2]), k[3])):
        quads = groups[key]
        cb, sb, cr, sr = (np.array([bool(q[j].get("correct")) for q in quads], dtype=float) for j in range(4))
        share, lo, hi = paired_ratio_bootstrap(cb - sb, cr - sr)
        d_clean = paired_bootstrap(cb, cr)  # clean accuracy with - without repair
        nfe_b = float(np.mean([q[1]["nfe"] for q in quads]))
        nfe_r = float(np.mean([q[3]["nfe"] for q in quads]))
        rows.append({"ckpt": key[0], "mode": key[1], "fraction": key[2], "at": key[3], "n": len(quads),
                     "drop_without": float((cb - sb).mean()), "drop_with": float((cr - sr).mean()),
                     "recovered": share, "recovered_lo": lo, "recovered_hi": hi,
                     "acc_shifted_without": float(sb.mean()), "acc_shifted_with": float(sr.mean()),
                     "nfe_without": nfe_b, "nfe_with": nfe_r, "extra_nfe": nfe_r - nfe_b,
                     "nfe_ratio": nfe_r / nfe_b if nfe_b else float("nan"),
                     "acc_clean_without": float(cb.mean()), "acc_clean_with": float(cr.mean()),
                     "clean_change": d_clean[0], "clean_change_lo": d_clean[1], "clean_change_hi": d_clean[2],
                     "repaired_share": float(np.mean([bool((q[3].get("hook_info") or {}).get("repair"))
                                                      for q in quads]))})
    return rows
