"""Options several commands share, with one default each (the values live in mdlm_probe.rundir, which
the library uses too), so `eval`, `shift` and `generate` cannot drift apart."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterator

import typer
from rich.console import Console

from ..benchmarks import DATA_ENV
from ..rundir import DEFAULT_CHAT, RUNS_ROOT

# Its own stderr console, not cli's: cli.py may import this module (generate's --chat) without a cycle.
_err = Console(stderr=True)


def chat_option() -> Any:
    return typer.Option(DEFAULT_CHAT, "--chat/--no-chat", help="Use the tokenizer's chat template when it has one.")


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
