"""Shared fixtures: the tiny-random checkpoint, the ../shared data folder (skipped when absent); tests/helpers on the path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")  # before torch loads (through mdlm_probe, below)
# Test helpers (checkpoint builders: standins, arch_checkpoints, dream_golden_checkpoint) are imported by name
# from every test folder. The test folders mirror the packages and have no __init__.py, so test file names
# must stay unique across them.
sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))

from mdlm_probe import load_model  # noqa: E402
from mdlm_probe.cli import main  # noqa: E402

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
    return load_model("tiny-random")


@pytest.fixture
def load_data_file(tmp_path):
    """Load a benchmark from a data file written here: `load_data_file("gsm8k", "test.jsonl", content)` (str or
    bytes) returns the samples, or raises what loading that file raises (BadInput for bad data)."""
    from mdlm_probe.tasks.benchmarks import get_benchmark

    def load(benchmark: str, name: str, content: str | bytes):
        f = tmp_path / name
        if isinstance(content, bytes):
            f.write_bytes(content)
        else:
            f.write_text(content)
        return get_benchmark(benchmark, data_file=f).load()

    return load


@pytest.fixture
def cli():
    """Run the CLI in-process: `cli("eval", "synthetic", ...)` returns the exit code (0, 1 or 2). Read what it
    printed with pytest's `capsys` (`capsys.readouterr().out` / `.err`)."""
    def run(*args: str) -> int:
        return main(list(args))

    return run


@pytest.fixture(autouse=True)
def _lm_eval_log_to_this_tests_stderr():
    """lm-eval's CLI adds one StreamHandler per process, bound to the sys.stderr of the test that first ran it;
    pytest swaps sys.stderr per test and closes the old one, so point that handler at this test's stream (in a
    real run there is one command per process and nothing to do)."""
    import logging

    for h in logging.getLogger("lm_eval").handlers:
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            h.stream = sys.stderr  # not setStream: it flushes the old stream, which pytest has closed
    yield
