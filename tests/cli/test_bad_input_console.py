"""Bad input through the INSTALLED `mdlm-probe` console script (what a user types): one line on stderr,
exit 2, no traceback (issue 38, items 1-7). Then a fuzz-style sweep over every command of the app, in
process, with a corrupted checkpoint folder, a file where a folder is expected and an unavailable device.

Each case below once ended in a traceback of 50-66 lines: mbpp's data folder (`'property' object is not
iterable`), a truncated or random model.safetensors (SafetensorError), `--device cuda` on a CPU-only torch
(AssertionError), `report --out FILE` (FileExistsError), an unknown lm-eval task (ValueError); the lm-eval
install hint lost its `[lm-eval]` to console markup; an empty --prompt was decoded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdlm_probe.cli.app import app, main
from mdlm_probe.core.checkpoints import SHIPPED_DIR

SCRIPT = shutil.which("mdlm-probe", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
NO_CUDA = not torch.cuda.is_available()


def script(*args: str, env: dict | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    assert SCRIPT, "the mdlm-probe console script is not installed (pip install -e .)"
    p = subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                       env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1", **(env or {})})
    return p.returncode, p.stdout, p.stderr


def one_line(rc: int, err: str) -> str:
    assert "Traceback" not in err, err
    assert rc == 2, err
    line = err.strip()
    assert line.count("\n") == 0 and line.startswith("mdlm-probe: error: "), err
    return line


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    """A truncated and a random-bytes copy of tiny-random, a broken config, a plain file, an MBPP data folder
    whose file is not MBPP, and a finished eval run (scored from predictions: no model needed)."""
    root = tmp_path_factory.mktemp("bad")
    out = {}
    for name, mangle in (("truncated", lambda b: b[:50]), ("random", lambda b: os.urandom(4096)),
                         ("config", None)):
        d = root / name
        shutil.copytree(SHIPPED_DIR / "tiny-random", d)
        if mangle is None:
            (d / "config.json").write_text("{ not json")
        else:
            w = d / "model.safetensors"
            w.write_bytes(mangle(w.read_bytes()))
        out[name] = d
    out["file"] = root / "a-file.txt"
    out["file"].write_text("I am a file\n")
    data = root / "data" / "mbpp"
    data.mkdir(parents=True)
    (data / "mbpp.jsonl").write_text(json.dumps({"task_id": 11, "text": "t"}) + "\n")  # no code, no tests
    out["data"] = data.parent
    preds = root / "preds.jsonl"
    preds.write_text(json.dumps({"id": "synthetic/0", "completion": "#### 1"}) + "\n")
    out["run"] = root / "run"
    assert main(["eval", "synthetic", "--predictions", str(preds), "--limit", "1", "--out", str(out["run"])]) == 0
    return out


# ----------------------------------------------------------------------------------------- the console script
def test_mbpp_data_dir_and_variable(bad, tmp_path):
    """Item 1: MBPP's file name depends on --subset (a property); --data-dir and MDLM_PROBE_DATA reach it."""
    line = one_line(*script("eval", "mbpp", "--data-dir", str(bad["data"]), "--limit", "1", "--out", str(tmp_path / "a"))[::2])
    assert "mbpp.jsonl: row 1 is not an MBPP problem" in line
    rc, _, err = script("eval", "mbpp", "--limit", "1", "--out", str(tmp_path / "b"), env={"MDLM_PROBE_DATA": str(bad["data"])})
    assert "row 1 is not an MBPP problem" in one_line(rc, err)


def test_mbpp_finds_the_shared_data_folder(shared_data):
    from mdlm_probe.tasks.benchmarks import get_benchmark

    assert get_benchmark("mbpp", data_dir=shared_data).data_file == shared_data / "mbpp" / "mbpp.jsonl"
    assert get_benchmark("mbpp", data_dir=shared_data, subset="sanitized").data_file.name == "sanitized-mbpp.json"


@pytest.mark.parametrize("kind", ["truncated", "random"])
def test_corrupt_weights(bad, kind):
    """Item 2: SafetensorError is not an OSError; it is the user's file."""
    line = one_line(*script("generate", "--ckpt", str(bad[kind]), "--prompt", "hi")[::2])
    assert "corrupt checkpoint" in line and "model.safetensors" in line


@pytest.mark.skipif(not NO_CUDA, reason="needs a torch without CUDA")
def test_unavailable_device_names_what_is_there():
    line = one_line(*script("generate", "--device", "cuda", "--prompt", "hi")[::2])
    assert "--device cuda" in line and "available: cpu" in line


def test_report_out_is_a_file(bad):
    line = one_line(*script("report", str(bad["run"]), "--out", str(bad["file"]))[::2])
    assert str(bad["file"]) in line and "a file is in the way" in line


def test_lm_eval_unknown_task():
    pytest.importorskip("lm_eval")
    line = one_line(*script("lm-eval", "--", "--model_args", "pretrained=tiny-random", "--tasks", "nosuchtask")[::2])
    assert "nosuchtask" in line and "ls tasks" in line


def test_brackets_in_a_message_survive(tmp_path):
    """Item 6: `pip install 'mdlm-probe[lm-eval]'` printed through rich lost `[lm-eval]` as markup. An
    lm_eval package that cannot be imported stands in for a missing one."""
    fake = tmp_path / "lm_eval"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('not installed')\n")
    rc, _, err = script("lm-eval", "--", "--tasks", "x", env={"PYTHONPATH": str(tmp_path)})
    assert "pip install 'mdlm-probe[lm-eval]'" in one_line(rc, err)


