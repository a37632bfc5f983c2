"""Run directories: `config.json` is the single source of truth for a run, saved beside its results.

Rerunning into a directory whose config differs is bad input unless `overwrite`; the same config
resumes (the record files skip ids already present).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import shutil
from pathlib import Path
from typing import Any

from .errors import BadInput

# Keys that may differ between a run and its resumption without changing its results.
VOLATILE = ("created", "versions", "resumed", "num_processes", "shard")


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("mdlm-probe", "torch", "transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in VOLATILE}


def prepare_run_dir(out: Path | str, config: dict[str, Any], overwrite: bool = False,
                    outputs: tuple[str, ...] = ()) -> Path:
    """Create or reopen a run directory for `config`.

    - new directory: writes config.json;
    - same config: resumes (returns the directory untouched);
    - different config: BadInput, unless `overwrite`, which removes `outputs` and starts fresh.
    """
    out = Path(out)
    cfg_path = out / "config.json"
    config = json.loads(json.dumps(config, default=str))  # normalise (tuples -> lists, paths -> str)
    if cfg_path.is_file():
        try:
            old = json.loads(cfg_path.read_text())
        except json.JSONDecodeError:
            old = None
        if old is not None and _comparable(old) == _comparable(config):
            return out
        if not overwrite:
            diff = sorted(k for k in set(_comparable(config)) | set(_comparable(old or {}))
                          if (old or {}).get(k) != config.get(k))
            raise BadInput(f"{out} holds a run with a different config (differs in: {', '.join(diff) or 'format'}); "
                           f"use --overwrite or another --out")
        for name in outputs:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    config = dict(config)
    config.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    config.setdefault("versions", package_versions())
    cfg_path.write_text(json.dumps(config, indent=2) + "\n")
    return out


def load_config(run_dir: Path | str) -> dict[str, Any]:
    p = Path(run_dir) / "config.json"
    if not p.is_file():
        raise BadInput(f"{run_dir} is not a run directory (no config.json)")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise BadInput(f"corrupt {p}: {e}") from None
