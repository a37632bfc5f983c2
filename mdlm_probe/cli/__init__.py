"""Layer 6: the `mdlm-probe` command line (`app.py`), one module per command, shared options in `options.py`.

`main` is imported on first use (PEP 562) and `entry` imports it when called, so that
`python -m mdlm_probe.cli.lm_eval` and a script importing one command module do not build the whole
command line first.
"""

from __future__ import annotations

__all__ = ["main", "entry"]
LAZY = ("main",)


def entry() -> None:
    """The console script. Ctrl-C while the command line is still importing (torch, transformers: seconds)
    ends as one line too, not an import traceback."""
    import sys

    try:
        from .app import main
    except KeyboardInterrupt:
        print("mdlm-probe: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    sys.exit(main())


def __getattr__(name: str):
    if name in LAZY:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
