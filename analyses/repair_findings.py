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
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mdlm_probe.runs.shift import ShiftGrid, run_shift
from mdlm_probe.runs.shift_repair import REPAIR_CSV, repair_dir, repair_summary, write_summary_csv

STRATEGIES = ("remask-low", "seam", "edit", "probe")


def sweep(ckpt: str, out: Path, grid: ShiftGrid, limit: int, sampler: dict):
    return run_shift([ckpt], out, grid, limit=limit, sampler=sampler, benchmark="synthetic")


def one(args) -> tuple[str, str, list[dict]]:
    ckpt, root, grid, limit, strategy, extra, given = args
    out = root / Path(ckpt).name  # a folder given by path: its name (never the checkpoint folder itself)
    sampler = {**given, "repair": strategy, **extra}
    base = sweep(ckpt, out, grid, limit, given)  # done already: read back, nothing decoded
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
    ap.add_argument("--every", type=int, default=None, help="--repair-every, probe (default: the sampler's)")
    ap.add_argument("--stride", type=int, default=None, help="--repair-stride, probe (default: the sampler's)")
    ap.add_argument("--sampler", default="{}", help='sampler settings for every sweep as JSON, e.g. '
                    '\'{"gen_length": 48, "steps": 48, "block_length": 48}\' (default: each sidecar\'s)')
    ap.add_argument("--out", default="runs/repair-findings")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(a.out)
    grid = ShiftGrid(modes=a.modes.split(","), fractions=[float(f) for f in a.fractions.split(",")], ats=(0.5,))
    extra = {k: v for k, v in (("repair_threshold", a.threshold), ("repair_budget", a.budget),
                                ("repair_every", a.every), ("repair_stride", a.stride)) if v is not None}
    ckpts, strategies, given = a.ckpts.split(","), a.strategies.split(","), json.loads(a.sampler)
    for c in ckpts:
        sweep(c, root / Path(c).name, grid, a.limit, given)  # without repair first: the strategies share it
    jobs = [(c, root, grid, a.limit, s, extra, given) for c in ckpts for s in strategies]
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        results = list(pool.map(one, jobs))
    md = (f"Repair findings: synthetic held-out, first {a.limit} problems, shift at 0.5 of the commits, "
          f"repair settings {extra or 'default'}\n\n" + table(results) + "\n")
    (root / "findings.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
