"""`run_invariance`: decode the same problems under several settings and measure what changes.

Each `--vary name=a,b,...` names one setting; its first value is the baseline. The baseline variant takes
the first value of every vary; each other value of a vary is one more variant that changes only that
setting (one factor at a time). Every variant is an ordinary eval run (`evaluate.run_eval`) in
`OUT/runs/<variant>/`, so each resumes on its own; `invariance.json` and `invariance.csv` compare each
variant with the baseline: identical outputs (`output_ids` equal), the paired accuracy difference with a
bootstrap CI and exact McNemar p, and the ids whose outputs or verdicts change.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Sequence

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.progress import say
from mdlm_probe.core.records import read_records
from mdlm_probe.core.rundir import SAMPLES, make_folder
from mdlm_probe.core.stats import paired_binary, wilson
from mdlm_probe.decoding import SamplerConfig
from .evaluate import run_eval

LOAD_OPTIONS = ("dtype", "device")  # settings that change how the weights load, not how the sampler runs
SAMPLER_FIELDS = {f.name for f in dataclasses.fields(SamplerConfig)}
RUNS = "runs"


def setting_value(name: str, text: str) -> Any:
    """`text` as a value of the sampler field or load option `name` (None for none/null where allowed)."""
    if name in LOAD_OPTIONS:
        return text
    if name not in SAMPLER_FIELDS:
        raise BadInput(f"unknown setting {name!r}; expected a sampler setting "
                       f"({', '.join(sorted(SAMPLER_FIELDS))}) or {' / '.join(LOAD_OPTIONS)}")
    hint = typing.get_type_hints(SamplerConfig)[name]
    args = typing.get_args(hint)
    typ = next((a for a in args if a is not type(None)), hint) if args else hint
    if type(None) in args and text.lower() in ("none", "null"):
        return None
    try:
        if typ is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        return typ(text)
    except ValueError:
        raise BadInput(f"{name}={text}: not a {typ.__name__}") from None


def parse_vary(specs: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """`["batch-size=1,8", "dtype=float32,bfloat16"]` -> [("batch_size", [1, 8]), ("dtype", [...])]."""
    out: list[tuple[str, list[Any]]] = []
    for spec in specs:
        name, eq, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        texts = [v.strip() for v in values.split(",") if v.strip()]
        if not eq or len(texts) < 2:
            raise BadInput(f"--vary {spec!r}: expected name=a,b[,...] with at least two values")
        if name in (n for n, _ in out):
            raise BadInput(f"--vary {name} given twice")
        vals = [setting_value(name, t) for t in texts]
        if len(set(map(str, vals))) != len(vals):
            raise BadInput(f"--vary {spec!r}: a value is given twice")
        out.append((name, vals))
    if not out:
        raise BadInput("give at least one --vary name=a,b")
    return out


def variants(vary: Sequence[tuple[str, list[Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """(label, settings): the baseline (every first value), then one variant per other value of each vary."""
    base = {name: vals[0] for name, vals in vary}
    out = [("base", base)]
    for name, vals in vary:
        out += [(f"{name}={v}", {**base, name: v}) for v in vals[1:]]
    return out


def compare_records(base: list[dict[str, Any]], other: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """The variant's records against the baseline's, on the ids both hold (in the baseline's order)."""
    by_id = {r["id"]: r for r in other}
    pairs = [(a, by_id[a["id"]]) for a in base if a["id"] in by_id]
    same = [a.get("output_ids") == b.get("output_ids") for a, b in pairs]
    p = paired_binary([bool(a.get("correct")) for a, _ in pairs], [bool(b.get("correct")) for _, b in pairs],
                      seed=seed)
    changed = [{"id": a["id"], "correct_base": bool(a.get("correct")), "correct": bool(b.get("correct")),
                "text_base": a.get("text", ""), "text": b.get("text", "")}
               for (a, b), s in zip(pairs, same) if not s]
    n = len(pairs)
    return {"n": n, "identical": sum(same), "identical_share": sum(same) / n if n else float("nan"),
            "accuracy_base": p.mean_a, "accuracy": p.mean_b, "diff": p.diff, "diff_ci": list(p.ci),
            "mcnemar_p": p.p, "base_right_variant_wrong": [pairs[i][0]["id"] for i in p.only_a],
            "variant_right_base_wrong": [pairs[i][0]["id"] for i in p.only_b], "changed": changed}


def run_invariance(ckpt: str | Path, benchmark: str, out: str | Path, vary: Sequence[str],
                   sampler_overrides: dict[str, Any] | None = None, limit: int | None = None,
                   device: str | None = None, dtype: str | None = None, seed: int = 0, overwrite: bool = False,
                   progress: bool | str = False, **eval_kwargs: Any) -> dict[str, Any]:
    """Decode `benchmark` with `ckpt` under every variant of `vary` (see the module docstring) into `out`;
    write invariance.json / invariance.csv there and return the result. `eval_kwargs` go to run_eval."""
    out = Path(out)
    plan = variants(parse_vary(vary))
    records: dict[str, list[dict[str, Any]]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    for i, (label, settings) in enumerate(plan, 1):
        if progress not in (False, "off"):  # the eval's own progress names the benchmark, not the variant
            say(f"invariance: variant {i}/{len(plan)}: {label} -> {out / RUNS / label}")
        load = {"device": device, "dtype": dtype, **{k: v for k, v in settings.items() if k in LOAD_OPTIONS}}
        sampler = {**(sampler_overrides or {}), **{k: v for k, v in settings.items() if k not in LOAD_OPTIONS}}
        sub = out / RUNS / label
        summaries[label] = run_eval(ckpt, benchmark, sub, sampler_overrides=sampler, limit=limit,
                                    overwrite=overwrite, progress=progress, **load, **eval_kwargs)
        records[label] = read_records(sub / SAMPLES)[0]
    rows = []
    for label, settings in plan:
        s = summaries[label]
        row = {"variant": label, "settings": settings, "run": str(out / RUNS / label), "n": s["n"],
               "correct": s["correct"], "accuracy": s["accuracy"], "ci": list(wilson(s["correct"], s["n"]))}
        if label != "base":
            row.update(compare_records(records["base"], records[label], seed=seed))
        rows.append(row)
    res = {"ckpt": str(ckpt), "benchmark": benchmark, "limit": limit, "base": plan[0][1], "variants": rows}
    make_folder(out)
    (out / "invariance.json").write_text(json.dumps(res, indent=1) + "\n")
    write_csv(rows, out / "invariance.csv")
    return res


CSV_COLUMNS = ("variant", "n", "accuracy", "identical", "identical_share", "diff", "ci_low", "ci_high", "mcnemar_p",
               "base_right_variant_wrong", "variant_right_base_wrong")


def csv_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """invariance.csv's rows (and `invariance --format csv`): `ci_low` / `ci_high` bound `diff`."""
    out = []
    for r in rows:
        ci = r.get("diff_ci") or ["", ""]
        out.append(dict(zip(CSV_COLUMNS, [
            r["variant"], r["n"], round(r["accuracy"], 6), r.get("identical", r["n"]), r.get("identical_share", 1.0),
            r.get("diff", 0.0), ci[0], ci[1], r.get("mcnemar_p", 1.0), len(r.get("base_right_variant_wrong", [])),
            len(r.get("variant_right_base_wrong", []))])))
    return out


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS))
        w.writeheader()
        w.writerows(csv_rows(rows))
