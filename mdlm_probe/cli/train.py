"""`mdlm-probe train`: train with CE or CTC+CE; the options are `TrainConfig`'s fields."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from mdlm_probe.core.workers import set_threads
from mdlm_probe.runs.train import TrainConfig, train as run_train
from .options import THREADS_HELP, config_options, console


@config_options(TrainConfig, "cfg", panel="Training (TrainConfig)")
def train(
    out: Path = typer.Option(..., "--out", help="Output folder: becomes a checkpoint folder usable with --ckpt."),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    cfg: TrainConfig = None,
):
    """Train with CE or CTC+CE (full or LoRA; multi-process under `accelerate launch`); resumes after a kill."""
    set_threads(threads)
    side = run_train(cfg, out, progress="auto")
    if os.environ.get("RANK", "0") != "0":  # under accelerate launch: the main process reports
        return
    held = side.get("heldout") or {}
    what = "checkpoint"
    if side.get("lora"):
        what = "LoRA adapter" + (f" (merged checkpoint: {out / 'merged'})" if cfg.merge else "")
    console.print(f"[bold]saved[/] {what} {out}  held-out accuracy: {held.get('accuracy', 'not measured')}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(train)
