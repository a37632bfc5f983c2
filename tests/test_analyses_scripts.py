"""The prepared GPU scripts run their own code path on a CPU, so a lent GPU's few minutes are not lost to a crash."""

import subprocess
import sys
from pathlib import Path

import pytest

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"


def _run(*args: str) -> str:
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600,
                       env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


@pytest.mark.parametrize("objective", ["ce", "ctc+ce"])
def test_the_gpu_lora_script_trains_its_lora_steps_on_a_cpu(objective):
    out = _run(str(ANALYSES / "train_gpu_lora.py"), "--shape", "llada-small", "--device", "cpu", "--batch", "1",
               "--length", "64", "--steps", "1", "--objective", objective)
    assert "gradient checkpointing: blocks" in out and f"objective {objective}" in out
    assert "tokens/s" in out and "LoRA r=16" in out


def test_the_memory_estimate_prints_lora_and_fsdp_rows():
    out = _run(str(ANALYSES / "train_memory.py"), "--gpus", "1", "8", "--lengths", "512")
    rows = [line.split() for line in out.splitlines() if line.startswith(("LoRA", "FSDP"))]
    assert len(rows) == 4
    lora = [r for r in rows if r[0] == "LoRA"]
    assert lora[0][-1] == lora[1][-1]  # data parallel LoRA: every GPU holds the whole model
    fsdp = [r for r in rows if r[0] == "FSDP"]
    assert float(fsdp[1][-1]) < float(fsdp[0][-1])  # sharding over 8 GPUs needs less per GPU than 1
