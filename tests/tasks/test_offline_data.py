"""Benchmark data without the network: a data directory (--data-dir, MDLM_PROBE_DATA), a quick offline check
instead of the Hub client's retries, one line saying what to pass. Nothing here touches the network: the Hub
endpoint is a closed local port and offline mode is on wherever the Hub could be asked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mdlm_probe.tasks.benchmarks import DATA_ENV, get_benchmark, hub_offline, hub_reachable
from mdlm_probe.cli import main
from mdlm_probe.core.exceptions import BadInput

SCRIPT = shutil.which("mdlm-probe", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once
PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def offline_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (*PROXIES, "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", DATA_ENV)}
    return {**env, "HF_ENDPOINT": CLOSED, **extra}


def write_gsm8k(folder: Path, n: int = 3) -> Path:
    (folder / "gsm8k").mkdir(parents=True)
    rows = [{"question": f"Ann has {i} pens and gets 2 more. How many?", "answer": f"{i}+2={i + 2}\n#### {i + 2}"}
            for i in range(n)]
    for split in ("test", "train"):
        (folder / "gsm8k" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "gsm8k" / "test.jsonl"


@pytest.mark.parametrize("offline_flag", ["1", None], ids=["HF_HUB_OFFLINE=1", "endpoint-unreachable"])
def test_gsm8k_without_data_is_one_line_naming_what_to_pass(tmp_path, offline_flag):
    assert SCRIPT, "the mdlm-probe console script is not installed (pip install -e .)"
    env = offline_env(**({"HF_HUB_OFFLINE": offline_flag} if offline_flag else {}))
    p = subprocess.run([SCRIPT, "eval", "gsm8k", "--ckpt", "tiny-random", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip()
    assert err.count("\n") == 0, err  # no retry warnings, no traceback
    assert "offline" in err and "--data-file" in err and "--data-dir" in err and DATA_ENV in err
    assert "gsm8k/test.jsonl" in err


def test_hub_reachable_is_quick_and_false_offline(monkeypatch):
    for k in PROXIES:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", CLOSED)
    assert not hub_offline()
    assert not hub_reachable()
    monkeypatch.setenv("HF_ENDPOINT", "http://203.0.113.1:1")  # must not even be tried when offline is set
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_offline() and not hub_reachable(timeout=0.001)


def test_data_dir_and_environment_variable(tmp_path, monkeypatch):
    test_file = write_gsm8k(tmp_path / "data")
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert get_benchmark("gsm8k", data_dir=tmp_path / "data").data_file == test_file
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    bench = get_benchmark("gsm8k")
    assert bench.data_file == test_file and bench.data_source() == str(test_file)
    assert len(bench.load()) == 3 and len(bench.fewshot(2)) == 2  # train.jsonl beside it: few-shot works
    # --data-file wins over the directory
    other = tmp_path / "other.jsonl"
    other.write_text(test_file.read_text())
    assert get_benchmark("gsm8k", data_file=other).data_file == other
    # an explicit --data-dir without the file is bad input; the variable only falls through (to the Hub)
    with pytest.raises(BadInput, match="no gsm8k/test.jsonl"):
        get_benchmark("gsm8k", data_dir=tmp_path / "empty")
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "empty"))
    assert get_benchmark("gsm8k").data_file is None
    assert get_benchmark("synthetic", data_dir=tmp_path / "empty").data_file is None  # needs no data


def test_eval_with_data_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(DATA_ENV, raising=False)
    test_file = write_gsm8k(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["eval", "gsm8k", "--ckpt", "tiny-random", "--data-dir", str(tmp_path / "data"), "--limit", "2",
                 "--num-fewshot", "0", "--gen-length", "8", "--steps", "8", "--block-length", "8",
                 "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data_source"] == str(test_file) and config["n_planned"] == 2
    assert main(["eval", "gsm8k", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "--data-dir" in capsys.readouterr().err
