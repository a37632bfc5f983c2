"""`mdlm-probe report RUN_DIR... --out reports/NAME`: one self-contained HTML page plus its CSV tables."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from mdlm_probe.report import build_report
from .options import console


def report(
    run_dirs: List[Path] = typer.Argument(..., help="Run directories of eval, shift or errors."),
    out: Path = typer.Option(Path("reports/report"), "--out", help="Report folder: index.html and CSV tables."),
    title: Optional[str] = typer.Option(None, "--title", help="Page title (default: the run names)."),
):
    """Build an HTML report (opens from disk, no server or network) from run directories."""
    path = build_report(run_dirs, out, title=title)
    console.print(f"report: {path}  (open it in a browser: file://{path.resolve()})", markup=False, highlight=False,
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(name="report")(report)
