"""Layer 6: the `mdlm-probe` command line (`app.py`), one module per command, shared options in `options.py`.

`main` and `entry` are imported on first use (PEP 562), so that `python -m mdlm_probe.cli.lm_eval` and a
script importing one command module do not build the whole command line first.
"""

from __future__ import annotations

__all__ = ["main", "entry"]


def __getattr__(name: str):
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
