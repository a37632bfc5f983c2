"""`mdlm-probe lm-eval -- <lm_eval args>`: lm-evaluation-harness with the `mdlm_probe` model registered."""

from __future__ import annotations

from typing import List, Optional

import typer


def lm_eval(
    ctx: typer.Context,
    args: Optional[List[str]] = typer.Argument(None, help="Arguments for lm-eval (put them after `--`)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Published settings (`mdlm-probe presets`): the "
                                         "sampler settings as model_args, and the task, few-shot count and chat "
                                         "template lm-eval ran with where the arguments after `--` leave them out."),
):
    """Run lm-evaluation-harness on a checkpoint: `mdlm-probe lm-eval -- --model_args pretrained=tiny-ce --tasks gsm8k`.

    Everything after `--` goes to lm-eval's CLI unchanged; `--model mdlm_probe` is added when no
    --model is given, and `--preset NAME` fills what those arguments leave out. See docs/lm_eval.md for
    the model_args and for tasks on local files (offline).
    """
    # lm-eval is an optional dependency (mdlm-probe[lm-eval]) that harness.py imports at once: imported
    # here so that the other commands run without it.
    from ..harness import run_lm_eval_cli

    code = run_lm_eval_cli([*(args or []), *ctx.args], preset=preset)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(name="lm-eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(lm_eval)
