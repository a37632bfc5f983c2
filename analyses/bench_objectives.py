"""Forward+backward time of the surface-collapse CTC pass against torch's ctc_loss.

    python analyses/bench_objectives.py [--repeats 5] [--threads 1]

Prints, for B = 32 and T = 64, 256 (U = T / 2 target tokens, V = 101 as in the tiny models), the median
time of each and their ratio (the issue's target: surface <= 2x ctc_loss).
"""

import argparse
import statistics
import time

import torch

from mdlm_probe.objectives import ctc_loss


def time_it(fn, repeats):
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    B, V, slack = 32, 101, 2
    print(f"torch {torch.__version__}, {args.threads} thread(s), B={B}, V={V}, median of {args.repeats}")
    print(f"{'T':>5} {'U':>5} {'ctc_loss ms':>12} {'surface ms':>11} {'ratio':>6}")
    for T in (64, 256):
        U = T // 2
        g = torch.Generator().manual_seed(0)
        logits = torch.randn(B, T, V, generator=g, requires_grad=True)
        targets = torch.randint(3, V, (B, U), generator=g)
        lengths = torch.randint(U // 2, U + 1, (B,), generator=g)

        def run(collapse):
            def f():
                logits.grad = None
                ctc_loss(logits, slice(0, None), targets, lengths, slack, collapse).backward()
            return f

        a, b = time_it(run("ctc"), args.repeats), time_it(run("surface"), args.repeats)
        print(f"{T:>5} {U:>5} {a * 1e3:>12.1f} {b * 1e3:>11.1f} {b / a:>6.2f}")


if __name__ == "__main__":
    main()
