"""Torch threads: one per core (torch's own default) against one (mdlm-probe's default), idle and loaded.

    python analyses/bench_threads.py [--ckpt tiny-ce] [--prompts 8] [--eval-n 40] [--load 2] [--repeats 1]

Each measurement runs in a fresh process (thread pools are set once per process) with OMP_NUM_THREADS unset
and the thread count set explicitly: the usable cores (what torch picks when nobody says) or 1 (what
`mdlm-probe` picks without `--threads`, `mdlm_probe.core.workers.choose_threads`). It times `generate` per prompt (one prompt at a time, as a person trying prompts would) and a
synthetic eval of `--eval-n` problems (batches of the sidecar's batch size), first on the machine as found
(its 1-minute load average is printed: "idle" only when that is near 0), then with `--load` busy-looping
processes added (default: one per core), standing in for other jobs sharing the machine. Prints a markdown
table; medians over `--repeats`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from mdlm_probe.core.workers import choose_threads, usable_cores

CHILD = r"""
import json, sys, tempfile, time
from mdlm_probe import load_model
from mdlm_probe.runs.evaluate import run_eval
from mdlm_probe.decoding import generate, resolve_sampler
from mdlm_probe.core.workers import set_threads
import torch

ckpt, threads, n_prompts, eval_n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
n = set_threads(int(threads))
model = load_model(ckpt)
cfg = resolve_sampler({}, model)
prompts = [f"Ann has {10 * i + 3} pens and buys {i + 5} more. How many pens does she have?\n" for i in range(n_prompts)]
generate(model, prompts[:1], cfg)  # warm-up (first-call allocations)
t = time.perf_counter()
for p in prompts:
    generate(model, [p], cfg)
per_prompt = (time.perf_counter() - t) / n_prompts
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter()
    s = run_eval(ckpt, "synthetic", d, limit=eval_n, model=model)
    eval_s = time.perf_counter() - t
print(json.dumps({"threads": n, "torch_threads": torch.get_num_threads(), "per_prompt": per_prompt,
                  "eval": eval_s, "accuracy": s["accuracy"]}))
"""


def measure(ckpt: str, threads: str, prompts: int, eval_n: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", CHILD, ckpt, threads, str(prompts), str(eval_n)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def busy(k: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", default="tiny-ce")
    ap.add_argument("--prompts", type=int, default=8, help="prompts decoded one at a time")
    ap.add_argument("--eval-n", type=int, default=40, help="synthetic problems evaluated")
    ap.add_argument("--load", type=int, default=None, help="busy processes for the loaded rows (default: one per core; 0 = idle only)")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    load = usable_cores() if a.load is None else a.load
    saved = os.environ.pop("OMP_NUM_THREADS", None)
    ours = choose_threads(None)
    if saved is not None:
        os.environ["OMP_NUM_THREADS"] = saved
    cores = usable_cores()
    print(f"{a.ckpt}, {cores} usable cores (mdlm-probe's default: {ours} thread), {a.prompts} prompts one at a "
          f"time, eval of {a.eval_n} synthetic problems, median of {a.repeats}; load = {load} busy processes\n")
    print("| machine | load before | threads | generate s/prompt | eval s | accuracy |")
    print("|---|---:|---|---:|---:|---:|")
    for label, k in [("as found", 0)] + ([(f"+{load} busy processes", load)] if load else []):
        procs = busy(k)
        try:
            for threads in dict.fromkeys((str(cores), str(ours))):
                before = os.getloadavg()[0]  # 1-minute load average: others' work shows here too
                runs = [measure(a.ckpt, threads, a.prompts, a.eval_n) for _ in range(a.repeats)]
                pp = statistics.median(r["per_prompt"] for r in runs)
                ev = statistics.median(r["eval"] for r in runs)
                name = f"{runs[0]['torch_threads']}" + (" (mdlm-probe's default)" if threads == str(ours) else " (one per core)")
                print(f"| {label} | {before:.1f} | {name} | {pp:.3f} | {ev:.1f} | {runs[0]['accuracy']:.3f} |",
                      flush=True)
        finally:
            for p in procs:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
