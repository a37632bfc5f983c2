"""Fast decoding modes against exact mode on the synthetic held-out split: NFE, tokens/s and accuracy.

Every mode decodes the same problems with the same settings apart from the mode (threshold and/or block
KV cache), so accuracy differences are paired per problem (bootstrap 95% CI). The problems go in chunks,
and within each chunk the modes run back to back in a rotating order, so a slow phase of a shared machine
hits every mode alike; the tokens/s ratio is the median of the per-chunk ratios. NFE is reported per batch
(forwards the batch paid: threshold rows wait for the slowest) and per sample (the steps in which the
sample committed tokens: its NFE decoded alone, since batch rows are independent).

    python analyses/bench_heldout.py --ckpt tiny-ce --n 1000 --json reports/bench/heldout.json
    python analyses/bench_heldout.py --modes exact,threshold --block-length 48     # the sidecar's one block
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


def modes_for(threshold: float) -> dict[str, dict]:
    return {
        "exact": {},
        "threshold": {"threshold": threshold},
        "prefix": {"cache": "prefix"},
        "dual": {"cache": "dual"},
        "prefix+threshold": {"cache": "prefix", "threshold": threshold},
        "dual+threshold": {"cache": "dual", "threshold": threshold},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="tiny-ce")
    ap.add_argument("--n", type=int, default=1000, help="held-out problems (<= 1000)")
    ap.add_argument("--modes", default="exact,threshold,prefix,dual,prefix+threshold,dual+threshold",
                    help="comma list; exact is always included (the baseline)")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--gen-length", type=int, default=None, help="default: the checkpoint's sidecar")
    ap.add_argument("--block-length", type=int, default=16, help="blocks give the caches something to reuse")
    ap.add_argument("--steps", type=int, default=None, help="default: gen-length (one token per step)")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--chunk", type=int, default=100, help="problems per chunk (the unit of alternation)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    return run_bench("bench_heldout", bench, args)


def bench(args) -> int:
    from mdlm_probe.adapters import load_model
    from mdlm_probe.tasks.benchmarks import get_benchmark
    from mdlm_probe.runs.evaluate import build_records
    from mdlm_probe.decoding import resolve_sampler

    if args.threads:
        torch.set_num_threads(args.threads)
    all_modes = modes_for(args.threshold)
    names = ["exact"] + [m for m in args.modes.split(",") if m and m != "exact"]
    unknown = [m for m in names if m not in all_modes]
    if unknown:
        raise BadInput(f"unknown mode(s) {', '.join(unknown)}; expected {', '.join(all_modes)}")
    model = load_model(args.ckpt)
    if not getattr(model, "supports_cache", False):
        names = [m for m in names if "cache" not in all_modes[m]]
    base = resolve_sampler({"gen_length": args.gen_length, "block_length": args.block_length,
                            "batch_size": args.batch_size}, model)
    steps = args.steps or base.gen_length
    cfgs = {m: resolve_sampler({**base.to_dict(), "steps": steps, **all_modes[m]}) for m in names}
    bench_ = get_benchmark("synthetic")
    samples = bench_.load()[: args.n]
    G = base.gen_length

    per = {m: {"correct": [], "nfe": [], "nfe_own": [], "tokens_forwarded": [], "seconds": 0.0, "texts": []}
           for m in names}
    chunk_tps: dict[str, list[float]] = {m: [] for m in names}
    build_records(model, bench_, samples[:2], cfgs["exact"], ckpt_name=args.ckpt)  # warm-up
    for m, chunk, recs, dt in decode_chunks(model, bench_, samples, args.chunk, cfgs, args.ckpt):
        p = per[m]
        p["seconds"] += dt
        p["correct"] += [bool(r["correct"]) for r in recs]
        p["nfe"] += [r["nfe"] for r in recs]
        # a row's own NFE: the steps in which it committed (decoded alone it would idle in none of them)
        p["nfe_own"] += [len({s for s in r["trajectory"]["commit_step"] if s >= 0}) for r in recs]
        p["tokens_forwarded"] += [r["tokens_forwarded"] for r in recs]
        p["texts"] += [r["text"] for r in recs]
        chunk_tps[m].append(len(chunk) * G / dt)

    ex = per["exact"]
    rows = []
    for m in names:
        p = per[m]
        n, k = len(p["correct"]), sum(p["correct"])
        lo, hi = wilson(k, n)
        d, dlo, dhi = paired_bootstrap([float(x) for x in ex["correct"]], [float(x) for x in p["correct"]], seed=0)
        rows.append({
            "mode": m, "n": n, "accuracy": k / n, "accuracy_ci": [lo, hi],
            "diff_vs_exact": d, "diff_ci": [dlo, dhi],
            "same_text_as_exact": sum(a == b for a, b in zip(p["texts"], ex["texts"])) / n,
            "nfe_mean": statistics.mean(p["nfe"]), "nfe_ratio": statistics.mean(ex["nfe"]) / statistics.mean(p["nfe"]),
            "nfe_own_mean": statistics.mean(p["nfe_own"]),
            "nfe_own_ratio": statistics.mean(ex["nfe_own"]) / statistics.mean(p["nfe_own"]),
            "tokens_forwarded_mean": statistics.mean(p["tokens_forwarded"]),
            "tokens_s": n * G / p["seconds"], "tokens_s_ratio_median": median_ratio(chunk_tps[m], chunk_tps["exact"]),
            "settings": {k2: v for k2, v in cfgs[m].to_dict().items() if k2 in ("gen_length", "steps", "block_length",
                                                                                "threshold", "cache", "batch_size")},
        })

    machine = f"CPU, {torch.get_num_threads()} torch threads"
    print(f"# {args.ckpt}, synthetic held-out n={len(samples)}, gen-length {G}, block-length {base.block_length}, "
          f"steps {steps}, batch {base.batch_size}, threshold {args.threshold}; {machine}")
    print("| mode | accuracy | vs exact (95% CI) | same text | NFE per batch | ratio | NFE per sample | ratio | tokens/s | tokens/s ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['accuracy']:.3f} | {100 * r['diff_vs_exact']:+.1f} pt "
              f"[{100 * r['diff_ci'][0]:+.1f}, {100 * r['diff_ci'][1]:+.1f}] | {r['same_text_as_exact']:.2f} | "
              f"{r['nfe_mean']:.1f} | {r['nfe_ratio']:.2f}x | {r['nfe_own_mean']:.1f} | {r['nfe_own_ratio']:.2f}x | "
              f"{r['tokens_s']:.0f} | {r['tokens_s_ratio_median']:.2f}x |")
    write_json(args.json, {"ckpt": args.ckpt, "n": len(samples), "machine": machine, "chunk": args.chunk,
                           "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
