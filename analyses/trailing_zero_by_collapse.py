"""Share of wrong answers that are trailing-zero drops, under each collapse map, per eval run.

    python analyses/trailing_zero_by_collapse.py runs/eval/synthetic-tiny-ce-ft runs/eval/synthetic-tiny-ctc ...

Every record holds the raw canvas collapsed both ways (`text_surface`, `text_ctc`), so one decode is
re-scored under each map: accuracy, and among the wrong answers the share with a trailing-zero finding.
"""

import sys

from mdlm_probe.core.rundir import load_run
from mdlm_probe.runs.miners import mine
from mdlm_probe.tasks.scoring import score_math
from mdlm_probe.core.stats import wilson


def main(run_dirs):
    print(f"{'run':<32} {'map':<8} {'n':>5} {'accuracy':>9} {'wrong':>6} {'trailing-zero among wrong':>27}")
    for d in run_dirs:
        run = load_run(d)
        for how in ("surface", "ctc"):
            recs = [dict(r, text=r[f"text_{how}"], **score_math(r[f"text_{how}"], r["reference_answer"]))
                    for r in run.records]
            wrong = [r for r in recs if not r["correct"]]
            tz = sum(bool(mine(r, ["trailing-zero"])) for r in wrong)
            lo, hi = wilson(tz, len(wrong))
            acc = sum(r["correct"] for r in recs) / len(recs)
            print(f"{run.name:<32} {how:<8} {len(recs):>5} {acc:>9.3f} {len(wrong):>6} "
                  f"{tz / len(wrong):>10.3f} [{lo:.3f}, {hi:.3f}]")


if __name__ == "__main__":
    main(sys.argv[1:])
