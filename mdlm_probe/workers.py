"""Worker processes for eval and shift: each runs `python -c ENTRY JOB_JSON`; the parent watches them.

A worker's stderr goes to a temporary file (a pipe could fill up and stall it); a worker that exits 2
(bad input) becomes one BadInput line in the parent, any other failure a RuntimeError with its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

from .errors import BadInput


def cpu_env(k: int, **extra: str) -> dict[str, str]:
    """The environment of one of `k` CPU workers: the cores split between them unless OMP_NUM_THREADS is set."""
    env = {**os.environ, **extra}
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // k))
    return env


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
