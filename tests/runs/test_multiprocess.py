"""Sharded and multi-process eval: merged samples.jsonl and summary.json equal a single-process run.

At T > 0 a sample's output depends on its batch (shape and seed), so these runs use temperature 1:
a sharding that changed batch composition or seeds would show up as different records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mdlm_probe.runs.evaluate import run_eval

HOT = {"gen_length": 8, "steps": 8, "block_length": 8, "batch_size": 4, "temperature": 1.0}
LIMIT = 10  # 3 batches: shard 0/2 takes batches 0 and 2, shard 1/2 batch 1


def records(run):
    return [{k: v for k, v in json.loads(x).items() if k != "seconds"}
            for x in (run / "samples.jsonl").read_text().splitlines()]


def summary(run):
    s = json.loads((run / "summary.json").read_text())
    assert "wall_seconds" in s.pop("timing")
    return s


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_random):
    out = tmp_path_factory.mktemp("single") / "run"
    run_eval("tiny-random", "synthetic", out, dict(HOT), limit=LIMIT, model=tiny_random)
    return out


def test_manual_shards_merge_when_the_last_one_finishes(tmp_path, tiny_random, single):
    out = tmp_path / "run"
    first = run_eval("tiny-random", "synthetic", out, dict(HOT), limit=LIMIT, shard="1/2", model=tiny_random)
    assert first["complete"] is False and first["n_shard"] == 4 and not (out / "summary.json").exists()
    last = run_eval("tiny-random", "synthetic", out, dict(HOT), limit=LIMIT, shard="0/2", model=tiny_random)
    assert last["complete"] is True
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["samples-0-of-2.jsonl", "samples-1-of-2.jsonl"]
    assert records(out) == records(single)
    assert summary(out) == summary(single)


def test_num_processes_2_matches_single_process(tmp_path, single):
    out = tmp_path / "run"
    s = run_eval("tiny-random", "synthetic", out, dict(HOT), limit=LIMIT, num_processes=2)
    assert s["complete"] and s["timing"]["num_processes"] == 2
    assert records(out) == records(single)
    assert summary(out) == summary(single)
    # a rerun finds everything done
    before = (out / "samples.jsonl").read_bytes()
    run_eval("tiny-random", "synthetic", out, dict(HOT), limit=LIMIT)
    assert (out / "samples.jsonl").read_bytes() == before


def test_accelerate_style_ranks_from_the_environment(tmp_path, single):
    """`accelerate launch -m mdlm_probe eval ...` sets RANK / WORLD_SIZE / LOCAL_RANK in each process."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "mdlm_probe", "eval", "synthetic", "--ckpt", "tiny-random", "--limit", str(LIMIT),
            "--gen-length", "8", "--steps", "8", "--block-length", "8", "--batch-size", "4", "--temperature", "1.0",
            "--out", str(out), "--no-progress"]
    procs = [subprocess.Popen(args, env={**os.environ, "RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    assert records(out) == records(single)
    assert summary(out) == summary(single)


@pytest.mark.slow
def test_real_accelerate_launch(tmp_path, single):
    """`accelerate launch` itself (its torchrun launcher; no process group is needed, so it runs on CPU)."""
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "mdlm_probe", "eval", "synthetic",
                        "--ckpt", "tiny-random", "--limit", str(LIMIT), "--gen-length", "8", "--steps", "8",
                        "--block-length", "8", "--batch-size", "4", "--temperature", "1.0", "--out", str(out),
                        "--no-progress"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert sorted(x.name for x in (out / "shards").iterdir()) == ["samples-0-of-2.jsonl", "samples-1-of-2.jsonl"]
    assert records(out) == records(single)
    assert summary(out) == summary(single)
