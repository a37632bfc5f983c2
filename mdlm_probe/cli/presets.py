"""`mdlm-probe presets`: list the published presets with the score published with each."""

from __future__ import annotations

import typer
from rich.table import Table

from mdlm_probe.tasks.presets import load_presets
from .options import console

KEY_SETTINGS = ("gen_length", "steps", "block_length", "threshold", "cache", "remasking", "temperature", "top_p",
                "confidence_eos_eot_inf", "logits_eos_inf", "num_fewshot", "chat", "lm_eval_task")


def presets() -> None:
    """List the presets `--preset` accepts: model, benchmark, key settings, published score and its source."""
    table = Table("preset", "model", "benchmark", "settings", "published score", "source")
    for name, p in sorted(load_presets().items()):
        settings = " ".join(f"{k}={p.settings[k]}" for k in KEY_SETTINGS if p.settings.get(k) is not None)
        table.add_row(name, p.model, p.benchmark, settings, p.score_text,
                      p.score["source"])
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command(name="presets")(presets)
