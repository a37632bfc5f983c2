"""The report's "Repair" section: what a decode-time repair recovered of each shift's drop (`shift --repair`).

A shift run directory made with `--repair NAME` holds the sweep without repair and, under `repair-NAME/`, the
same sweep with it (runs/shift_repair.py). For every such pair among the report's runs: the paired summary
(drop without and with the repair, recovered share with its bootstrap CI, NFE ratio, clean accuracy with and
without) and a few examples, clean / shifted / repaired side by side, each diffed against the clean text.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mdlm_probe.core.rundir import SHIFT, Run, read_run_records
from mdlm_probe.runs.shift_repair import repair_summary
from .render import diff_segments

MAX_EXAMPLES = 6


def _repaired_runs(run: Run) -> list[tuple[str, list[dict[str, Any]]]]:
    """(repair name, records) of each `repair-NAME/` sweep beside a shift run's own records."""
    out = []
    for d in sorted(run.dir.glob("repair-*")):
        if (d / SHIFT).is_file():
            out.append((d.name[len("repair-"):], read_run_records(d, SHIFT)[0]))  # "seam", "remask-low-t0.9-b8"
    return out


def _examples(base: list[dict], repaired: list[dict], name: str) -> list[dict[str, Any]]:
    """Problems the shift broke and the repair changed: clean / shifted / repaired texts."""
    b = {(r["ckpt"], r["id"]): r for r in base}
    items = []
    for r in sorted(repaired, key=lambda x: (x["ckpt"], str(x["id"]))):
        iv = r.get("intervention")
        s = b.get((r["ckpt"], r["id"]))
        c = b.get((r["ckpt"], iv["clean_id"])) if iv else None
        if s is None or c is None or not c.get("correct") or s.get("correct") or s.get("text") == r.get("text"):
            continue
        _, shifted = diff_segments(c.get("text") or "", s.get("text") or "")
        _, fixed = diff_segments(c.get("text") or "", r.get("text") or "")
        items.append({"title": f"{r['ckpt']} · {r['id']} · {name}",
                      "clean": [{"text": c.get("text") or "", "cls": ""}], "shifted": shifted, "repaired": fixed,
                      "labels": ("clean (correct)", "shifted (wrong)",
                                 f"shifted + {name} ({'correct' if r.get('correct') else 'wrong'})")})
        if len(items) >= MAX_EXAMPLES:
            break
    return items


def section_repair(runs: list[Run]) -> dict[str, Any] | None:
    rows, examples = [], []
    for run in runs:
        for name, recs in _repaired_runs(run):
            for row in repair_summary(run.shift, recs):
                rows.append({"checkpoint": row.pop("ckpt"), "repair": name, **row})
            examples += _examples(run.shift, recs, name)
    if not rows:
        return None
    df = pd.DataFrame(rows)
    shown = df[["checkpoint", "repair", "mode", "fraction", "at", "n", "drop_without", "drop_with", "recovered",
                "recovered_lo", "recovered_hi", "nfe_ratio", "acc_clean_without", "acc_clean_with"]]
    table = {"columns": list(shown.columns),
             "rows": [[(round(v, 4) if isinstance(v, float) else v) for v in r] for r in shown.itertuples(index=False)]}
    return {"table": table, "examples": examples[:MAX_EXAMPLES], "frames": {"repair": df}}
