"""The adaptive cache against the dual cache, both with a confidence threshold, on the synthetic held-out split.

Baseline: `--cache dual --threshold 0.9`. Each candidate is `--cache adaptive --threshold 0.9` with a drift
threshold (`--grid 0.2,0.5`). All decode the same problems with the same
settings otherwise, in chunks, in an order that rotates per chunk (a slow phase of a shared machine hits each
alike); the tokens/s ratio is the median of the per-chunk ratios, the accuracy difference is paired per
problem (bootstrap 95% CI, core/stats.py). Tokens/s counts generated tokens only (gen-length per problem).

Choose defaults on problems the measurement never sees, then measure, so the defaults are not fitted to what
they are measured on. `--tune` draws the problems from the held-out questions after the benchmark's 1000 (the
same generator and hash: never trained on, never in `eval synthetic`); without it they are the benchmark's:

    python analyses/bench_adaptive.py --tune --n 1000 --grid 0.05,0.1,0.2,0.3,0.5,inf
    python analyses/bench_adaptive.py --skip 0 --n 1000 --json reports/bench/adaptive.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.stats import paired_bootstrap, wilson
from timed_rounds import decode_chunks, median_ratio, run_bench, write_json


def parse_grid(text: str) -> list[float]:
    try:
        return [float(a) for a in text.split(",") if a]
    except ValueError:
        raise BadInput(f"--grid {text!r}: expected drift thresholds, e.g. 0.2,0.5") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="tiny-ce")
    ap.add_argument("--skip", type=int, default=0, help="held-out problems skipped")
    ap.add_argument("--n", type=int, default=1000, help="held-out problems measured")
    ap.add_argument("--tune", action="store_true", help="the held-out questions after the benchmark's 1000 instead")
    ap.add_argument("--grid", default="0.2,0.5", help="adaptive candidates: drift thresholds, comma-separated")
    ap.add_argument("--threshold", type=float, default=0.9, help="the confidence threshold of every mode")
    ap.add_argument("--block-length", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    return run_bench("bench_adaptive", bench, args, parse_grid(args.grid))


def bench(args, grid) -> int:
    from mdlm_probe.adapters import load_model
    from mdlm_probe.decoding import resolve_sampler
    from mdlm_probe.runs.evaluate import build_records
    from mdlm_probe.tasks import synthetic
    from mdlm_probe.tasks.benchmarks import Sample, get_benchmark

    torch.set_num_threads(args.threads)
    model = load_model(args.ckpt, device=args.device)
    base = resolve_sampler({"batch_size": args.batch_size, "threshold": args.threshold,
                            "block_length": args.block_length, "cache": "dual"}, model)
    base = resolve_sampler({**base.to_dict(), "steps": base.gen_length})
    cfgs = {"dual": base}
    for thr in grid:
        cfgs[f"adaptive {thr:g}"] = resolve_sampler({**base.to_dict(), "cache": "adaptive",
                                                     "cache_drift_threshold": thr})
    bench_ = get_benchmark("synthetic")
    samples = bench_.load()[args.skip: args.skip + args.n]
    if args.tune:
        extra = synthetic.heldout(synthetic.HELDOUT_SIZE + args.skip + args.n)[synthetic.HELDOUT_SIZE + args.skip:]
        samples = [Sample(native_id=f"tune-{i}", question=p.question, reference=p.solution, reference_answer=p.answer)
                   for i, p in enumerate(extra, start=args.skip)]
    G, names = base.gen_length, list(cfgs)
    build_records(model, bench_, samples[:2], base, ckpt_name=args.ckpt)  # warm-up
    per = {m: {"seconds": 0.0, "correct": [], "nfe": [], "forwarded": 0} for m in names}
    chunk_tps: dict[str, list[float]] = {m: [] for m in names}
    for m, chunk, recs, dt in decode_chunks(model, bench_, samples, args.chunk, cfgs, args.ckpt):
        p = per[m]
        p["seconds"] += dt
        p["correct"] += [float(bool(r["correct"])) for r in recs]
        p["nfe"] += [r["nfe"] for r in recs]
        p["forwarded"] += sum(r["tokens_forwarded"] for r in recs)
        chunk_tps[m].append(len(chunk) * G / dt)
    n, rows = len(samples), []
    for m in names:
        p = per[m]
        k = int(sum(p["correct"]))
        d, lo, hi = paired_bootstrap(per["dual"]["correct"], p["correct"], seed=0)
        rows.append({"mode": m, "n": n, "accuracy": k / n, "accuracy_ci": list(wilson(k, n)), "diff_vs_dual": d,
                     "diff_ci": [lo, hi], "nfe_per_batch": statistics.mean(p["nfe"]),
                     "tokens_forwarded_per_problem": p["forwarded"] / n, "tokens_s": n * G / p["seconds"],
                     "ratio_median": median_ratio(chunk_tps[m], chunk_tps["dual"])})
    machine = f"{args.device}, {torch.get_num_threads()} torch thread(s)"
    where = "tuning questions (held-out, after the benchmark's 1000)" if args.tune else "held-out problems"
    print(f"# {args.ckpt}, synthetic {where} {args.skip}..{args.skip + n - 1} (n={n}), gen-length {G}, "
          f"block-length {base.block_length}, steps {base.steps}, batch {base.batch_size}, threshold "
          f"{args.threshold}; {machine}")
    print("| mode (drift threshold) | accuracy | vs dual [95% CI] | NFE per batch | positions forwarded per "
          "problem | generated tokens/s | vs dual (median of chunks) |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['accuracy']:.3f} | {100 * r['diff_vs_dual']:+.1f} pt [{100 * r['diff_ci'][0]:+.1f}, "
              f"{100 * r['diff_ci'][1]:+.1f}] | {r['nfe_per_batch']:.1f} | {r['tokens_forwarded_per_problem']:.0f} | "
              f"{r['tokens_s']:.0f} | {r['ratio_median']:.2f}x |")
    write_json(args.json, {"ckpt": args.ckpt, "tune": args.tune, "skip": args.skip, "n": n, "machine": machine,
                           "settings": base.to_dict(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
