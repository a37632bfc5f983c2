"""Decoding-dynamics findings (issue 32): eval runs on the held-out synthetic problems, then `dynamics` over them.

    OMP_NUM_THREADS=1 python analyses/dynamics_findings.py [--out runs/dynamics-findings] [--n 300]
                                                          [--phase eval|analyse|all] [--ckpt tiny-ctc ...]

Decodes, per checkpoint (each an `mdlm-probe eval synthetic` run, resumable):
  exact       the checkpoint's own settings (one block of 48, 48 steps, exact forward)
  thr0.9      --threshold 0.9 (Fast-dLLM parallel decoding)
  prefix      --block-length 16 --cache prefix --measure-cache-drift --drift-every 4
  dual        --block-length 16 --cache dual --measure-cache-drift --drift-every 4
  exact16     --block-length 16 (the caches' block layout without a cache: their paired baseline)
(the caches run with three blocks: with the sidecar's single block a dual cache keeps nothing after the block,
so it would equal the prefix cache). Then `dynamics` over all runs, and prints its tables: commit order and
EOS dynamics per checkpoint and mode, artifact origins, predictors of a wrong answer (AUC, 95% bootstrap CI),
trailing-zeros-before-leading-digit risk ratio, and cache drift against correctness; then each cache run paired
with exact16 on the same problems (`mdlm_probe.runs.compare`): outputs token-identical, verdicts flipped each
way, accuracy difference with its paired bootstrap 95% CI and McNemar's p.
Nothing is concluded in advance: the printed intervals say whether an association was found.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CKPTS = ("tiny-ce-ft", "tiny-ctc", "tiny-ctc-surface")
MODES = {
    "exact": [],
    "thr0.9": ["--threshold", "0.9"],
    "prefix": ["--block-length", "16", "--cache", "prefix", "--measure-cache-drift", "--drift-every", "4"],
    "dual": ["--block-length", "16", "--cache", "dual", "--measure-cache-drift", "--drift-every", "4"],
    "exact16": ["--block-length", "16"],
}


def run_dirs(out: Path, ckpts) -> list[Path]:
    return [out / f"{c}-{m}" for m in MODES for c in ckpts]


def decode(out: Path, ckpts, n: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for m, extra in MODES.items():  # mode-major: a study cut short still has every checkpoint's exact decode
        for c in ckpts:
            d = out / f"{c}-{m}"
            cmd = [sys.executable, "-m", "mdlm_probe", "eval", "synthetic", "--ckpt", c, "--limit", str(n),
                   "--out", str(d), "--no-progress", *extra]
            print("$", " ".join(cmd[2:]), flush=True)
            subprocess.run(cmd, check=True, env=env)


def analyse(out: Path, ckpts) -> None:
    from mdlm_probe.runs.dynamics import analyse_runs, format_tables  # noqa: E402  (after sys.path)
    dirs = [d for d in run_dirs(out, ckpts) if (d / "samples.jsonl").is_file()]
    result = analyse_runs(dirs)
    print(format_tables(result))
    print(cache_flips(out, ckpts))


def cache_flips(out: Path, ckpts) -> str:
    """Each cache run against the exact decode with the same block layout, paired over the problems."""
    from mdlm_probe.core.rundir import load_run  # noqa: E402  (after sys.path)
    from mdlm_probe.runs.compare import compare_runs  # noqa: E402
    lines = ["Cache flips against exact decoding with the same blocks (16), paired",
             f"{'checkpoint':<18} {'cache':<7} {'n':>5} {'identical':>9} {'right->wrong':>12} {'wrong->right':>12} "
             f"{'acc diff [95% CI]':>24} {'McNemar p':>10}"]
    for c in ckpts:
        dirs = [out / f"{c}-{m}" for m in ("exact16", "prefix", "dual")]
        if not all((d / "samples.jsonl").is_file() for d in dirs):
            lines.append(f"{c:<18} (runs missing)")
            continue
        runs = [load_run(d) for d in dirs]
        res = compare_runs(runs, force=True, patterns=[])  # the settings differ in the cache only, on purpose
        base = {r["id"]: r["output_ids"] for r in runs[0].records}
        for run, pair in zip(runs[1:], res["pairs"]):
            recs = [r for r in run.records if r["id"] in base]
            same = sum(base[r["id"]] == r["output_ids"] for r in recs)  # token-identical outputs
            lo, hi = pair["diff_ci"]
            lines.append(f"{c:<18} {run.dir.name.rsplit('-', 1)[1]:<7} {pair['n']:>5} {same / len(recs):>9.3f} "
                         f"{len(pair['a_right_b_wrong']):>12} {len(pair['b_right_a_wrong']):>12} "
                         f"{pair['diff']:>+8.3f} [{lo:+.3f}, {hi:+.3f}] {pair['mcnemar_p']:>10.3g}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/dynamics-findings"))
    ap.add_argument("--n", type=int, default=300, help="held-out synthetic problems per run")
    ap.add_argument("--ckpt", action="append", help="checkpoints (default: tiny-ce-ft, tiny-ctc, tiny-ctc-surface)")
    ap.add_argument("--phase", choices=("eval", "analyse", "all"), default="all")
    a = ap.parse_args()
    ckpts = a.ckpt or list(CKPTS)
    print(f"n = {a.n} held-out synthetic problems per run; checkpoints {', '.join(ckpts)}", flush=True)
    if a.phase in ("eval", "all"):
        decode(a.out, ckpts, a.n)
    if a.phase in ("analyse", "all"):
        analyse(a.out, ckpts)


if __name__ == "__main__":
    main()
