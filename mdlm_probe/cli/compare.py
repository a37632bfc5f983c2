"""`mdlm-probe compare RUN_A RUN_B [...]`: paired comparison of runs on the samples they share."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table

from mdlm_probe.runs import miners
from mdlm_probe.runs.compare import write_compare
from .options import console, err_console, warnings_to_stderr


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
):
    """Accuracy with Wilson CIs, paired bootstrap difference, exact McNemar, pattern rates, flipped ids."""
    patterns = miners.resolve_patterns(pattern)
    with warnings_to_stderr():
        res, out = write_compare(run_dirs, out, force=force, patterns=patterns, seed=seed, ckpts=ckpt or ())
    print_compare(res, out, show_ids)


def print_compare(res: dict[str, Any], out: Path, show_ids: int) -> None:
    """What was compared (notes on stderr), the accuracy table, one table per pair, the flipped ids."""
    for n in res["notes"]:
        err_console.print(f"mdlm-probe: note: {n}", highlight=False, soft_wrap=True)
    console.print(f"comparing {res['compared']}", highlight=False, soft_wrap=True)
    t = Table(title=f"accuracy on {res['n_compared']} shared samples")
    for c in ("run", "ckpt", "collapse", "correct", "accuracy", "95% CI"):
        t.add_column(c, overflow="fold")
    for a in res["runs"]:
        t.add_row(a["run"], str(a["ckpt"]), str(a["collapse"]), f"{a['correct']}/{a['n']}", f"{a['accuracy']:.3f}",
                  f"[{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]")
    console.print(t)
    for p in res["pairs"]:
        t = Table(title=f"{p['b']} minus {p['a']} (paired, n={p['n']})")
        for c in ("metric", p["a"], p["b"], "diff", "95% bootstrap CI", "McNemar p"):
            t.add_column(c, overflow="fold")
        acc = {a["run"]: a["accuracy"] for a in res["runs"]}
        t.add_row("accuracy", f"{acc[p['a']]:.3f}", f"{acc[p['b']]:.3f}", f"{p['diff']:+.3f}",
                  f"[{p['diff_ci'][0]:+.3f}, {p['diff_ci'][1]:+.3f}]", f"{p['mcnemar_p']:.3g}")
        for name, q in p["patterns"].items():
            t.add_row(f"rate {name}", f"{q['rate_a']:.3f}", f"{q['rate_b']:.3f}", f"{q['diff']:+.3f}",
                      f"[{q['diff_ci'][0]:+.3f}, {q['diff_ci'][1]:+.3f}]", f"{q['mcnemar_p']:.3g}")
        console.print(t)
        for label, ids in ((f"right in {p['b']}, wrong in {p['a']}", p["b_right_a_wrong"]),
                           (f"right in {p['a']}, wrong in {p['b']}", p["a_right_b_wrong"])):
            more = f" (+{len(ids) - show_ids} more)" if len(ids) > show_ids else ""
            console.print(f"{label}: {len(ids)}  {' '.join(ids[:show_ids])}{more}", highlight=False, soft_wrap=True)
    console.print(f"[dim]wrote {out / 'compare.json'} and {out / 'compare.csv'}[/]", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(name="compare")(compare)
