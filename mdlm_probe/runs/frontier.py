"""`run_frontier`: accuracy against speed for several decoding modes on the same problems.

A mode is `exact` (the run's sampler settings as given), a cache name (`prefix`, `dual`), or `name=value`
for any sampler setting, joined with `+` (`dual+threshold=0.9`). Each mode is an ordinary eval run
(`evaluate.run_eval`) in `OUT/runs/<mode>/`; `frontier.json` / `frontier.csv` hold one row per mode:
accuracy with its Wilson interval, forwards per sample (NFE), output tokens per forward, tokens/s and
seconds per sample (from the records' `nfe` and `seconds`), and whether the mode is Pareto-optimal in
accuracy against tokens/s and against tokens per forward; `frontier.png` draws both.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import read_records
from mdlm_probe.core.rundir import SAMPLES
from mdlm_probe.core.stats import wilson
from .evaluate import run_eval
from .figures import plot_frontier
from .invariance import LOAD_OPTIONS, setting_value

CACHES = ("none", "prefix", "dual")
RUNS = "runs"


def parse_mode(mode: str) -> dict[str, Any]:
    """`"dual+threshold=0.9"` -> {"cache": "dual", "threshold": 0.9}; `"exact"` -> {}."""
    settings: dict[str, Any] = {}
    for part in (p.strip() for p in mode.split("+")):
        if part == "exact":
            continue
        if part in CACHES:
            settings["cache"] = part
            continue
        name, eq, text = part.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not text or name in LOAD_OPTIONS:
            raise BadInput(f"mode {mode!r}: {part!r} is not exact, a cache ({', '.join(CACHES)}) or setting=value")
        settings[name] = setting_value(name, text.strip())
    return settings


def parse_modes(modes: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    out = [(m.strip(), parse_mode(m.strip())) for m in modes if m.strip()]
    if not out:
        raise BadInput("give at least one mode")
    if len({m for m, _ in out}) != len(out):
        raise BadInput("a mode is given twice")
    return out


def mode_row(mode: str, settings: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """One mode's accuracy and speed from its records."""
    n = len(records)
    k = sum(bool(r.get("correct")) for r in records)
    tokens = sum(len(r.get("output_ids") or []) for r in records)  # output tokens, EOS padding included
    nfe = sum(r.get("nfe") or 0 for r in records)
    secs = sum(r.get("seconds") or 0.0 for r in records)
    lo, hi = wilson(k, n)
    return {"mode": mode, "settings": settings, "n": n, "correct": k, "accuracy": k / n if n else float("nan"),
            "ci": [lo, hi], "nfe_mean": nfe / n if n else float("nan"), "tokens": tokens,
            "tokens_per_forward": tokens / nfe if nfe else float("nan"),
            "tokens_per_second": tokens / secs if secs else float("nan"),
            "seconds_per_sample": secs / n if n else float("nan")}


def pareto(rows: list[dict[str, Any]], speed: str) -> list[bool]:
    """Whether each row is Pareto-optimal in (accuracy, `speed`): no other row is at least as good in both
    and better in one."""
    def beats(o: dict[str, Any], r: dict[str, Any]) -> bool:
        return (o["accuracy"] >= r["accuracy"] and o[speed] >= r[speed]
                and (o["accuracy"] > r["accuracy"] or o[speed] > r[speed]))
    return [not any(beats(o, r) for o in rows if o is not r) for r in rows]


def run_frontier(ckpt: str | Path, benchmark: str, out: str | Path, modes: Sequence[str],
                 sampler_overrides: dict[str, Any] | None = None, limit: int | None = None,
                 overwrite: bool = False, progress: bool | str = False, plot: bool = True,
                 **eval_kwargs: Any) -> dict[str, Any]:
    """Decode `benchmark` with `ckpt` under each mode into `out`/runs/<mode>/; write frontier.json, .csv and
    .png and return the result. `eval_kwargs` go to run_eval (device, dtype, adapter, ...)."""
    out = Path(out)
    plan = parse_modes(modes)
    rows = []
    for mode, settings in plan:
        sub = out / RUNS / mode
        run_eval(ckpt, benchmark, sub, sampler_overrides={**(sampler_overrides or {}), **settings}, limit=limit,
                 overwrite=overwrite, progress=progress, **eval_kwargs)
        rows.append({**mode_row(mode, settings, read_records(sub / SAMPLES)[0]), "run": str(sub)})
    for speed, key in (("tokens_per_second", "pareto_tokens_per_second"),
                       ("tokens_per_forward", "pareto_tokens_per_forward")):
        for r, opt in zip(rows, pareto(rows, speed)):
            r[key] = opt
    res = {"ckpt": str(ckpt), "benchmark": benchmark, "limit": limit, "modes": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "frontier.json").write_text(json.dumps(res, indent=1) + "\n")
    cols = ("mode", "n", "correct", "accuracy", "ci_lo", "ci_hi", "nfe_mean", "tokens_per_forward",
            "tokens_per_second", "seconds_per_sample", "pareto_tokens_per_second", "pareto_tokens_per_forward")
    with open(out / "frontier.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([r["ci"][0] if c == "ci_lo" else r["ci"][1] if c == "ci_hi" else r[c] for c in cols])
    if plot:
        plot_frontier(rows, out / "frontier.png")
    return res
