"""Worker processes for eval and shift: each runs `python -c ENTRY JOB_JSON`; the parent watches them.

`run_shards` is the one way a run is split: worker i of k gets `shard="i/k"` in its job (and a GPU of
its own when there are GPUs), decodes its share into `shards/<stem>-i-of-k.jsonl` (rundir.shard_path),
and the parent merges the shards afterwards. A worker's stderr goes to a temporary file (a pipe could
fill up and stall it); a worker that exits 2 (bad input) becomes one BadInput line in the parent, any
other failure a RuntimeError with its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

import torch

from .exceptions import BadInput


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_threads(threads: int | None = None, processes: int = 1) -> int:
    """torch threads per process: `threads` when given, else OMP_NUM_THREADS when set, else one.

    One, not the cores: measured with analyses/bench_threads.py on 2 cores (README, Performance), torch's
    default of a thread per core was 1.1-1.6x faster on an idle machine but 2.5-50x slower as soon as
    another process kept a core busy (threads spin waiting for a core), and the thread count should not
    depend on how busy the machine is. Processes x threads then stays within the cores for any
    `processes` up to the core count; more speed comes from --num-processes or an explicit --threads."""
    if threads is not None:
        if threads < 1:
            raise BadInput(f"--threads {threads}: must be at least 1")
        return threads
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return 1


def set_threads(threads: int | None = None) -> int:
    """Set this process's torch threads (choose_threads); an explicit count also goes into
    OMP_NUM_THREADS so that worker processes started later inherit it. Returns the count."""
    n = choose_threads(threads)
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)
    return n


def cpu_env(k: int, **extra: str) -> dict[str, str]:
    """The environment of one of `k` CPU workers: OMP_NUM_THREADS as `choose_threads` picks it for each."""
    env = {**os.environ, **extra}
    env["OMP_NUM_THREADS"] = str(choose_threads(None, k))
    return env


def run_shards(entry: str, job: dict[str, Any], k: int, *, device: str | None = None,
               env: dict[str, str] | None = None, tick: Callable[[], None] = lambda: None,
               label: str = "worker") -> None:
    """Run `k` workers of `entry` on `job`, worker i with shard "i/k": one GPU each when CUDA is there
    and `device` does not say otherwise, else on CPU with the threads `cpu_env` gives each."""
    n_gpu = torch.cuda.device_count() if (device is None or str(device).startswith("cuda")) else 0
    extra = env or {}
    jobs = [{**job, "shard": f"{i}/{k}", "device": f"cuda:{i % n_gpu}" if n_gpu else (device or "cpu")}
            for i in range(k)]
    envs = [{**os.environ, **extra} if n_gpu else cpu_env(k, **extra) for _ in range(k)]
    run_workers(entry, jobs, envs, tick=tick, label=label)


def run_workers(entry: str, jobs: Sequence[dict[str, Any]], envs: Sequence[dict[str, str]],
                tick: Callable[[], None] = lambda: None, label: str = "worker") -> None:
    """Start one process per job, call `tick` every half second until all exit, then raise on any failure."""
    k = len(jobs)
    errs = [tempfile.TemporaryFile(mode="w+") for _ in range(k)]
    procs = [subprocess.Popen([sys.executable, "-c", entry, json.dumps(job)], env=env,
                              stdout=subprocess.DEVNULL, stderr=err, text=True)
             for job, env, err in zip(jobs, envs, errs)]
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(0.5)
            tick()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, (p, err) in enumerate(zip(procs, errs)):
        err.seek(0)
        text = err.read()
        err.close()
        if p.returncode:
            last = (text.strip().splitlines() or ["(no message)"])[-1]
            if p.returncode == 2:
                raise BadInput(f"{label} {i}/{k}: {last.removeprefix('mdlm-probe: error: ')}")
            raise RuntimeError(f"{label} {i}/{k} failed (exit {p.returncode}): {last}")


def worker_main(fn: Callable[[dict[str, Any]], Any]) -> None:
    """Body of a worker's entry point: run `fn(job)`; bad input -> one line on stderr, exit 2 (as the CLI)."""
    job = json.loads(sys.argv[1])
    try:
        fn(job)
    except BadInput as e:
        print(f"mdlm-probe: error: {e}", file=sys.stderr)
        sys.exit(2)
