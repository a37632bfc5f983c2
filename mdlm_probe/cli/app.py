"""The `mdlm-probe` command line: a thin layer over the library (one module per command).

Each command is a module of this package with a `register(app)` function; `COMMANDS` lists them in the
order help shows them. Shared options and consoles are in `options.py`, which the command modules import
(never this module, so there is no cycle). Every command runs inside `main()`, which turns `BadInput` and
every usage error (unknown option or command, missing value) into one line on stderr and exit code 2
(docs/conventions.md).
"""

from __future__ import annotations

import importlib
import sys

import typer

from mdlm_probe import __version__
from mdlm_probe.core.exceptions import BadInput
from . import card, compare, demo, dynamics, errors, eval, frontier, generate, invariance, judge, lm_eval, presets, report, shift, train, tokens
from .options import console, err_console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Evaluate and diagnose masked diffusion language models (LLaDA, Dream, MDLM, tiny CE/CTC models).")

COMMANDS = (generate, train, card, compare, demo, dynamics, errors, eval, frontier, invariance, judge, lm_eval, presets, report, shift, tokens)


def version_callback(value: bool) -> None:
    if value:
        console.print(f"mdlm-probe {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                       help="Print the version and exit.")):
    """Evaluate and diagnose masked diffusion language models (LLaDA, Dream, MDLM, tiny CE/CTC models)."""


for _command in COMMANDS:
    _command.register(app)


# ----------------------------------------------------------------------------------------- main
def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(ClickException, Abort) classes of every click the installed typer may raise: typer >= 0.16 ships
    its own copy as `typer._click`, older ones use `click`. Both are optional imports, hence the guards."""
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            pass
    return (tuple(m.ClickException for m in found),
            tuple(m.Abort for m in found if hasattr(m, "Abort")))  # typer's own copy raises typer.Abort


CLICK_ERRORS, CLICK_ABORTS = _click_exceptions()


def usage_line(e: Exception) -> str:
    """One line for a click usage error: the message, then where help is."""
    msg = " ".join(e.format_message().split())
    ctx = getattr(e, "ctx", None)
    where = f"{ctx.command_path} --help" if ctx is not None else "mdlm-probe --help"
    return f"mdlm-probe: error: {msg} (see '{where}')"


# Commands whose runs resume where they stopped when the same command is run again (records on disk).
RESUMABLE = ("eval", "shift", "train", "demo", "invariance", "frontier")
# What a user's file system says about a path they gave (a file where a folder should be ...): their input.
PATH_ERRORS = (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def interrupted_line(argv: list[str]) -> str:
    """What Ctrl-C prints: how to go on, for the commands that resume."""
    command = next((a for a in argv if not a.startswith("-")), "")
    if command in RESUMABLE:
        return "mdlm-probe: interrupted: rerun the same command to resume (what was written is kept)"
    return "mdlm-probe: interrupted"


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 2 bad input or usage error (one line), 130 interrupted, 1 internal error."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="mdlm-probe")
    except BadInput as e:
        # markup=False: a message quoting `pip install 'mdlm-probe[lm-eval]'` or a path with [brackets]
        # must print as it is, not as console markup
        err_console.print(f"mdlm-probe: error: {e}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except PATH_ERRORS as e:
        where = f"{e.filename}: " if e.filename else ""
        err_console.print(f"mdlm-probe: error: {where}{e.strerror or e}", markup=False, highlight=False,
                          soft_wrap=True)
        return 2
    except KeyboardInterrupt:  # raised outside typer's own catch (it turns Ctrl-C into Exit(130))
        print(interrupted_line(args), file=sys.stderr, flush=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except (typer.Abort, *CLICK_ABORTS):
        err_console.print("mdlm-probe: aborted")
        return 130
    except CLICK_ERRORS as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `mdlm-probe` alone: the help was already printed
            return 2
        print(usage_line(e), file=sys.stderr)
        return 2
    # Without standalone mode, click returns the code of an `Exit` it caught (--help, --version; 130: typer
    # turned Ctrl-C into Exit(130)) or the command's return value (None).
    if rv == 130:
        print(interrupted_line(args), file=sys.stderr, flush=True)
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    sys.exit(main())
