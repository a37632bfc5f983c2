"""Repair findings (issue 33): which decode-time repair recovers how much of a shift's drop, at what NFE cost.

For each checkpoint: one shift sweep without repair (`runs/repair-findings/<ckpt>`, as `mdlm-probe shift`
writes it) and one per strategy with it (`.../repair-<name>`), paired by `runs.shift_repair`; prints one
markdown table (recovered share with its paired bootstrap 95% CI, NFE ratio, clean accuracy change) and writes
it to `runs/repair-findings/findings.md`. Every run resumes, so a killed script continues where it stopped.
The sweeps of the strategies run in `--jobs` processes side by side once the sweep without repair is done.

    OMP_NUM_THREADS=1 python analyses/repair_findings.py --limit 200 --ckpts tiny-ce-ft --modes delete \\
        --fractions 0,0.01
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mdlm_probe.runs.shift import ShiftGrid, run_shift
from mdlm_probe.runs.shift_repair import REPAIR_CSV, repair_dir, repair_summary, write_summary_csv

STRATEGIES = ("remask-low", "seam", "edit")


def sweep(ckpt: str, out: Path, grid: ShiftGrid, limit: int, sampler: dict):
    return run_shift([ckpt], out, grid, limit=limit, sampler=sampler, benchmark="synthetic")


def one(args) -> tuple[str, str, list[dict]]:
    ckpt, root, grid, limit, strategy, extra = args
    out = root / ckpt
    sampler = {"repair": strategy, **extra}
    base = sweep(ckpt, out, grid, limit, {})  # done already: read back, nothing decoded
    rep = sweep(ckpt, repair_dir(out, sampler), grid, limit, sampler)
    rows = repair_summary(base.records, rep.records)
    write_summary_csv(rows, rep.out / REPAIR_CSV)
    return ckpt, strategy, rows


def table(results) -> str:
    lines = ["| checkpoint | repair | mode | p | n | drop without | drop with | recovered [95% CI] | NFE x | "
             "clean without → with [change, 95% CI] |", "|---|---|---|---:|---:|---:|---:|---|---:|---|"]
    for ckpt, strategy, rows in results:
        for r in rows:
            lines.append(f"| {ckpt} | {strategy} | {r['mode']} | {r['fraction']:g} | {r['n']} | "
                         f"{r['drop_without']:+.3f} | {r['drop_with']:+.3f} | {r['recovered']:+.2f} "
                         f"[{r['recovered_lo']:+.2f}, {r['recovered_hi']:+.2f}] | {r['nfe_ratio']:.2f} | "
                         f"{r['acc_clean_without']:.3f} → {r['acc_clean_with']:.3f} [{r['clean_change']:+.3f}, "
                         f"{r['clean_change_lo']:+.3f}, {r['clean_change_hi']:+.3f}] |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpts", default="tiny-ce-ft,tiny-ctc,tiny-ctc-surface")
    ap.add_argument("--modes", default="delete,insert")
    ap.add_argument("--fractions", default="0,0.01,0.05")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=1, help="strategy sweeps decoded side by side")
    ap.add_argument("--threshold", type=float, default=None, help="--repair-threshold (default: the sampler's)")
    ap.add_argument("--budget", type=int, default=None, help="--repair-budget (default: the sampler's)")
    ap.add_argument("--out", default="runs/repair-findings")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(a.out)
    grid = ShiftGrid(modes=a.modes.split(","), fractions=[float(f) for f in a.fractions.split(",")], ats=(0.5,))
    extra = {k: v for k, v in (("repair_threshold", a.threshold), ("repair_budget", a.budget)) if v is not None}
    ckpts, strategies = a.ckpts.split(","), a.strategies.split(",")
    for c in ckpts:
        sweep(c, root / c, grid, a.limit, {})  # the sweep without repair first: the strategies share it
    jobs = [(c, root, grid, a.limit, s, extra) for c in ckpts for s in strategies]
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        results = list(pool.map(one, jobs))
    md = (f"Repair findings: synthetic held-out, first {a.limit} problems, shift at 0.5 of the commits, "
          f"repair settings {extra or 'default'}\n\n" + table(results) + "\n")
    (root / "findings.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
