"""`mdlm-probe lm-eval -- <lm_eval args>`: lm-evaluation-harness with the `mdlm_probe` model registered.

The command and `python -m mdlm_probe.cli.lm_eval <lm_eval args>` (for `accelerate launch` and `torchrun`)
share the argument handling here: `--model mdlm_probe` added when no model is named, a `--preset` filling
what the arguments leave out, an unreachable Hub detected before lm-eval retries. The model class itself is
`mdlm_probe.runs.lm_eval_model`, imported on use: it imports lm-eval, an optional dependency
(mdlm-probe[lm-eval]), at once, and the other commands run without it.
"""

from __future__ import annotations

import sys
from typing import Iterable, List, Optional

import typer

from mdlm_probe.core.exceptions import BadInput, first_line
from mdlm_probe.core.hub import go_offline, hub_reachable
from mdlm_probe.runs.settings import check_preset
from mdlm_probe.tasks.presets import get_preset


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
    code = run_lm_eval_cli([*(args or []), *ctx.args], preset=preset)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(name="lm-eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(lm_eval)


def _model():
    """mdlm_probe.runs.lm_eval_model, imported on use (it imports lm-eval at once)."""
    from mdlm_probe.runs import lm_eval_model

    return lm_eval_model


def _with_default_model(argv: list[str]) -> list[str]:
    """`run` without --model (or a --config) means our model."""
    if not argv or argv[0] in ("ls", "validate", "-h", "--help"):
        return argv
    given = any(a in ("--model", "-M", "--config", "-C") or a.startswith(("--model=", "--config=")) for a in argv)
    return argv if given else [*argv, "--model", _model().MODEL_NAME]


def _flag(argv: list[str], *names: str) -> int | None:
    """Index of the first `--name` or `--name=value` in argv, None if absent."""
    for i, a in enumerate(argv):
        if a in names or a.startswith(tuple(n + "=" for n in names)):
            return i
    return None


def model_args_preset(argv: list[str]) -> str | None:
    """The `preset=NAME` in --model_args, if any."""
    i = _flag(argv, "--model_args", "-a")
    if i is None:
        return None
    value = argv[i].split("=", 1)[1] if argv[i].startswith("--model_args=") else (argv[i + 1] if i + 1 < len(argv) else "")
    found = [kv.split("=", 1)[1].strip() for kv in value.split(",") if kv.strip().startswith("preset=")]
    return found[-1] if found else None


def with_preset_args(argv: list[str], preset: str, in_model_args: bool = False) -> list[str]:
    """lm-eval arguments once `preset` fills what they leave out: `preset=NAME` (and the preset's model as
    `pretrained` when none is given) in --model_args, the published task as --tasks, its few-shot count as
    --num_fewshot, --apply_chat_template when it was published with the chat template, and with the chat
    template its few-shot layout (`--fewshot_as_multiturn false` for a preset that put the shots in one user
    turn, as Fast-dLLM's eval_llada.py did; lm-eval >= 0.4.10 turns multi-turn on with the template).
    Arguments given win. `in_model_args`: the preset came as `preset=NAME` in --model_args (left there)."""
    p = get_preset(preset)
    argv = list(argv)
    m = _flag(argv, "--model", "-M")
    if m is not None:
        model = argv[m].split("=", 1)[1] if "=" in argv[m] else (argv[m + 1] if m + 1 < len(argv) else "")
        if model != _model().MODEL_NAME:
            raise BadInput(f"--preset needs --model {_model().MODEL_NAME}, not {model!r}")
    i = _flag(argv, "--model_args", "-a")
    if in_model_args:
        pass  # the model class reads preset= itself; pretrained= given or the preset's (MDLMProbeLM)
    elif i is None:
        argv += ["--model_args", f"pretrained={p.model},preset={preset}"]
    else:
        inline = argv[i].startswith("--model_args=")
        value = argv[i].split("=", 1)[1] if inline else argv[i + 1]
        keys = {kv.split("=", 1)[0].strip() for kv in value.split(",") if kv.strip()}
        if "preset" in keys:
            raise BadInput("give the preset once: --preset or preset= in --model_args")
        value = ",".join([*([value] if value.strip() else []), *([] if "pretrained" in keys else
                                                                 [f"pretrained={p.model}"]), f"preset={preset}"])
        argv[i: i + (1 if inline else 2)] = ["--model_args", value]
    if _flag(argv, "--tasks", "-t") is None:
        if p.lm_eval_task is None:
            raise BadInput(f"--preset {preset} was published outside lm-eval (no lm-eval task); give --tasks")
        argv += ["--tasks", p.lm_eval_task]
    if _flag(argv, "--num_fewshot", "-f") is None and p.num_fewshot is not None:
        argv += ["--num_fewshot", str(p.num_fewshot)]
    if _flag(argv, "--apply_chat_template") is None and p.chat:
        argv += ["--apply_chat_template"]
    turns = p.settings.get("fewshot_as_multiturn")
    if turns is not None and _flag(argv, "--apply_chat_template") is not None \
            and _flag(argv, "--fewshot_as_multiturn") is None:
        argv += ["--fewshot_as_multiturn", "true" if turns else "false"]
    check_preset(p, "lm-eval", None)  # after the arguments' own mistakes: a protocol field lm-eval cannot reproduce
    return argv


OFFLINE_HINT = ("lm-eval's tasks read their data from the Hugging Face Hub: run where the Hub is reachable, "
                "from a filled cache with HF_HUB_OFFLINE=1, or on local files with a task YAML over them "
                "(--include_path DIR; docs/lm_eval.md, 'Tasks on local files')")


def _connection_errors() -> tuple[type, ...]:
    """What lm-eval raises when a task's data cannot be fetched: the built-in ConnectionError (datasets,
    huggingface_hub's OfflineModeIsEnabled) or requests' own (an optional dependency, hence the guard)."""
    try:
        from requests.exceptions import ConnectionError as RequestsConnectionError
    except ImportError:
        return (ConnectionError,)
    return (ConnectionError, RequestsConnectionError)


def run_lm_eval_cli(argv: Iterable[str], preset: str | None = None) -> int:
    """Register the model and run lm-eval's CLI with `argv` (what follows `lm-eval`); returns its exit code.
    `preset` fills the arguments argv leaves out (`with_preset_args`). An unreachable Hub is detected first
    (no retries) and a failed data download is one BadInput line."""
    argv = list(argv)
    if preset:
        argv = with_preset_args(argv, preset)
    elif (named := model_args_preset(argv)) is not None:  # --model_args preset=NAME applies the whole preset too
        argv = with_preset_args(argv, named, in_model_args=True)
    _model().register()
    from lm_eval.__main__ import cli_evaluate

    if not hub_reachable():
        go_offline()  # the Hub clients read their cache only, at once, instead of retrying
    saved = sys.argv
    sys.argv = ["lm-eval", *_with_default_model(list(argv))]
    try:
        cli_evaluate()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except _connection_errors() as e:
        first = first_line(e)
        raise BadInput(f"lm-eval could not fetch a task's data ({first}); {OFFLINE_HINT}") from None
    except ValueError as e:
        if not str(e).startswith("Tasks not found"):  # lm-eval's word for an unknown --tasks name
            raise
        raise BadInput(f"lm-eval: {first_line(e)} (`mdlm-probe lm-eval -- ls tasks` lists them; tasks on local "
                       f"files need --include_path DIR)") from None
    finally:
        sys.argv = saved
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        rc = run_lm_eval_cli(sys.argv[1:] if argv is None else argv)
    except BadInput as e:
        print(f"mdlm-probe: error: {e}", file=sys.stderr)
        return 2
    # Under torchrun, a gloo group left alive at interpreter exit can abort a rank that finished its work
    # ("terminate called without an active exception", pytorch#190489). Only after success: a rank that
    # failed must not wait in a collective teardown for peers that may never arrive.
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return rc


if __name__ == "__main__":
    sys.exit(main())
