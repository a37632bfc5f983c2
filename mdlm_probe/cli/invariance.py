"""`mdlm-probe invariance BENCH --vary name=a,b`: a thin layer over `mdlm_probe.runs.invariance.run_invariance`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.markup import escape

from mdlm_probe.core.checkpoints import DEFAULT_CKPT
from mdlm_probe.core.rundir import default_out
from mdlm_probe.report.render import diff_segments
from mdlm_probe.runs.invariance import csv_rows, run_invariance
from .eval import check_names
from .options import BENCHMARK_HELP, CKPT_HELP, console, load_options, sampler_options, warnings_to_stderr
from .tables import Col, check_format, format_option, print_result, print_table


@load_options(("device", "dtype", "adapter"), note=" (unless varied).")
@sampler_options
def invariance(
    benchmark: str = typer.Argument(..., help=BENCHMARK_HELP),
    ckpt: str = typer.Option(DEFAULT_CKPT, "--ckpt", help=CKPT_HELP),
    vary: List[str] = typer.Option(..., "--vary", help="name=a,b[,...]: a sampler setting (batch-size, cache, "
                                   "threshold, ...) or dtype / device; the first value is the baseline. Repeatable."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Decode the first N samples only."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for invariance.json / .csv and runs/<variant>/ "
                                       "(default runs/invariance/<bench>-<ckpt>)."),
    load_opts: dict = None,
    boot_seed: int = typer.Option(0, "--boot-seed", help="Bootstrap seed."),
    show_ids: int = typer.Option(5, "--show-ids", help="Changed outputs printed (with their diff) per variant."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace sub-runs with a different config."),
    fmt: str = format_option(),
    sampler: dict = None,
):
    """Decode the same problems under each variant; identical outputs, paired accuracy difference, flips."""
    check_format(fmt)
    check_names(ckpt, benchmark, sampler, None, load_opts["adapter"])
    out = out or default_out("invariance", benchmark, [ckpt])
    with warnings_to_stderr():
        res = run_invariance(ckpt, benchmark, out, vary, sampler_overrides=sampler, limit=limit, seed=boot_seed,
                             overwrite=overwrite, progress="auto", **load_opts)
    print_result(res, fmt, lambda r: csv_rows(r["variants"]), lambda: print_invariance(res, out, show_ids))


def diff_markup(a: str, b: str) -> tuple[str, str]:
    """The two texts with what only the baseline has in red and what only the variant has in green."""
    left, right = diff_segments(a, b)
    style = {"": "", "del": "red", "ins": "green"}
    return tuple("".join(f"[{style[s['cls']]}]{escape(s['text'])}[/]" if s["cls"] else escape(s["text"])
                         for s in side) for side in (left, right))


def print_invariance(res: dict[str, Any], out: Path, show_ids: int) -> None:
    base = ", ".join(f"{k}={v}" for k, v in res["base"].items())
    rows = [{"variant": r["variant"], "n": str(r["n"]), "acc": f"{r['accuracy']:.3f}"} if r["variant"] == "base" else
            {"variant": r["variant"], "n": str(r["n"]), "acc": f"{r['accuracy']:.3f}",
             "same": f"{r['identical']}/{r['n']}", "diff": f"{r['diff']:+.3f}",
             "ci": f"[{r['diff_ci'][0]:+.3f}, {r['diff_ci'][1]:+.3f}]", "p": f"{r['mcnemar_p']:.3g}",
             "flips": f"+{len(r['variant_right_base_wrong'])}/-{len(r['base_right_variant_wrong'])}"}
            for r in res["variants"]]
    cols = [Col("variant", "variant"), Col("n", "n", justify="right"), Col("accuracy", "acc", justify="right"),
            Col("identical", "same", justify="right"), Col("diff", "diff", justify="right"),
            Col("95% CI", "ci", justify="right"), Col("McNemar p", "p", justify="right"),
            Col("flips", "flips", justify="right")]
    print_table(console, f"{res['benchmark']} {res['ckpt']}: each variant against the baseline ({base})", cols, rows,
                legend="identical: outputs equal to the baseline's; diff: variant - baseline accuracy, paired "
                       "bootstrap CI; flips: +right only in the variant / -right only in the baseline")
    for r in res["variants"][1:]:
        for c in r["changed"][:show_ids]:
            a, b = diff_markup(c["text_base"], c["text"])
            verdict = "" if c["correct"] == c["correct_base"] else \
                f" (verdict flips: {'right' if c['correct_base'] else 'wrong'} -> {'right' if c['correct'] else 'wrong'})"
            console.print(f"{r['variant']} {c['id']}{verdict}\n  base:    {a}\n  variant: {b}", highlight=False,
                          soft_wrap=True)
        if len(r["changed"]) > show_ids:
            console.print(f"{r['variant']}: +{len(r['changed']) - show_ids} more changed outputs", highlight=False)
    console.print(f"[dim]wrote {out / 'invariance.json'} and {out / 'invariance.csv'}[/]", highlight=False,
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(name="invariance")(invariance)
