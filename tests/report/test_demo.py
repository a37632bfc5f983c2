"""`mdlm-probe demo --quick`: every step runs, the report is written, a rerun resumes without redoing work."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mdlm_probe.core.checkpoints import SHIPPED_DIR
from mdlm_probe.report.demo import DemoConfig, run_demo

SMALL = ["--gen-length", "8", "--steps", "8", "--block-length", "8", "--n-eval", "4", "--n-shift", "2"]


def run_cli(*args, timeout=600):
    p = subprocess.run([sys.executable, "-m", "mdlm_probe", *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def count(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


@pytest.fixture(scope="module")
def second_ckpt(tmp_path_factory) -> Path:
    """A copy of tiny-random under another folder name: a second checkpoint to compare against."""
    d = tmp_path_factory.mktemp("ckpt") / "tiny-random-b"
    shutil.copytree(SHIPPED_DIR / "tiny-random", d)
    return d


def test_demo_quick_runs_every_step_and_resumes(tmp_path, second_ckpt, monkeypatch):
    out = tmp_path / "demo"
    args = ["demo", "--quick", "--ckpt", "tiny-random", "--ckpt", str(second_ckpt), *SMALL, "--out", str(out)]
    rc, stdout, err = run_cli(*args)
    assert rc == 0, err
    for ck in ("tiny-random", "tiny-random-b"):
        assert count(out / "eval" / f"synthetic-{ck}" / "samples.jsonl") == 4
        assert (out / "eval" / f"synthetic-{ck}" / "errors_summary.csv").is_file()
    # shift: 2 problems x 2 checkpoints x (clean + insert + delete at one fraction and one point)
    assert count(out / "shift" / "shift.jsonl") == 2 * 2 * 3
    assert (out / "shift" / "errors.jsonl").is_file()
    cmp = json.loads((out / "compare" / "compare.json").read_text())
    assert cmp["n_compared"] == 4 and len(cmp["pairs"]) == 1
    html = (out / "report" / "index.html").read_text()
    assert '<section id="shift">' in html and "mdlm-probe compare" in html
    assert f"report: {out / 'report' / 'index.html'}" in stdout.replace("\n", "")
    assert "total" in stdout and "eval synthetic" in stdout and "shift" in stdout

    # Rerun (in-process, same settings): nothing is decoded again, record files stay byte-identical.
    before = {p: p.read_bytes() for p in out.rglob("*.jsonl") if p.name in ("samples.jsonl", "shift.jsonl")}
    (out / "report" / "index.html").unlink()

    def no_decoding(*a, **k):
        raise AssertionError("a finished sample was decoded again")

    monkeypatch.setattr("mdlm_probe.runs.evaluate.build_records", no_decoding)
    monkeypatch.setattr("mdlm_probe.runs.shift.build_records", no_decoding)  # shift imports it by name
    cfg = DemoConfig.quick(ckpts=["tiny-random", str(second_ckpt)], n_eval=4, n_shift=2,
                           sampler={"gen_length": 8, "steps": 8, "block_length": 8})
    shown = []
    res = run_demo(cfg, out, log=lambda s: None, show=lambda what, result: shown.append((what, result)))
    assert {p: p.read_bytes() for p in before} == before
    # the library hands the errors and compare results to whoever prints them (the command)
    assert [w for w, _ in shown] == ["errors", "compare"]
    assert len(shown[0][1]) == 3 and shown[1][1][1] == out / "compare"
    assert Path(res["report"]).is_file() and [name for name, _ in res["steps"]][-1] == "report"


def test_demo_unknown_checkpoint_is_exit_2(tmp_path):
    rc, _, err = run_cli("demo", "--quick", "--ckpt", "no-such-ckpt", "--out", str(tmp_path / "d"))
    assert rc == 2 and "no-such-ckpt" in err and "Traceback" not in err
