"""Options several commands share, with one default each (the values live in mdlm_probe.rundir, which
the library uses too), so `eval`, `shift` and `generate` cannot drift apart."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterator

import typer
from rich.console import Console

from ..adapters import adapter_names
from ..benchmarks import DATA_ENV
from ..errors import BadInput
from ..presets import apply_preset, get_preset
from ..rundir import DEFAULT_CHAT, RUNS_ROOT

# Its own stderr console, not cli's: cli.py may import this module (generate's --chat) without a cycle.
_err = Console(stderr=True)


def choices(names) -> str:
    """'a, b or c' for a help text."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


ADAPTER_HELP = f"Force an adapter: {choices(adapter_names())}."


def adapter_option() -> Any:
    return typer.Option(None, "--adapter", help=ADAPTER_HELP)


def device_option(note: str = "") -> Any:
    return typer.Option(None, "--device", help=f"cpu, cuda, cuda:1 ...{note}")


def dtype_option(note: str = "") -> Any:
    return typer.Option(None, "--dtype", help="float32, bfloat16, ..." + note if note
                        else "float32, bfloat16, float16, float64.")


def chat_option(default: bool | None = DEFAULT_CHAT) -> Any:
    """None as the default: the command tells "not given" apart (a --preset may then set it)."""
    return typer.Option(default, "--chat/--no-chat", help="Use the tokenizer's chat template when it has one"
                        + (f" (default: the preset's, else {DEFAULT_CHAT})." if default is None else "."))


def preset_option() -> Any:
    return typer.Option(None, "--preset", help="Published settings for a model and benchmark (`mdlm-probe presets` "
                        "lists them); options given on the command line win over it.")


def with_preset(preset: str | None, benchmark: str | None, chat: bool | None,
                sampler: dict | None) -> tuple[str | None, str | None, bool, dict | None]:
    """(model, benchmark, chat, sampler settings) once `preset` fills what the command line left out."""
    if preset is None:
        return None, benchmark, DEFAULT_CHAT if chat is None else chat, sampler
    p = get_preset(preset)
    if benchmark is not None and benchmark != p.benchmark:
        raise BadInput(f"--preset {preset} was published for {p.benchmark}, not {benchmark}")
    chat = chat if chat is not None else (p.chat if p.chat is not None else DEFAULT_CHAT)
    return p.model, p.benchmark, chat, apply_preset(preset, sampler)


def out_option(command: str) -> Any:
    return typer.Option(None, "--out", help=f"Run directory (default {RUNS_ROOT}/{command}/<bench>-<ckpt>).")


def data_dir_option() -> Any:
    return typer.Option(None, "--data-dir", help=f"Folder laid out like ../shared/data (gsm8k/test.jsonl, ...), used "
                        f"when --data-file is not given (default: ${DATA_ENV}); else the Hub.")


@contextlib.contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """Library warnings (skipped lines, records without a reference) as `mdlm-probe: warning: ...` lines."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        _err.print(f"mdlm-probe: warning: {message}", highlight=False, soft_wrap=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield
