"""`mdlm-probe dynamics RUN_DIR...`: a thin layer over `mdlm_probe.runs.dynamics`."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from mdlm_probe.runs.dynamics import DYNAMICS, DYNAMICS_SUMMARY, analyse_runs, format_tables
from .options import console


def dynamics_command(
    runs: List[Path] = typer.Argument(..., help="Run directories (eval, shift, lm-eval) whose records keep trajectories."),
    quiet: bool = typer.Option(False, "--quiet", help="Print only where the files went, not the tables."),
):
    """Decoding dynamics from the records' trajectories: commit order, EOS, numbers, artifact origins, predictors of
    a wrong answer, cache drift. Writes dynamics.jsonl and dynamics_summary.csv into each run directory."""
    results = analyse_runs(runs)
    if not quiet:
        console.print(format_tables(results), highlight=False, soft_wrap=True, markup=False)
    for r in results:
        console.print(f"{r.dir}/{DYNAMICS} ({len(r.rows)} records), {r.dir}/{DYNAMICS_SUMMARY}", highlight=False,
                      soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(name="dynamics")(dynamics_command)
