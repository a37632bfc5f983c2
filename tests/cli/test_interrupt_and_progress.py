"""Runs that used to be silent (issue 38, items 8-10): Ctrl-C says how to go on, a resumed run says it
resumed, training announces and shows its held-out eval, invariance names the variant it runs, a Hub
name while offline is one line at once (no retries), an unavailable device names what is there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mdlm_probe.cli.app import main
from mdlm_probe.core.devices import available_devices, check_device
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.progress import Progress

SCRIPT = shutil.which("mdlm-probe", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
FAST = ["--ckpt", "tiny-random", "--gen-length", "8", "--steps", "8", "--block-length", "8", "--batch-size", "1"]
CLOSED = "http://127.0.0.1:9"  # a refused loopback port: the only "network" a test touches


def test_ctrl_c_says_rerun_to_resume_and_the_rerun_resumes(tmp_path, capsys):
    assert SCRIPT, "the mdlm-probe console script is not installed (pip install -e .)"
    out = tmp_path / "run"
    args = ["eval", "synthetic", *FAST, "--limit", "32", "--out", str(out)]
    p = subprocess.Popen([SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    samples, t_end = out / "samples.jsonl", time.time() + 240
    while p.poll() is None and time.time() < t_end and not (samples.is_file() and samples.stat().st_size):
        time.sleep(0.05)
    assert p.poll() is None, "the eval finished before it could be interrupted"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "mdlm-probe: interrupted: rerun the same command to resume (what was written is kept)"
    kept = len(samples.read_text().splitlines())
    assert 0 < kept < 32
    assert main(args) == 0  # the same command again
    err = capsys.readouterr().err
    assert f"resuming: {kept} of 32 samples done before, kept" in err
    assert len(samples.read_text().splitlines()) == 32


def test_progress_says_it_resumed_only_when_it_did():
    lines: list[str] = []
    Progress("shift", 128, 64, mode="lines", unit="records", every=0, log=lines.append).close()
    Progress("eval", 128, 0, mode="lines", unit="records", every=0, log=lines.append).close()
    Progress("quiet", 128, 64, mode="off", log=lines.append).close()
    assert lines == ["shift: resuming: 64 of 128 records done before, kept"]


def test_train_announces_and_shows_its_held_out_eval(tmp_path, capsys):
    assert main(["train", "--steps", "1", "--eval-n", "2", "--n-layer", "1", "--n-embd", "32", "--batch-size", "4",
                 "--out", str(tmp_path / "t")]) == 0
    err = capsys.readouterr().err
    assert "train: 1 steps, then 2 held-out problems scored (--eval-n 0 skips them)" in err
    assert "held-out eval: 2/2 problems" in err
    assert json.loads((tmp_path / "t" / "mdlm_probe.json").read_text())["heldout"]["n"] == 2


def test_train_eval_n_default_is_proportionate():
    from mdlm_probe.runs.train import TrainConfig
    from mdlm_probe.tasks.synthetic import HELDOUT_SIZE

    assert 0 < TrainConfig().eval_n < HELDOUT_SIZE


def test_invariance_names_the_variant_it_runs(tmp_path, capsys):
    assert main(["invariance", "synthetic", *FAST[:8], "--vary", "batch-size=1,2", "--limit", "2",
                 "--out", str(tmp_path / "inv")]) == 0
    err = capsys.readouterr().err
    assert "invariance: variant 1/2: base" in err and "invariance: variant 2/2: batch_size=2" in err


def test_hub_name_offline_is_one_line_without_retries(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_ENDPOINT": CLOSED, "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")}
    for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "TRANSFORMERS_OFFLINE"):
        env.pop(k, None)
    p = subprocess.run([SCRIPT, "generate", "--ckpt", "some-org/some-model", "--prompt", "hi"], capture_output=True,
                       text=True, timeout=300, env=env)
    err = p.stderr.strip()
    assert p.returncode == 2 and err.count("\n") == 0, err  # no retry warnings, no traceback
    assert "some-org/some-model" in err and "offline" in err and "local folder" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without CUDA")
def test_check_device_names_the_available_ones():
    assert available_devices() == ["cpu"]
    check_device(None)
    check_device("cpu")
    for bad, says in (("cuda", "--device cuda: this torch"), ("cuda:3", "--device cuda:3"),
                      ("gpu", "not a device name"), ("xla", "not available here")):
        with pytest.raises(BadInput, match="available: cpu") as e:
            check_device(bad)
        assert says in str(e.value)
