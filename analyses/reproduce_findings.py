"""Reproduce the study's findings on >= 1000 held-out problems and write a report plus findings.md.

    python analyses/reproduce_findings.py [--out runs/findings] [--n 1000] [--n-shift N] [--ckpt tiny-ce-ft --ckpt tiny-ctc ...]

Steps (each resumable; a rerun skips finished decodes):
  1. `mdlm_probe.report.demo.run_demo` with study sizes: eval on N held-out synthetic problems per checkpoint,
     a shift sweep (insert, delete at 1% and 5% of the canvas, at half-committed) on the first --n-shift of them,
     errors, compare (the first checkpoint against the others), report.
  2. Every eval run scored again under the other collapse map (no decoding: records keep both
     `text_surface` and `text_ctc`), mined for failure patterns.
  3. findings.json and findings.md: what each shift costs each checkpoint (paired drop, 95% CI), whether
     the CTC checkpoints' drop differs from the CE one's (paired bootstrap over problems, 95% CI), and the
     share of wrong answers that are trailing-zero drops under each collapse map (Wilson 95% CI).
  4. The report (report/index.html) rebuilt over every run.

Nothing here states a conclusion in advance: findings.md prints the measured numbers and says whether
each interval excludes zero. On 2 CPU cores the default study takes roughly an hour (see --n).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mdlm_probe.runs import miners  # noqa: E402
from mdlm_probe.report.demo import DEFAULT_CKPTS, DemoConfig, run_demo  # noqa: E402
from mdlm_probe.core.records import RecordWriter, read_records  # noqa: E402
from mdlm_probe.core.stats import paired_bootstrap, wilson  # noqa: E402

MAPS = ("surface", "ctc")


# ----------------------------------------------------------------------------------------- rescoring
def rescore_run(src: Path, dst: Path, how: str) -> Path:
    """A copy of the eval run `src` scored under collapse map `how` (same decodes, other `text`)."""
    from mdlm_probe.tasks.benchmarks import get_benchmark

    recs = read_records(src / "samples.jsonl")[0]
    cfg = json.loads((src / "config.json").read_text())
    bench = get_benchmark(cfg.get("benchmark", "synthetic"))
    samples = {f"{bench.name}/{s.native_id}": s for s in bench.load()}
    dst.mkdir(parents=True, exist_ok=True)
    cfg = {**cfg, "sampler": {**cfg.get("sampler", {}), "collapse": how}, "rescored_from": str(src)}
    (dst / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    out = dst / "samples.jsonl"
    if out.is_file():
        out.unlink()  # cheap to redo, and always consistent with src
    with RecordWriter(out) as w:
        for r in recs:
            text = r[f"text_{how}"]
            sc = bench.score(text, samples[r["id"]])
            w.write({**r, **sc, "text": text, "collapse": how, "sampler": {**(r.get("sampler") or {}), "collapse": how}})
    return dst


def native_map(run: Path) -> str:
    recs = read_records(run / "samples.jsonl")[0]
    return recs[0].get("collapse") or "surface"


# ----------------------------------------------------------------------------------------- findings
def shift_findings(shift_dir: Path, ckpts: list[str]) -> list[dict[str, Any]]:
    """Per checkpoint x mode x fraction: the paired drop (clean - shifted) with its CI, and for every other
    checkpoint the difference of drops against the first one (paired over problems)."""
    recs = read_records(shift_dir / "shift.jsonl")[0]
    clean = {(r["ckpt"], r["id"]): r for r in recs if not r.get("intervention")}
    per: dict[tuple, dict[str, float]] = {}  # (ckpt, mode, fraction, at) -> problem id -> drop_i
    for r in recs:
        iv = r.get("intervention")
        if not iv:
            continue
        c = clean.get((r["ckpt"], iv["clean_id"]))
        if c is None:
            continue
        key = (r["ckpt"], iv["mode"], float(iv["fraction"]), iv.get("at"))
        per.setdefault(key, {})[iv["clean_id"]] = float(bool(c["correct"])) - float(bool(r["correct"]))
    names = {r["ckpt"] for r in recs}
    base = next((c for c in ckpts if c in names), None)
    out = []
    for key in sorted(per, key=lambda k: (ckpts.index(k[0]) if k[0] in ckpts else 99, k[1], k[2], str(k[3]))):
        ck, mode, frac, at = key
        d = per[key]
        ids = sorted(d)
        cl = [float(bool(clean[(ck, i)]["correct"])) for i in ids]
        mean, lo, hi = paired_bootstrap([0.0] * len(ids), [d[i] for i in ids])
        row = {"ckpt": ck, "mode": mode, "fraction": frac, "at": at, "n": len(ids),
               "clean_accuracy": sum(cl) / len(cl), "clean_ci": list(wilson(int(sum(cl)), len(cl))),
               "drop": mean, "drop_ci": [lo, hi]}
        if base and ck != base and (base, mode, frac, at) in per:
            b = per[(base, mode, frac, at)]
            shared = sorted(set(b) & set(d))
            dd, dlo, dhi = paired_bootstrap([b[i] for i in shared], [d[i] for i in shared])
            row.update({"vs": base, "drop_minus_vs": dd, "drop_minus_vs_ci": [dlo, dhi], "n_shared": len(shared)})
        out.append(row)
    return out


def zero_findings(runs: list[Path]) -> list[dict[str, Any]]:
    """Per eval run (checkpoint x collapse map): accuracy, and the share of wrong answers with a dropped trailing zero."""
    out = []
    for d in runs:
        recs = read_records(d / "samples.jsonl")[0]
        wrong = [r for r in recs if miners.is_wrong(r)]
        tz = [r for r in wrong if miners.DETECTORS["trailing-zero"](r)]
        k = sum(bool(r["correct"]) for r in recs)
        out.append({"run": d.name, "ckpt": recs[0]["ckpt"], "collapse": recs[0].get("collapse"), "n": len(recs),
                    "accuracy": k / len(recs), "accuracy_ci": list(wilson(k, len(recs))), "wrong": len(wrong),
                    "trailing_zero": len(tz), "share_of_wrong": len(tz) / len(wrong) if wrong else None,
                    "share_ci": list(wilson(len(tz), len(wrong))) if wrong else None})
    return out


def _ci(x: list[float] | None, pct: bool = False) -> str:
    if not x:
        return "n/a"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:+.3f}")
    return f"[{f(x[0])}, {f(x[1])}]"


def _excludes_zero(ci: list[float]) -> str:
    return "the 95% CI excludes 0" if ci[0] > 0 or ci[1] < 0 else "the 95% CI includes 0"


def findings_markdown(shift: list[dict], zeros: list[dict], n: int, n_shift: int, seconds: float) -> str:
    where = f"{n} held-out synthetic problems" + (f", the shift sweep on the first {n_shift}" if n_shift != n else "")
    lines = [f"# Findings (measured by analyses/reproduce_findings.py on {where})", "",
             "## What a one-position shift costs (paired against the same problems decoded clean)", "",
             "| checkpoint | mode | fraction | at | n | clean accuracy [95% CI] | drop (clean - shifted) [95% CI] | "
             "drop minus the first checkpoint's [95% CI] |", "|---|---|---|---|---|---|---|---|"]
    for r in shift:
        vs = (f"{r['drop_minus_vs']:+.3f} {_ci(r['drop_minus_vs_ci'])} ({_excludes_zero(r['drop_minus_vs_ci'])})"
              if "vs" in r else "-")
        lines.append(f"| {r['ckpt']} | {r['mode']} | {r['fraction']:g} | {r['at']} | {r['n']} | "
                     f"{r['clean_accuracy']:.3f} {_ci(r['clean_ci'], True)} | {r['drop']:+.3f} {_ci(r['drop_ci'])} "
                     f"({_excludes_zero(r['drop_ci'])}) | {vs} |")
    lines += ["", "## Dropped trailing zeros among wrong answers, per collapse map", "",
              "| run | checkpoint | collapse | n | accuracy [95% CI] | wrong | trailing-zero drops | share of wrong [95% CI] |",
              "|---|---|---|---|---|---|---|---|"]
    for z in zeros:
        share = "n/a" if z["share_of_wrong"] is None else f"{100 * z['share_of_wrong']:.1f}% {_ci(z['share_ci'], True)}"
        lines.append(f"| {z['run']} | {z['ckpt']} | {z['collapse']} | {z['n']} | {z['accuracy']:.3f} "
                     f"{_ci(z['accuracy_ci'], True)} | {z['wrong']} | {z['trailing_zero']} | {share} |")
    lines += ["", f"Wall time of the study: {seconds / 60:.1f} min. Drops: paired bootstrap (2000 resamples) over "
              "problems; accuracies and shares: Wilson intervals. The report (report/index.html) shows the same runs.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Reproduce the study's findings (see the module docstring).")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "findings")
    ap.add_argument("--n", type=int, default=1000, help="held-out problems for eval (and the shift sweep unless --n-shift; >= 1000 for the README)")
    ap.add_argument("--n-shift", type=int, default=None, help="problems for the shift sweep (default: --n); the sweep "
                    "decodes each one 5 times per checkpoint, so it is most of the study's time")
    ap.add_argument("--ckpt", action="append", default=None, help="checkpoints; the first is the CE baseline")
    ap.add_argument("--fractions", default="0,0.01,0.05")
    ap.add_argument("--at", default="0.5", help="committed fractions at which the shift fires, comma-separated")
    ap.add_argument("--n-gsm8k", type=int, default=0, help="also a GSM8K slice of this size (needs ../shared/data)")
    ap.add_argument("--sampler", default="{}", help='sampler overrides as JSON, e.g. \'{"gen_length": 8}\' (default: each sidecar\'s)')
    a = ap.parse_args(argv)
    ckpts = a.ckpt or list(DEFAULT_CKPTS)
    n_shift = a.n_shift or a.n
    cfg = DemoConfig(ckpts=ckpts, n_eval=a.n, n_shift=n_shift, n_gsm8k=a.n_gsm8k,
                     fractions=tuple(float(x) for x in a.fractions.split(",")),
                     ats=tuple(float(x) for x in a.at.split(",")), sampler=json.loads(a.sampler))
    t0 = time.time()
    res = run_demo(cfg, a.out, log=lambda s: print(s, flush=True))

    evals = sorted((a.out / "eval").glob("synthetic-*"))
    evals = [d for d in evals if "-as-" not in d.name]
    rescored = []
    for d in evals:
        other = [m for m in MAPS if m != native_map(d)]
        for how in other:
            rescored.append(rescore_run(d, a.out / "eval" / f"{d.name}-as-{how}", how))
    for d in rescored:
        miners.mine_run(d, list(miners.DETECTORS))

    shift = shift_findings(a.out / "shift", ckpts)
    zeros = zero_findings(evals + rescored)
    seconds = time.time() - t0
    (a.out / "findings.json").write_text(json.dumps({"n": a.n, "n_shift": n_shift, "ckpts": ckpts, "shift": shift,
                                                     "trailing_zero": zeros, "seconds": seconds}, indent=2) + "\n")
    md = findings_markdown(shift, zeros, a.n, n_shift, seconds)
    (a.out / "findings.md").write_text(md)

    from mdlm_probe.report import build_report

    runs = evals + rescored + sorted((a.out / "eval").glob("gsm8k-*")) + [a.out / "shift"]
    if (a.out / "compare" / "compare.json").is_file():
        runs.append(a.out / "compare")
    report = build_report(runs, a.out / "report", title=f"mdlm-probe findings: {', '.join(ckpts)} on {a.n} problems")
    print(md)
    print(f"findings: {a.out / 'findings.md'}\nreport: {report}\ntotal {seconds / 60:.1f} min "
          f"(demo steps: {', '.join(f'{n} {s:.0f}s' for n, s in res['steps'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
