"""`mdlm-probe compare RUN_A RUN_B [...]`: paired comparison of runs on the samples they share."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table


def compare(
    run_dirs: List[Path] = typer.Argument(..., help="Two or more run directories; each is compared with the first."),
    force: bool = typer.Option(False, "--force", help="Compare even when benchmark or sampler settings differ."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for compare.json / compare.csv "
                                       "(default: compare_<A>_vs_<B>... beside RUN_A)."),
    pattern: str = typer.Option("all", "--pattern", help="Failure patterns whose rates are compared (all, or names)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    show_ids: int = typer.Option(10, "--show-ids", help="Flipped ids printed per direction."),
):
    """Accuracy with Wilson CIs, paired bootstrap difference, exact McNemar, pattern rates, flipped ids."""
    from .. import miners
    from ..cli import console, err_console
    from ..compare import compare_rows, compare_runs, load_run

    patterns = miners.resolve_patterns(pattern)
    runs = []
    for d in run_dirs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs.append(load_run(d))
        for w in caught:
            err_console.print(f"mdlm-probe: warning: {w.message}", highlight=False, soft_wrap=True)
    res = compare_runs(runs, force=force, patterns=patterns, seed=seed)
    for n in res["notes"]:
        err_console.print(f"mdlm-probe: note: {n}", highlight=False, soft_wrap=True)
    out = out or runs[0].dir.parent / ("compare_" + "_vs_".join(r.dir.name for r in runs))
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(res, indent=2) + "\n")
    rows = compare_rows(res)
    with open(out / "compare.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    t = Table(title=f"accuracy on {res['n_compared']} shared samples")
    for c in ("run", "ckpt", "collapse", "correct", "accuracy", "95% CI"):
        t.add_column(c)
    for a in res["runs"]:
        t.add_row(a["run"], str(a["ckpt"]), str(a["collapse"]), f"{a['correct']}/{a['n']}", f"{a['accuracy']:.3f}",
                  f"[{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]")
    console.print(t)
    for p in res["pairs"]:
        t = Table(title=f"{p['b']} minus {p['a']} (paired, n={p['n']})")
        for c in ("metric", p["a"], p["b"], "diff", "95% bootstrap CI", "McNemar p"):
            t.add_column(c)
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
