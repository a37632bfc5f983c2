"""`mdlm-probe card RUN`: print a run's card (what decides its numbers) as Markdown."""

from __future__ import annotations

from pathlib import Path

import typer

from mdlm_probe.core.cards import card_markdown, flatten, run_card
from mdlm_probe.core.rundir import load_config
from .tables import check_format, format_option, print_json, print_records


def card(run_dir: Path = typer.Argument(..., help="An eval or shift run directory."), fmt: str = format_option()):
    """Print the run card: code commit, versions, device, dtype, hashes, overrides, scorer (table: Markdown)."""
    check_format(fmt)
    config = load_config(run_dir)
    if fmt == "json":
        print_json(run_card(config))
    elif fmt == "csv":
        print_records([{"field": k, "value": v} for k, v in flatten(run_card(config)).items()], "csv")
    else:
        # plain print, not rich: the Markdown must come out verbatim (rich would read [..] as markup)
        print(card_markdown(config, title=run_dir.name), end="")


def register(app: typer.Typer) -> None:
    app.command(name="card")(card)
