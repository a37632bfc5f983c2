"""`mdlm-probe compare RUN_A RUN_B [...]`: paired comparison of runs on the samples they share."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from mdlm_probe.runs import miners
from mdlm_probe.runs.compare import compare_rows, write_compare
from .options import console, err_console, warnings_to_stderr
from .tables import Col, check_format, format_option, print_result, print_table


def compare(
    run_dirs: List[Path] = typer.Argument(..., help="Two or more run directories (or one shift run holding several "
                                          "checkpoints); each is compared with the first."),
    force: bool = typer.Option(False, "--force", help="Compare even when benchmark or sampler settings differ."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for compare.json / compare.csv "
                                       "(default: compare_<A>_vs_<B>... beside RUN_A)."),
    pattern: str = typer.Option("all", "--pattern", help="Failure patterns whose rates are compared: all, or "
                                 f"names ({', '.join(miners.DETECTORS)})."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    show_ids: int = typer.Option(10, "--show-ids", help="Flipped ids printed per direction."),
    ckpt: Optional[List[str]] = typer.Option(None, "--ckpt", help="Checkpoint(s) to compare in runs holding several "
                                             "(default: each checkpoint against itself across the runs, or a "
                                             "single run's checkpoints against its first)."),
    fmt: str = format_option(),
):
    """Accuracy with Wilson CIs, paired bootstrap difference, exact McNemar, pattern rates, flipped ids."""
    check_format(fmt)
    patterns = miners.resolve_patterns(pattern)
    with warnings_to_stderr():
        res, out = write_compare(run_dirs, out, force=force, patterns=patterns, seed=seed, ckpts=ckpt or ())
    print_result(res, fmt, compare_rows, lambda: print_compare(res, out, show_ids))


def print_compare(res: dict[str, Any], out: Path, show_ids: int) -> None:
    """What was compared (notes on stderr), the accuracy table, one table per pair, the flipped ids."""
    for n in res["notes"]:
        err_console.print(f"mdlm-probe: note: {n}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"comparing {res['compared']}", markup=False, highlight=False, soft_wrap=True)
    print_table(console, f"accuracy on {res['n_compared']} shared samples", [
        Col("run", "run"), Col("ckpt", "ckpt"), Col("collapse", "collapse"), Col("correct", "correct", justify="right"),
        Col("accuracy", "accuracy", lambda x: f"{x:.3f}", "right"), Col("95% CI", "ci_text", justify="right")],
        [{**a, "correct": f"{a['correct']}/{a['n']}", "ci_text": f"[{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]"}
         for a in res["runs"]])
    acc = {a["run"]: a["accuracy"] for a in res["runs"]}
    cols = [Col("metric", "metric"), Col("a", "a", justify="right"), Col("b", "b", justify="right"),
            Col("b - a", "diff", justify="right"), Col("95% bootstrap CI", "ci", justify="right"),
            Col("McNemar p", "p", justify="right")]
    for p in res["pairs"]:
        rows = [("accuracy", acc[p["a"]], acc[p["b"]], p)] + [(f"rate {n}", q["rate_a"], q["rate_b"], q)
                                                               for n, q in p["patterns"].items()]
        print_table(console, f"{p['b']} minus {p['a']} (paired, n={p['n']})", cols,
                    [{"metric": m, "a": f"{va:.3f}", "b": f"{vb:.3f}", "diff": f"{q['diff']:+.3f}",
                      "ci": f"[{q['diff_ci'][0]:+.3f}, {q['diff_ci'][1]:+.3f}]", "p": f"{q['mcnemar_p']:.3g}"}
                     for m, va, vb, q in rows], legend=f"a: {p['a']}; b: {p['b']}")
        for label, ids in ((f"right in {p['b']}, wrong in {p['a']}", p["b_right_a_wrong"]),
                           (f"right in {p['a']}, wrong in {p['b']}", p["a_right_b_wrong"])):
            more = f" (+{len(ids) - show_ids} more)" if len(ids) > show_ids else ""
            console.print(f"{label}: {len(ids)}  {' '.join(ids[:show_ids])}{more}", markup=False, highlight=False,
                          soft_wrap=True)
    console.print(f"wrote {out / 'compare.json'} and {out / 'compare.csv'}", style="dim", markup=False, highlight=False,
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(name="compare")(compare)
