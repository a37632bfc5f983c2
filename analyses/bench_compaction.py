"""Batch compaction: tokens/s of threshold decoding with and without `compact` on the synthetic held-out split.

A batch decodes until its slowest row is done; with compaction the rows that are done leave the forward batch.
Both sides decode the same problems with the same settings apart from `compact`, in chunks, the two sides back
to back in alternating order within each chunk (a slow phase of a shared machine hits both alike); the ratio is
the median of the per-chunk ratios. Tokens/s counts generated tokens only (gen-length per problem; the prompt
never counts). The script also checks that both sides decoded the same tokens.

    python analyses/bench_compaction.py --ckpt tiny-ce --n 300 --batch-size 8 --threshold 0.9
    python analyses/bench_compaction.py --n 1000 --json reports/bench/compaction.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from timed_rounds import decode_chunks, median_ratio, run_bench, write_json


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="tiny-ce")
    ap.add_argument("--n", type=int, default=300, help="held-out problems (<= 1000)")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--block-length", type=int, default=None, help="default: the checkpoint's sidecar")
    ap.add_argument("--chunk", type=int, default=40, help="problems per chunk (the unit of alternation)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    return run_bench("bench_compaction", bench, args)


def bench(args) -> int:
    from mdlm_probe.adapters import load_model
    from mdlm_probe.decoding import resolve_sampler
    from mdlm_probe.runs.evaluate import build_records
    from mdlm_probe.tasks.benchmarks import get_benchmark

    torch.set_num_threads(args.threads)
    model = load_model(args.ckpt, device=args.device)
    base = resolve_sampler({"batch_size": args.batch_size, "threshold": args.threshold,
                            **({"block_length": args.block_length} if args.block_length else {})}, model)
    cfgs = {"off": base, "compact": resolve_sampler({**base.to_dict(), "compact": True})}
    bench_ = get_benchmark("synthetic")
    samples = bench_.load()[: args.n]
    G = base.gen_length
    build_records(model, bench_, samples[:2], base, ckpt_name=args.ckpt)  # warm-up
    per = {m: {"seconds": 0.0, "ids": [], "correct": [], "forwarded": 0, "nfe": [], "tps": []} for m in cfgs}
    for m, chunk, recs, dt in decode_chunks(model, bench_, samples, args.chunk, cfgs, args.ckpt):
        p = per[m]
        p["seconds"] += dt
        p["ids"] += [r["output_ids"] for r in recs]
        p["correct"] += [bool(r["correct"]) for r in recs]
        p["forwarded"] += sum(r["tokens_forwarded"] for r in recs)
        p["nfe"] += [r["nfe"] for r in recs]
        p["tps"].append(len(chunk) * G / dt)
    n = len(samples)
    rows = [{"mode": f"threshold {args.threshold}" + (" + compact" if m == "compact" else ""), "n": n,
             "accuracy": sum(p["correct"]) / n, "nfe_per_batch": statistics.mean(p["nfe"]),
             "tokens_forwarded_per_problem": p["forwarded"] / n, "tokens_s": n * G / p["seconds"],
             "ratio_median": median_ratio(p["tps"], per["off"]["tps"]) if m == "compact" else 1.0}
            for m, p in per.items()]
    same = sum(a == b for a, b in zip(per["off"]["ids"], per["compact"]["ids"]))
    machine = f"{args.device}, {torch.get_num_threads()} torch thread(s)"
    print(f"# {args.ckpt}, synthetic held-out n={n}, gen-length {G}, block-length {base.block_length}, steps "
          f"{base.steps}, batch {base.batch_size}; {machine}; identical outputs {same}/{n}")
    print("| mode | accuracy | NFE per batch | positions forwarded per problem | generated tokens/s | ratio (median of chunks) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['accuracy']:.3f} | {r['nfe_per_batch']:.1f} | "
              f"{r['tokens_forwarded_per_problem']:.0f} | {r['tokens_s']:.0f} | {r['ratio_median']:.2f}x |")
    write_json(args.json, {"ckpt": args.ckpt, "n": n, "machine": machine, "identical": same,
                           "settings": base.to_dict(), "rows": rows})
    return 0 if same == n else 1


if __name__ == "__main__":
    sys.exit(main())
