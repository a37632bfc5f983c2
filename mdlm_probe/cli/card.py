"""`mdlm-probe card RUN`: print a run's card (what decides its numbers) as Markdown."""

from __future__ import annotations

from pathlib import Path

import typer

from mdlm_probe.core.cards import card_markdown
from mdlm_probe.core.rundir import load_config


def card(run_dir: Path = typer.Argument(..., help="An eval or shift run directory.")):
    """Print the run card: code commit, versions, device, dtype, hashes, overrides, scorer."""
    # plain print, not rich: the Markdown must come out verbatim (rich would read [..] as markup)
    print(card_markdown(load_config(run_dir), title=run_dir.name), end="")


def register(app: typer.Typer) -> None:
    app.command(name="card")(card)
