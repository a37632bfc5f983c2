"""What the speed scripts (analyses/bench_*.py) share: the timing loop, in which the contenders run back to back in
an order that rotates from round to round (a slow phase of a shared machine hits each alike), and the writing of
their results. Imported by name: a script run as `python analyses/X.py` has this folder on its path."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence


def rotated(names: Sequence, k: int) -> list:
    """`names` starting at its k-th (mod its length): who goes first changes from round to round."""
    k %= len(names)
    return list(names[k:]) + list(names[:k])


def timed_chunks(samples: list, chunk: int, names: Sequence[str],
                 run: Callable[[str, list], Any]) -> Iterator[tuple[str, list, Any, float]]:
    """`samples` in chunks of `chunk`; in each, `run(name, part)` for every name, in an order rotating per chunk.
    Yields (name, part, what run returned, its wall seconds); a progress line on stderr after each chunk."""
    t0 = time.perf_counter()
    for c, s in enumerate(range(0, len(samples), chunk)):
        part = samples[s: s + chunk]
        for name in rotated(names, c):
            t = time.perf_counter()
            out = run(name, part)
            yield name, part, out, time.perf_counter() - t
        print(f"  {s + len(part)}/{len(samples)} problems, {time.perf_counter() - t0:.0f} s", file=sys.stderr,
              flush=True)


def decode_chunks(model, bench, samples: list, chunk: int, cfgs: dict,
                  ckpt: str) -> Iterator[tuple[str, list, list[dict], float]]:
    """`timed_chunks` over sampler configs (name -> SamplerConfig, in the order given): each name's run decodes
    the chunk as an eval does (runs.evaluate.build_records) and returns its records."""
    from mdlm_probe.runs.evaluate import build_records

    return timed_chunks(samples, chunk, list(cfgs),
                        lambda name, part: build_records(model, bench, part, cfgs[name], ckpt_name=ckpt))


def run_bench(script: str, bench: Callable[..., int], *args: Any) -> int:
    """`bench(*args)`'s exit code; bad input (BadInput) is one line `SCRIPT: error: ...` on stderr and exit 2."""
    from mdlm_probe.core.exceptions import BadInput

    try:
        return bench(*args)
    except BadInput as e:
        print(f"{script}: error: {e}", file=sys.stderr)
        return 2


def median_ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-round ratios a / b (rates measured in the same rounds)."""
    return statistics.median(x / y for x, y in zip(a, b))


def write_json(path: Path | None, obj: dict) -> None:
    """The results as indented JSON at `path` (its folder made), when a path is given."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2) + "\n")
