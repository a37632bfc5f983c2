"""Peak memory (resident set) of `mdlm-probe eval synthetic` on a tiny checkpoint, as a user runs it.

The command runs in a child process; its peak RSS comes from the kernel's accounting for that child
(`wait4` rusage), so imports, model loading, decoding and writing the run directory all count.

    python analyses/bench_memory.py --ckpt tiny-ce --limit 200 --batch-size 16,64 --json reports/bench/memory.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timed_rounds import write_json

BUDGET_MB = 1536  # the limit: 1.5 GB


def peak_rss_mb(cmd: list[str], env: dict) -> tuple[float, float, int]:
    """Run `cmd`; return (peak RSS in MB, wall seconds, exit code)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode:
        print(err.strip().splitlines()[-1] if err.strip() else "(no stderr)", file=sys.stderr)
    return usage.ru_maxrss / 1024, time.perf_counter() - t, proc.returncode  # ru_maxrss is in KB on Linux


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="tiny-ce")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--batch-size", default="16,64", help="comma list of --batch-size values to measure")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    rows = []
    print(f"# peak RSS of `mdlm-probe eval synthetic --ckpt {args.ckpt} --limit {args.limit}` (budget {BUDGET_MB} MB)")
    print("| batch size | peak RSS MB | wall s | within budget |")
    print("|---:|---:|---:|---|")
    for bs in [int(b) for b in args.batch_size.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "mdlm_probe", "eval", "synthetic", "--ckpt", args.ckpt, "--limit",
                   str(args.limit), "--batch-size", str(bs), "--out", str(Path(tmp) / "run"), "--no-progress"]
            mb, wall, rc = peak_rss_mb(cmd, env)
        if rc:
            print(f"bench_memory: the eval command failed (exit {rc})", file=sys.stderr)
            return rc
        rows.append({"batch_size": bs, "peak_rss_mb": round(mb, 1), "wall_s": round(wall, 1), "ok": mb <= BUDGET_MB})
        print(f"| {bs} | {mb:.0f} | {wall:.1f} | {'yes' if mb <= BUDGET_MB else 'NO'} |", flush=True)
    write_json(args.json, {"ckpt": args.ckpt, "limit": args.limit, "budget_mb": BUDGET_MB, "rows": rows})
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
