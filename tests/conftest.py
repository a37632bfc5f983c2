"""Shared fixtures: the tiny-random checkpoint, the ../shared data folder (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs ../shared/data beside the checkout ({SHARED_DATA} is absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_random():
    """The shipped random-weight tiny checkpoint, loaded once."""
    from mdlm_probe import load_model

    return load_model("tiny-random")


@pytest.fixture
def cli():
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from mdlm_probe.cli import main

    def run(*args: str, capsys=None):
        return main(list(args))

    return run
