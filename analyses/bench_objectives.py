"""Objective costs: time of the two CTC terms, and peak memory of one CE vs CTC+CE step at LLaDA's vocabulary.

    python analyses/bench_objectives.py [--repeats 5] [--threads 1] [--skip-time] [--skip-memory]
                                        [--batch 2] [--length 512] [--vocab 126464] [--device cpu|cuda]

Time: for B = 32 and T = 64, 256 (U = T / 2 target tokens, V = 101 as in the tiny models), the median
forward+backward time of torch's ctc_loss and of the surface pass, and their ratio (target: surface <= 2x).

Memory: one forward+backward of the loss alone on logits (B, L, V) that stand in for the model's output
(L = 512 canvas, a 64-token prompt, U = 192 target tokens, V = 126,464), for CE and CTC+CE with each
collapse, computed "before" (cross_entropy and log_softmax over the whole vocabulary, as the objectives
did until the column-only path) and "after" (ce_loss; ce_ctc_losses, the training step's single pass).
Printed: the extra peak over the logits already held, in MiB. On CPU each
case runs in a fresh process and the peak is the rise of its maximum resident set size
(getrusage) over the resident size just before the step; on CUDA, torch.cuda.max_memory_allocated
over the memory allocated before the step.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from mdlm_probe.tasks.objectives import ce_ctc_losses, ce_loss, ctc_loss, surface_ctc_nll

SLACK = 2
OBJECTIVES = ("ce", "ctc+ce surface", "ctc+ce ctc")


def time_it(fn, repeats):
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def bench_time(repeats: int) -> None:
    B, V = 32, 101
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
                ctc_loss(logits, slice(0, None), targets, lengths, SLACK, collapse).backward()
            return f

        a, b = time_it(run("ctc"), repeats), time_it(run("surface"), repeats)
        print(f"{T:>5} {U:>5} {a * 1e3:>12.1f} {b * 1e3:>11.1f} {b / a:>6.2f}")


def plain_ce(logits, canvas, masked, t, R):
    """CE the plain way (before the column-only path): cross_entropy over the whole vocabulary in float32."""
    tok = F.cross_entropy(logits.float().transpose(1, 2), canvas, reduction="none")  # (B, L)
    return ((tok * masked).sum(1) / t / R).mean()


def plain_ctc(logits, sl, targets, lengths, collapse):
    """CTC term the plain way: log_softmax over the whole vocabulary first."""
    lp = logits[:, sl].float().log_softmax(-1)  # (B, R, V) float32
    B, R, _ = lp.shape
    if collapse == "ctc":
        return F.ctc_loss(lp.transpose(0, 1), targets, torch.full((B,), R, dtype=torch.long), lengths, blank=SLACK)
    return (surface_ctc_nll(lp, targets, lengths, SLACK) / lengths).mean()


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def one_case(objective: str, version: str, B: int, L: int, V: int, dtype: str, device: str) -> dict:
    """Build the logits, then measure one forward+backward of the loss; returns MiB figures.
    version "before": full-vocabulary cross_entropy / log_softmax; "after": the library's column-only path."""
    P, U = 64, 192
    g = torch.Generator().manual_seed(0)
    dt = getattr(torch, dtype)
    logits = torch.randn(B, L, V, generator=g).to(device=device, dtype=dt).requires_grad_()
    canvas = torch.randint(3, V, (B, L), generator=g).to(device)
    masked = (torch.rand(B, L, generator=g) < 0.5).to(device)
    masked[:, :P] = False
    t = torch.full((B,), 0.5, device=device)
    targets = torch.randint(3, V, (B, U), generator=g).to(device)
    lengths = torch.full((B,), U, device=device)
    sl = slice(P, None)
    logits_mib = logits.numel() * logits.element_size() / 2**20
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        before = rss_mib()
    if objective == "ce":
        loss = (plain_ce if version == "before" else ce_loss)(logits, canvas, masked, t, L - P)
    elif version == "before":
        loss = plain_ce(logits, canvas, masked, t, L - P) + plain_ctc(logits, sl, targets, lengths, objective[7:])
    else:
        loss = sum(ce_ctc_losses(logits, canvas, masked, t, L - P, sl, targets, lengths, SLACK, objective[7:]))
    loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"objective": objective, "version": version, "logits_mib": logits_mib, "extra_peak_mib": peak - before}


def bench_memory(B: int, L: int, V: int, device: str) -> None:
    print(f"\npeak memory of one forward+backward of the loss alone, logits (B={B}, L={L}, V={V}), {device}; "
          f"extra MiB over the logits already held")
    print(f"{'':<16} {'float32 logits':>21} {'bfloat16 logits':>21}")
    print(f"{'objective':<16} {'before':>10} {'after':>10} {'before':>10} {'after':>10}")
    for objective in OBJECTIVES:
        row = []
        for dtype in ("float32", "bfloat16"):
            for version in ("before", "after"):
                cmd = [sys.executable, __file__, "--one", json.dumps([objective, version, B, L, V, dtype, device])]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                row.append(json.loads(out.strip().splitlines()[-1])["extra_peak_mib"])
        print(f"{objective:<16} " + " ".join(f"{v:>10.0f}" for v in row))
    print(f"(the logits themselves: {B * L * V * 4 / 2**20:.0f} MiB in float32, {B * L * V * 2 / 2**20:.0f} MiB "
          f"in bfloat16; one (B, R, V) float32 tensor: {B * (L - 64) * V * 4 / 2**20:.0f} MiB)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-time", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=126464)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one memory case in this process
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(one_case(*json.loads(args.one))))
        sys.exit(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    if not args.skip_time:
        print(f"time: B=32, V=101, median of {args.repeats}")
        bench_time(args.repeats)
    if not args.skip_memory:
        bench_memory(args.batch, args.length, args.vocab, args.device)
