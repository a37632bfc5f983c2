"""The command line's edges: usage errors, --version, help texts from the registries, the order of checks,
train options from TrainConfig, --threads.

Usage errors are checked through the installed `mdlm-probe` console script (what a user types), not only in
process: the script is where a traceback used to escape (typer raises its own copy of click's errors).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import typer

import mdlm_probe
from mdlm_probe.cli import options as cli_options, train as train_command
from mdlm_probe.adapters import adapter_names
from mdlm_probe.tasks.benchmarks import benchmark_names
from mdlm_probe.core.checkpoints import shipped_names
from mdlm_probe.cli.app import CLICK_ERRORS, app, main
from mdlm_probe.core.collapse import COLLAPSES
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.miners import DETECTORS
from mdlm_probe.decoding import CACHES, REMASKING
from mdlm_probe.runs.train import TrainConfig
from mdlm_probe.core.workers import choose_threads

SCRIPT = shutil.which("mdlm-probe", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def script(*args: str, env: dict | None = None, timeout: int = 120) -> tuple[int, str, str]:
    assert SCRIPT, "the mdlm-probe console script is not installed (pip install -e .)"
    p = subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "COLUMNS": "200", **(env or {})})
    return p.returncode, p.stdout, p.stderr


# ----------------------------------------------------------------------------------------- usage errors
USAGE_ERRORS = [
    (("eval", "synthetic", "--limt", "3"), ["No such option: --limt", "--limit", "mdlm-probe eval --help"]),
    (("evl", "synthetic"), ["No such command 'evl'"]),
    (("eval", "synthetic", "--limit"), ["'--limit' requires an argument"]),
    (("eval",), ["Missing argument"]),
    (("generate", "--gen-length", "many"), ["Invalid value for '--gen-length'"]),
    (("--verison",), ["No such option: --verison"]),
]


@pytest.mark.parametrize("args,says", USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_error_is_one_line_exit_2_through_the_console_script(args, says):
    rc, out, err = script(*args)
    assert rc == 2, err
    assert "Traceback" not in err and out == ""
    assert err.strip().count("\n") == 0, err
    assert err.startswith("mdlm-probe: error: ")
    for s in says:
        assert s in err


def test_usage_error_in_process(capsys):
    assert main(["eval", "synthetic", "--limt", "3"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "No such option: --limt" in err


def test_the_installed_typer_raises_what_main_catches():
    # The exception typer raises for a typo must be one of the classes main() handles (typer vendors click
    # as typer._click; catching only click.exceptions.ClickException let this one escape as a traceback).
    with pytest.raises(Exception) as info:
        app(args=["eval", "--limt", "3"], standalone_mode=False)
    assert isinstance(info.value, CLICK_ERRORS)


def test_version_through_the_console_script():
    rc, out, err = script("--version")
    assert rc == 0, err
    assert out.strip() == f"mdlm-probe {mdlm_probe.__version__}"


def test_no_arguments_shows_help_without_a_traceback():
    rc, out, err = script()
    assert rc == 2
    assert "Traceback" not in err
    assert "Usage" in out + err and "eval" in out + err


def test_bad_input_stays_one_line_through_the_console_script():
    rc, _, err = script("eval", "synthetic", "--ckpt", "tiny-cee", "--limit", "1")
    assert rc == 2 and err.strip().count("\n") == 0 and "tiny-cee" in err


# ----------------------------------------------------------------------------------------- help texts
def help_text(*command: str) -> str:
    rc, out, err = script(*command, "--help")
    assert rc == 0, err
    return " ".join(out.split())  # rich wraps lines; names never break inside


def test_help_texts_list_every_registered_choice():
    eval_help = help_text("eval")
    for name in benchmark_names():
        assert name in eval_help
    for name in adapter_names():
        assert name in eval_help
    for name in [*REMASKING, *CACHES, *COLLAPSES]:
        assert name in eval_help
    for name in shipped_names():
        if name != "tiny-random":  # a test fixture, not offered to users
            assert name in eval_help
    errors_help = help_text("errors")
    for name in DETECTORS:
        assert name in errors_help
    shift_help = help_text("shift")
    for name in benchmark_names():
        assert name in shift_help


def test_help_choices_follow_the_registry():
    # The help line is built from the registry, so a newly registered name appears in it.
    from mdlm_probe.tasks import benchmarks

    benchmarks.register("zz-new-bench")(type("New", (benchmarks.Benchmark,), {}))
    try:
        assert "zz-new-bench" in cli_options.choices(benchmark_names())
    finally:
        benchmarks.BENCHMARKS.unregister("zz-new-bench")


# ----------------------------------------------------------------------------------------- order of checks
@pytest.mark.parametrize("command", ["eval", "shift"])
def test_names_and_settings_are_checked_before_loading_data(command, tmp_path, capsys):
    """A misspelt checkpoint or benchmark, or an impossible block layout, is named before the data is read."""
    def args(bench="gsm8k"):
        where = [bench] if command == "eval" else ["--benchmark", bench]
        return [command, *where, "--data-file", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")]

    assert main([*args(), "--ckpt", "tiny-cee"]) == 2
    err = capsys.readouterr().err
    assert "tiny-cee" in err and "missing.jsonl" not in err
    assert main([*args(), "--ckpt", "tiny-random", "--gen-length", "30", "--block-length", "7"]) == 2
    err = capsys.readouterr().err
    assert "block-length 7" in err and "missing.jsonl" not in err
    assert main([*args("gsm8kk"), "--ckpt", "tiny-random"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'gsm8kk'" in err and err.strip().count("\n") == 0
    assert main([*args(), "--ckpt", "tiny-random"]) == 2  # the names are fine: now the data is the problem
    assert "missing.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------------- train options
def test_train_options_are_train_config_fields():
    command = typer.main.get_command(app).commands["train"]
    options = {p.name: p for p in command.params}
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f"TrainConfig.{f.name} has no help metadata"
        assert f.name in options, f"--{f.name.replace('_', '-')} is not a train option"
        assert options[f.name].default == f.default
        assert options[f.name].opts == ["--" + f.name.replace("_", "-")]
    assert set(options) == {f.name for f in dataclasses.fields(TrainConfig)} | {"out", "threads"}


def test_train_options_reach_the_config(tmp_path, monkeypatch):
    got = {}

    def fake_train(cfg, out, progress=True):
        got["cfg"], got["out"] = cfg, out
        return {}

    monkeypatch.setattr(train_command, "run_train", fake_train)
    assert main(["train", "--out", str(tmp_path / "t"), "--steps", "5", "--lr", "0.01", "--weight-decay", "0.1",
                 "--name", "x", "--objective", "ctc+ce"]) == 0
    assert got["cfg"] == TrainConfig(steps=5, lr=0.01, weight_decay=0.1, name="x", objective="ctc+ce")
    assert got["out"] == tmp_path / "t"


# ----------------------------------------------------------------------------------------- threads
def test_choose_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert choose_threads(None) == 1  # one thread per process unless asked (README, Performance)
    assert choose_threads(None, processes=2) == 1
    assert choose_threads(None, processes=10 * cores) == 1
    assert choose_threads(3, processes=2) == 3  # asked for explicitly
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_threads(None, processes=1) == 2  # the environment is respected
    with pytest.raises(BadInput):
        choose_threads(0)


def test_threads_option_sets_torch_threads(tmp_path, monkeypatch, capsys):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))  # restored after the test; --threads writes it
    try:
        assert main(["generate", "--ckpt", "tiny-random", "--prompt", "x", "--gen-length", "8", "--steps", "8",
                     "--block-length", "8", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == "1"  # worker processes started later inherit it
    finally:
        torch.set_num_threads(before)
    assert main(["eval", "synthetic", "--threads", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--threads 0" in capsys.readouterr().err