@pytest.mark.parametrize("prompt", ["", "  \n"])
def test_empty_prompt_is_refused(prompt):
    assert "--prompt is empty" in one_line(*script("generate", "--prompt", prompt)[::2])


def test_empty_prompt_in_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": "hi"}) + "\n" + json.dumps({"prompt": ""}) + "\n")
    assert main(["generate", "--prompts-file", str(f)]) == 2
    assert f"{f}:2: the prompt is empty" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- fuzz over every command
# Per command: the arguments that put each fault where that command reads it (BAD: a corrupt checkpoint
# folder, FILE: an existing file, OUT: a fresh folder). A command absent from a fault's table takes no
# such input; NOT_TAKEN says so, so a new command must be placed in every table or named there.
SMALL = ["--limit", "1"]
CORRUPT = {
    "generate": ["generate", "--ckpt", "BAD", "--prompt", "hi"],
    "train": ["train", "--init", "BAD", "--steps", "1", "--eval-n", "0", "--out", "OUT"],
    "demo": ["demo", "--quick", "--ckpt", "BAD", "--out", "OUT"],
    "eval": ["eval", "synthetic", "--ckpt", "BAD", *SMALL, "--out", "OUT"],
    "frontier": ["frontier", "synthetic", "--ckpt", "BAD", *SMALL, "--out", "OUT"],
    "invariance": ["invariance", "synthetic", "--ckpt", "BAD", "--vary", "batch-size=1,2", *SMALL, "--out", "OUT"],
    "shift": ["shift", "--ckpt", "BAD", "--benchmark", "synthetic", *SMALL, "--out", "OUT"],
}
FOLDER_IS_A_FILE = {
    "generate": ["generate", "--ckpt", "FILE", "--prompt", "hi"],
    "train": ["train", "--steps", "1", "--eval-n", "0", "--out", "FILE"],
    "demo": ["demo", "--quick", "--out", "FILE"],
    "eval": ["eval", "synthetic", *SMALL, "--out", "FILE"],
    "frontier": ["frontier", "synthetic", *SMALL, "--out", "FILE"],
    "invariance": ["invariance", "synthetic", "--vary", "batch-size=1,2", *SMALL, "--out", "FILE"],
    "shift": ["shift", "--benchmark", "synthetic", *SMALL, "--out", "FILE"],
    "report": ["report", "RUN", "--out", "FILE"],
    "compare": ["compare", "RUN", "RUN", "--out", "FILE"],
    "card": ["card", "FILE"],
    "errors": ["errors", "FILE"],
    "dynamics": ["dynamics", "FILE"],
    "judge": ["judge", "FILE", "--baseline", "b", "--judge-config", "FILE", "--judge-url", "http://127.0.0.1:9",
              "--judge-model", "m"],
    "tokens": ["tokens", "FILE", *SMALL],
}
NO_DEVICE = {
    "generate": ["generate", "--device", "DEV", "--prompt", "hi"],
    "train": ["train", "--device", "DEV", "--steps", "1", "--eval-n", "0", "--out", "OUT"],
    "eval": ["eval", "synthetic", "--device", "DEV", *SMALL, "--out", "OUT"],
    "frontier": ["frontier", "synthetic", "--device", "DEV", *SMALL, "--out", "OUT"],
    "invariance": ["invariance", "synthetic", "--device", "DEV", "--vary", "batch-size=1,2", *SMALL, "--out", "OUT"],
    "shift": ["shift", "--device", "DEV", "--benchmark", "synthetic", *SMALL, "--out", "OUT"],
}
NOT_TAKEN = {  # command -> the faults it has no input for
    "presets": {"corrupt", "file", "device"},
    "lm-eval": {"corrupt", "file", "device"},  # arguments go to lm-eval itself (tested above)
    "report": {"corrupt", "device"}, "compare": {"corrupt", "device"}, "card": {"corrupt", "device"},
    "errors": {"corrupt", "device"}, "judge": {"corrupt", "device"},
    "tokens": {"corrupt", "device"},  # reads a checkpoint's tokenizer only, never its weights
    "dynamics": {"corrupt", "device"},  # reads run directories only
    "demo": {"device"},
}
FAULTS = {"corrupt": CORRUPT, "file": FOLDER_IS_A_FILE, "device": NO_DEVICE}


def command_names() -> list[str]:
    return sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_every_command_is_in_the_fuzz_tables():
    for name in command_names():
        for fault, table in FAULTS.items():
            assert name in table or fault in NOT_TAKEN.get(name, ()), f"{name}: no case for {fault}"


CASES = [(fault, name) for fault, table in FAULTS.items() for name in sorted(table)]


@pytest.mark.parametrize("fault,name", CASES, ids=[f"{f}-{n}" for f, n in CASES])
def test_fuzz(bad, tmp_path, capsys, fault, name):
    if fault == "device" and not NO_CUDA:
        pytest.skip("CUDA is available here; the unavailable device is tested on a CPU-only torch")
    assert name in command_names()
    fill = {"BAD": str(bad["truncated"]), "FILE": str(bad["file"]), "OUT": str(tmp_path / "out"),
            "RUN": str(bad["run"]), "DEV": "cuda"}
    args = [fill.get(a, a) for a in FAULTS[fault][name]]
    rc = main(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and "Traceback" not in err, err
    # progress lines may come first (frontier names its mode); the error is one line, the last
    assert lines[-1].startswith("mdlm-probe: error: ") and sum("error" in line for line in lines) == 1, err


def test_corrupt_config_is_one_line(bad, capsys):
    assert main(["generate", "--ckpt", str(bad["config"]), "--prompt", "hi"]) == 2
    assert "config.json" in capsys.readouterr().err
