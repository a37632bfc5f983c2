"""`run_frontier`: accuracy against speed for several decoding modes on the same problems.

A mode is `exact` (the run's sampler settings as given), a cache name (`prefix`, `dual`), or `name=value`
for any sampler setting, joined with `+` (`dual+threshold=0.9`). Each mode is an ordinary eval run
(`evaluate.run_eval`) in `OUT/runs/<mode>/`; `frontier.json` / `frontier.csv` hold one row per mode:
accuracy with its Wilson interval, forwards per sample (NFE), generated tokens per forward (TPF), generated
tokens/s and seconds per sample (from the records' `nfe` and `seconds`; prompt tokens never count), AUP, and
whether the mode is Pareto-optimal in accuracy against tokens/s and against tokens per forward; `frontier.png`
draws both.

AUP (accuracy under parallelism) is d3LLM's hardware-independent score of a method's curve of (TPF, accuracy)
points (Hao AI Lab, d3LLM, github.com/hao-ai-lab/d3LLM, AUP_leaderboard; docs/invariance.md): sorted by TPF
rho_1 < ... < rho_n, points below y_1 - 5 (accuracy in percent, y_1 the least parallel point's) dropped,

    AUP = rho_1 y_1 + sum_{i>=2} (rho_i - rho_{i-1}) (y_i W(y_i) + y_{i-1} W(y_{i-1})) / 2,
    W(y) = min(1, exp(-alpha (1 - y / y_max))), alpha = 3, y_max the best accuracy of all modes compared.

A method here is a family of modes that differ only in `threshold` (the parallelism knob): `exact` and
`threshold=0.9` are one curve, `dual` and `dual+threshold=0.9` another; every mode's row carries its family's AUP.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Sequence

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.progress import say
from mdlm_probe.core.records import read_records
from mdlm_probe.core.rundir import SAMPLES, make_folder
from mdlm_probe.core.stats import wilson
from mdlm_probe.decoding import CACHES as FORWARD_POLICIES
from .evaluate import run_eval
from .figures import plot_frontier
from .invariance import LOAD_OPTIONS, setting_value

CACHES = tuple(FORWARD_POLICIES.names())  # none, prefix, dual, adaptive, ... (decoding/forward.py's registry)
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
    # generated tokens: the output canvas (EOS padding included); prompt tokens never count
    tokens = sum(len(r.get("output_ids") or []) for r in records)
    nfe = sum(r.get("nfe") or 0 for r in records)
    secs = sum(r.get("seconds") or 0.0 for r in records)
    lo, hi = wilson(k, n)
    return {"mode": mode, "settings": settings, "n": n, "correct": k, "accuracy": k / n if n else float("nan"),
            "ci": [lo, hi], "nfe_mean": nfe / n if n else float("nan"), "tokens": tokens,
            "tokens_per_forward": tokens / nfe if nfe else float("nan"),
            "tokens_per_second": tokens / secs if secs else float("nan"),
            "seconds_per_sample": secs / n if n else float("nan")}


AUP_ALPHA = 3.0  # d3LLM's penalty for accuracy lost against the best
AUP_OFFSET = 5.0  # points more than this many accuracy points (percent) below the least parallel one are dropped


def aup(points: Sequence[tuple[float, float]], y_max: float, alpha: float = AUP_ALPHA,
        offset: float = AUP_OFFSET) -> float:
    """d3LLM's accuracy under parallelism of one method's (TPF, accuracy in percent) points (module docstring):
    the first point's rectangle plus the trapezoids of the quality-weighted accuracy between points."""
    pts = sorted((float(r), float(y)) for r, y in points if r == r and y == y and r > 0)  # NaNs and 0 TPF out
    if not pts:
        return float("nan")
    floor = pts[0][1] - offset
    pts = [(r, y) for r, y in pts if y >= floor]

    def weighted(y: float) -> float:
        return y * min(1.0, math.exp(-alpha * (1.0 - y / y_max))) if y_max > 0 else 0.0
    total = pts[0][0] * pts[0][1]
    for (r0, y0), (r1, y1) in zip(pts, pts[1:]):
        total += (r1 - r0) * (weighted(y1) + weighted(y0)) / 2
    return total


def family(settings: dict[str, Any]) -> str:
    """The method a mode belongs to for AUP: its settings without `threshold` (`exact` when none are left)."""
    rest = {k: v for k, v in settings.items() if k != "threshold"}
    return "+".join(f"{k}={v}" for k, v in sorted(rest.items())) or "exact"


def add_aup(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each row's `aup_family` and `aup` (its family's AUP, y_max over all rows); returns family -> AUP."""
    y_max = max((100 * r["accuracy"] for r in rows if r["accuracy"] == r["accuracy"]), default=0.0)
    fams: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        fams.setdefault(family(r["settings"]), []).append(r)
    out = {f: aup([(r["tokens_per_forward"], 100 * r["accuracy"]) for r in rs], y_max) for f, rs in fams.items()}
    for f, rs in fams.items():
        for r in rs:
            r["aup_family"], r["aup"] = f, out[f]
    return out


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
    for i, (mode, settings) in enumerate(plan, 1):
        sub = out / RUNS / mode
        if progress not in (False, "off"):  # the eval's own progress names the benchmark, not the mode
            say(f"frontier: mode {i}/{len(plan)}: {mode} -> {sub}")
        run_eval(ckpt, benchmark, sub, sampler_overrides={**(sampler_overrides or {}), **settings}, limit=limit,
                 overwrite=overwrite, progress=progress, **eval_kwargs)
        rows.append({**mode_row(mode, settings, read_records(sub / SAMPLES)[0]), "run": str(sub)})
    for speed, key in (("tokens_per_second", "pareto_tokens_per_second"),
                       ("tokens_per_forward", "pareto_tokens_per_forward")):
        for r, opt in zip(rows, pareto(rows, speed)):
            r[key] = opt
    families = add_aup(rows)
    res = {"ckpt": str(ckpt), "benchmark": benchmark, "limit": limit, "modes": rows, "aup": families,
           "aup_params": {"alpha": AUP_ALPHA, "offset": AUP_OFFSET, "accuracy_unit": "percent"}}
    make_folder(out)
    (out / "frontier.json").write_text(json.dumps(res, indent=1) + "\n")
    table = csv_rows(rows)
    with open(out / "frontier.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]) if table else list(CSV_COLUMNS))
        w.writeheader()
        w.writerows(table)
    if plot:
        plot_frontier(rows, out / "frontier.png")
    return res


CSV_COLUMNS = ("mode", "n", "correct", "accuracy", "ci_low", "ci_high", "nfe_mean", "tokens_per_forward",
               "tokens_per_second", "seconds_per_sample", "aup_family", "aup", "pareto_tokens_per_second",
               "pareto_tokens_per_forward")


def csv_rows(modes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """frontier.csv's rows (and `frontier --format csv`): the accuracy's Wilson CI as ci_low / ci_high."""
    return [{c: r["ci"][0] if c == "ci_low" else r["ci"][1] if c == "ci_high" else r[c] for c in CSV_COLUMNS}
            for r in modes]
