"""`mdlm-probe train`: train with CE or CTC+CE; the options are `TrainConfig`'s fields."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from mdlm_probe.core.workers import set_threads
from mdlm_probe.runs.train import TrainConfig, train as run_train
from .options import THREADS_HELP, config_options, console, err_console


@config_options(TrainConfig, "cfg", panel="Training (TrainConfig)")
def train(
    out: Path = typer.Option(..., "--out", help="Output folder: becomes a checkpoint folder usable with --ckpt."),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    cfg: TrainConfig = None,
):
    """Train with CE or CTC+CE (full or LoRA; multi-process under `accelerate launch`); resumes after a kill."""
    set_threads(threads)
    cfg.validate()  # bad settings are one line, before anything is announced
    if cfg.eval_n > 0 and cfg.data == "synthetic" and os.environ.get("RANK", "0") == "0":
        # said up front: the held-out eval can take longer than a short training run
        err_console.print(f"train: {cfg.steps} steps, then {cfg.eval_n} held-out problems scored "
                          f"(--eval-n 0 skips them)", markup=False, highlight=False)
    side = run_train(cfg, out, progress="auto")
    if os.environ.get("RANK", "0") != "0":  # under accelerate launch: the main process reports
        return
    held = side.get("heldout") or {}
    what = "checkpoint"
    if side.get("lora"):
        what = "LoRA adapter" + (f" (merged checkpoint: {out / 'merged'})" if cfg.merge else "")
    console.print(f"[bold]saved[/] {escape(f'{what} {out}')}  held-out accuracy: {held.get('accuracy', 'not measured')}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(train)
