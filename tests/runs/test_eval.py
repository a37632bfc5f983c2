"""`mdlm-probe eval`: data loading, prompts, run directories, resume after kill -9, predictions, bad input.

Everything runs on tiny-random with an 8-position canvas; GSM8K / GPQA fixtures are made-up problems
(GPQA text never appears in a committed file).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from mdlm_probe.tasks.benchmarks import get_benchmark
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.evaluate import plan_batches, run_eval

FAST = {"gen_length": 8, "steps": 8, "block_length": 8, "batch_size": 4}
FAST_ARGS = ["--gen-length", "8", "--steps", "8", "--block-length", "8", "--batch-size", "4"]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def strip_timing(recs):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in recs]


def run_cli(*args, timeout=300):
    p = subprocess.run([sys.executable, "-m", "mdlm_probe", *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def write_gsm8k(folder: Path, n: int, train: int = 0, long_first: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"question": f"Ann has {i} pens and buys {i + 3} more. How many pens?",
             "answer": f"She has {i}+{i + 3}=<<{i}+{i + 3}={2 * i + 3}>>{2 * i + 3} pens.\n#### {2 * i + 3}"}
            for i in range(n)]
    if long_first:
        rows[0]["question"] = "Ann counts pens. " * 40 + "How many pens?"
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if train:
        tr = [{"question": f"Bob had {i} cups. How many?", "answer": f"{i}\n#### {i}"} for i in range(train)]
        (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tr))
    return folder / "test.jsonl"


# ----------------------------------------------------------------------------------------- GSM8K data and prompts
def test_gsm8k_loads_jsonl_and_builds_lm_eval_prompts(tmp_path):
    f = write_gsm8k(tmp_path / "d", 4, train=12)
    b = get_benchmark("gsm8k", data_file=f)
    s = b.load()
    assert [x.native_id for x in s] == ["0", "1", "2", "3"] and s[2].reference_answer == "7"
    assert b.prompt(s[1], 0) == f"Question: {s[1].question}\nAnswer:"
    p1, p2 = b.prompt(s[1], 3), b.prompt(s[2], 3)
    assert p1.count("Question: ") == 4 and p1.count("#### ") == 3 and p1.endswith(f"Question: {s[1].question}\nAnswer:")
    # the same examples for every question (the prompt never depends on which others are evaluated)
    assert p1.rsplit("\n\nQuestion: ", 1)[0] == p2.rsplit("\n\nQuestion: ", 1)[0]
    assert b.score(" 1+1=3 #### 3\n\nQuestion: x? Answer: #### 9", s[0])["correct"] is True


@pytest.mark.parametrize("content, msg", [
    ('{"question": "q", "answer": "a #### 1"}\nnot json\n', "not valid JSON"),
    ('{"question": "q"}\n', "'answer'"),
    ('{"question": "q", "answer": "no final line"}\n', "####"),
    ("", "no GSM8K problems"),
])
def test_gsm8k_bad_data_files(load_data_file, content, msg):
    with pytest.raises(BadInput, match=msg):
        load_data_file("gsm8k", "test.jsonl", content)


def test_gsm8k_fewshot_without_train_file_is_bad_input(tmp_path):
    f = write_gsm8k(tmp_path / "d", 2)
    b = get_benchmark("gsm8k", data_file=f)
    with pytest.raises(BadInput, match="train.jsonl"):
        b.prompt(b.load()[0], 5)


def test_shared_gsm8k_loads(shared_data):
    s = get_benchmark("gsm8k", data_file=shared_data / "gsm8k" / "test.jsonl").load()
    assert len(s) == 1319 and s[0].reference_answer == "18"


# ----------------------------------------------------------------------------------------- GPQA data
def fake_gpqa_rows(n):
    return [{"Record ID": f"rec{i:03d}", "Question": f"Which number is {i} plus one?", "Correct Answer": str(i + 1),
             "Incorrect Answer 1": str(i + 2), "Incorrect Answer 2": str(i + 3), "Incorrect Answer 3": str(i + 4)}
            for i in range(n)]


def write_csv(rows) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


def test_gpqa_csv_and_zip_shuffle_fixed_per_question(tmp_path):
    data = write_csv(fake_gpqa_rows(24))
    (tmp_path / "g.csv").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "dataset.zip", "w") as z:
        z.writestr("dataset/gpqa_main.csv", data)
        z.writestr("dataset/gpqa_diamond.csv", write_csv(fake_gpqa_rows(5)))
    from_csv = get_benchmark("gpqa", data_file=tmp_path / "g.csv").load()
    from_zip = get_benchmark("gpqa", data_file=tmp_path / "dataset.zip", subset="main").load()
    assert [(s.native_id, s.meta["options"], s.reference_answer) for s in from_csv] == \
           [(s.native_id, s.meta["options"], s.reference_answer) for s in from_zip]
    assert len(get_benchmark("gpqa", data_file=tmp_path / "dataset.zip").load()) == 5  # diamond by default
    for s in from_csv:
        assert s.meta["options"]["ABCD".index(s.reference_answer)] == s.reference
        assert sorted(s.meta["options"]) == sorted(str(int(s.native_id[3:]) + k) for k in (1, 2, 3, 4))
    assert len({s.reference_answer for s in from_csv}) >= 3  # shuffled, not always the last slot
    b = get_benchmark("gpqa", data_file=tmp_path / "g.csv")
    p = b.prompt(from_csv[0], 0)
    assert p.startswith("Question: ") and "\n(D) " in p and p.endswith("Answer:")
    p2 = b.prompt(from_csv[0], 2)
    assert p2.count("The answer is (") == 2 and from_csv[0].question not in p2.rsplit("Question: ", 1)[0]


@pytest.mark.parametrize("name, content, msg", [
    ("bad.csv", b"x,y\n1,2\n", "missing columns"),
    ("bad.zip", b"not a zip", "not a zip"),
])
def test_gpqa_bad_files(load_data_file, name, content, msg):
    with pytest.raises(BadInput, match=msg):
        load_data_file("gpqa", name, content)


def test_shared_gpqa_zip_reads_in_memory(shared_data):
    # Only counts and letters are checked: GPQA text must not reach logs.
    s = get_benchmark("gpqa", data_file=shared_data / "gpqa" / "gpqa_diamond.zip").load()
    assert len(s) == 198 and len({x.native_id for x in s}) == 198
    assert {x.reference_answer for x in s} == set("ABCD")


# ----------------------------------------------------------------------------------------- run directories
def test_run_writes_config_samples_summary_and_resumes(tmp_path, tiny_random):
    out = tmp_path / "run"
    s = run_eval("tiny-random", "synthetic", out, dict(FAST), limit=6, model=tiny_random)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["command"] == "eval" and cfg["benchmark"] == "synthetic" and cfg["checkpoint_hash"]
    assert cfg["sampler"]["gen_length"] == 8 and cfg["sampler"]["steps"] == 8  # resolved: given + sidecar
    assert cfg["sampler"]["remasking"] == "low_confidence" and "versions" in cfg
    recs = lines(out / "samples.jsonl")
    assert [r["id"] for r in recs] == [f"synthetic/{i}" for i in range(6)]
    assert all(len(r["output_ids"]) == 8 and r["verdict"] in ("correct", "wrong", "no_answer") for r in recs)
    summ = json.loads((out / "summary.json").read_text())
    assert summ["n"] == 6 and summ["correct"] == sum(r["correct"] for r in recs)
    assert summ["ci95"][0] <= summ["accuracy"] <= summ["ci95"][1] and sum(summ["verdicts"].values()) == 6
    before = (out / "samples.jsonl").read_bytes()
    s2 = run_eval("tiny-random", "synthetic", out, dict(FAST), limit=6, model=tiny_random)  # nothing left to do
    assert (out / "samples.jsonl").read_bytes() == before
    assert {k: v for k, v in s2.items() if k != "timing"} == {k: v for k, v in s.items() if k != "timing"}
    with pytest.raises(BadInput, match="different config"):
        run_eval("tiny-random", "synthetic", out, {**FAST, "steps": 4}, limit=6, model=tiny_random)
    run_eval("tiny-random", "synthetic", out, {**FAST, "steps": 4}, limit=6, model=tiny_random, overwrite=True)
    assert json.loads((out / "config.json").read_text())["sampler"]["steps"] == 4


def test_partly_written_batch_is_completed_identically(tmp_path, tiny_random):
    """A kill inside a batch: the batch is decoded again and only its missing ids are written."""
    hot = {**FAST, "temperature": 1.0}  # T > 0: outputs depend on each batch's seed
    full, cut = tmp_path / "full", tmp_path / "cut"
    ref = run_eval("tiny-random", "synthetic", full, hot, limit=10, model=tiny_random)
    cut.mkdir()
    (cut / "config.json").write_text((full / "config.json").read_text())
    raw = (full / "samples.jsonl").read_text().splitlines(keepends=True)
    (cut / "samples.jsonl").write_text("".join(raw[:6]) + raw[6][:40])  # batch 1 half done + a torn line
    got = run_eval("tiny-random", "synthetic", cut, hot, limit=10, model=tiny_random)
    assert strip_timing(lines(cut / "samples.jsonl")) == strip_timing(lines(full / "samples.jsonl"))
    assert {k: v for k, v in got.items() if k != "timing"} == {k: v for k, v in ref.items() if k != "timing"}
    assert len({r["batch"]["seed"] for r in lines(full / "samples.jsonl")}) == len(plan_batches(10, 4))


def test_kill_9_then_rerun_matches_uninterrupted(tmp_path):
    out, ref = tmp_path / "killed", tmp_path / "ref"
    # 12 batches of 16 steps: long enough to be killed mid-run on a fast machine
    args = ["eval", "synthetic", "--ckpt", "tiny-random", "--limit", "48", "--temperature", "1.0", "--gen-length", "16",
            "--steps", "16", "--block-length", "16", "--batch-size", "4", "--no-progress"]
    p = subprocess.Popen([sys.executable, "-m", "mdlm_probe", *args, "--out", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    f, t_end = out / "samples.jsonl", time.time() + 240
    while time.time() < t_end and p.poll() is None:
        if f.is_file() and f.read_text().count("\n") >= 1:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the run ended before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    n_killed = f.read_text().count("\n")
    assert 1 <= n_killed < 48 and not (out / "summary.json").exists()
    rc, _, err = run_cli(*args, "--out", str(out))
    assert rc == 0, err
    rc, _, err = run_cli(*args, "--out", str(ref))
    assert rc == 0, err
    got, want = lines(f), lines(ref / "samples.jsonl")
    assert [r["id"] for r in got] == [f"synthetic/{i}" for i in range(48)]  # no duplicate, none lost, in order
    assert strip_timing(got) == strip_timing(want)
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (out, ref))
    assert s1.pop("timing") and s2.pop("timing") and s1 == s2


def test_gsm8k_cli_truncates_long_prompts_from_the_left(tmp_path):
    f = write_gsm8k(tmp_path / "d", 3, long_first=True)
    out = tmp_path / "run"
    rc, stdout, err = run_cli("eval", "gsm8k", "--ckpt", "tiny-random", "--data-file", str(f), "--out", str(out),
                              *FAST_ARGS, "--no-progress")
    assert rc == 0, err
    recs = lines(out / "samples.jsonl")
    assert recs[0]["prompt_info"]["cut_tokens"] > 0 and recs[1]["prompt_info"]["cut_tokens"] == 0
    assert len(recs[0]["prompt_ids"]) == 512 - 8 and recs[0]["prompt"].endswith("How many pens?\nAnswer:")
    assert json.loads((out / "summary.json").read_text())["truncated_prompts"] == 1
    assert json.loads((out / "config.json").read_text())["num_fewshot"] == 0  # the sidecar's default_fewshot
    assert "accuracy" in stdout


# ----------------------------------------------------------------------------------------- predictions
def test_predictions_are_scored_without_a_model(tmp_path):
    f = write_gsm8k(tmp_path / "d", 5)  # answers 3, 5, 7, 9, 11
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps(x) for x in [
        {"id": "gsm8k/0", "completion": "2+1 = 3. #### 3"},
        {"id": 1, "completion": "The answer is $5.00."},
        {"native_id": "3", "completion": "I think 8"},
        {"id": "4", "completion": "no idea"},
    ]) + "\n")
    s = run_eval(None, "gsm8k", tmp_path / "run", data_file=f, predictions=preds)
    assert (s["n"], s["correct"], s["verdicts"]) == (4, 2, {"correct": 2, "no_answer": 1, "wrong": 1})
    assert [r["id"] for r in lines(tmp_path / "run" / "samples.jsonl")] == ["gsm8k/0", "gsm8k/1", "gsm8k/3", "gsm8k/4"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "gsm8k/99", "completion": "1"}\n')
    with pytest.raises(BadInput, match="not in gsm8k"):
        run_eval(None, "gsm8k", tmp_path / "run2", data_file=f, predictions=bad)
    bad.write_text('{"id": "gsm8k/1"}\n')
    with pytest.raises(BadInput, match="completion"):
        run_eval(None, "gsm8k", tmp_path / "run3", data_file=f, predictions=bad)
    # --limit scores the predictions among the first N samples; the others are real ids, not errors
    s = run_eval(None, "gsm8k", tmp_path / "run4", data_file=f, predictions=preds, limit=2)
    assert (s["n"], s["correct"]) == (2, 2)
    only_3 = tmp_path / "p3.jsonl"
    only_3.write_text('{"id": "gsm8k/3", "completion": "7"}\n')
    with pytest.raises(BadInput, match="none of its ids is among the first 1"):
        run_eval(None, "gsm8k", tmp_path / "run5", data_file=f, predictions=only_3, limit=1)


def test_gsm8k_summary_has_strict_and_flexible_side_by_side_and_the_empty_rate(tmp_path, capsys):
    from mdlm_probe.cli import main

    f = write_gsm8k(tmp_path / "gsm8k", 4)  # answers 3, 5, 7, 9
    preds = tmp_path / "preds.jsonl"
    preds.write_text("\n".join(json.dumps(x) for x in [
        {"id": "gsm8k/0", "completion": "#### 3"},  # both right
        {"id": "gsm8k/1", "completion": "#### 4, no: 5"},  # strict wrong, flexible right; scored strict: wrong
        {"id": "gsm8k/2", "completion": "The total is 7"},  # strict finds nothing, flexible right: scored right
        {"id": "gsm8k/3", "completion": ""},  # nothing at all
    ]) + "\n")
    assert main(["eval", "gsm8k", "--data-file", str(f), "--predictions", str(preds), "--out", str(tmp_path / "r")]) == 0
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["accuracy"] == 0.5
    assert s["extraction"] == {"strict": 0.25, "flexible": 0.75, "strict_found": 0.5}
    assert (s["empty_outputs"], s["empty_rate"]) == (1, 0.25)
    out = capsys.readouterr().out
    assert "extraction: strict 25.0% · flexible 75.0%" in out and "empty or EOS-only outputs: 1/4 (25.0%)" in out


# ----------------------------------------------------------------------------------------- bad input: exit 2, one line
@pytest.mark.parametrize("args, needle", [
    (["eval", "nosuchbench"], "unknown benchmark"),
    (["eval", "gsm8k", "--data-file", "/nonexistent/test.jsonl"], "no data file"),
    (["eval", "gsm8k", "--data-file", "{bad}"], "####"),
    (["eval", "gpqa", "--data-file", "{csv}"], "missing columns"),
    (["eval", "synthetic", "--ckpt", "tiny-random", "--shard", "2/2"], "--shard"),
    (["eval", "synthetic", "--ckpt", "tiny-random", "--limit", "0"], "--limit"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, needle):
    from mdlm_probe.cli import main

    (tmp_path / "bad.jsonl").write_text('{"question": "q", "answer": "no final line"}\n')
    (tmp_path / "bad.csv").write_text("x,y\n1,2\n")
    args = [a.replace("{bad}", str(tmp_path / "bad.jsonl")).replace("{csv}", str(tmp_path / "bad.csv")) for a in args]
    rc = main([*args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert needle in err and err.strip().count("\n") == 0


def test_bad_input_from_the_shell_has_no_traceback(tmp_path):
    rc, _, err = run_cli("eval", "gsm8k", "--data-file", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"))
    assert rc == 2 and err.strip().count("\n") == 0 and "Traceback" not in err and "no data file" in err


def test_eval_synthetic_reproduces_the_heldout_path(tmp_path, tiny_random):
    """train.py's sidecar `heldout.accuracy` comes from build_records over the first n problems in one call;
    eval synthetic (fixed batches, per-batch seeds) must give the same outputs at the sidecar's T = 0."""
    from mdlm_probe.runs.evaluate import build_records
    from mdlm_probe.decoding import resolve_sampler

    cfg = resolve_sampler(dict(FAST), tiny_random)
    bench = get_benchmark("synthetic")
    want = build_records(tiny_random, bench, bench.load()[:6], cfg, ckpt_name="tiny-random")
    run_eval("tiny-random", "synthetic", tmp_path / "run", dict(FAST), limit=6, model=tiny_random)
    got = lines(tmp_path / "run" / "samples.jsonl")
    assert [r["output_ids"] for r in got] == [r["output_ids"] for r in want]
    assert [r["correct"] for r in got] == [r["correct"] for r in want]


def test_a_larger_limit_extends_the_run_reusing_its_records(tmp_path, tiny_random):
    out = tmp_path / "run"
    run_eval("tiny-random", "synthetic", out, dict(FAST), limit=4, model=tiny_random)
    first = lines(out / "samples.jsonl")
    s = run_eval("tiny-random", "synthetic", out, dict(FAST), limit=8, model=tiny_random)  # was refused before
    recs = lines(out / "samples.jsonl")
    assert [r["id"] for r in recs] == [f"synthetic/{i}" for i in range(8)] and s["n"] == 8
    assert recs[:4] == first  # reused as written, not decoded again
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["limit"] == 8 and cfg["n_planned"] == 8 and "extended" in cfg
    fresh = run_eval("tiny-random", "synthetic", tmp_path / "fresh", dict(FAST), limit=8, model=tiny_random)
    assert strip_timing(lines(tmp_path / "fresh" / "samples.jsonl")) == strip_timing(recs)
    assert {k: v for k, v in fresh.items() if k != "timing"} == {k: v for k, v in s.items() if k != "timing"}
    with pytest.raises(BadInput, match="different config"):  # a smaller limit is another run
        run_eval("tiny-random", "synthetic", out, dict(FAST), limit=6, model=tiny_random)
    with pytest.raises(BadInput, match="different config"):  # and so is a larger one with other settings
        run_eval("tiny-random", "synthetic", out, {**FAST, "steps": 4}, limit=12, model=tiny_random)


def test_progress_in_a_log_is_a_line_with_total_and_eta(tmp_path, tiny_random, capsys):
    from mdlm_probe.core.progress import Progress

    got = []
    bar = Progress("eval x", 4, mode="lines", every=0.0, log=got.append)
    for i in range(1, 5):
        bar.update(i, f"acc {i / 4:.2f}")
    bar.update(4)  # the end is logged once
    assert [ln.split(" · ")[0] for ln in got] == [f"eval x: {i}/4 samples ({25 * i}%)" for i in range(1, 5)]
    assert all("ETA" in ln for ln in got) and "acc 0.50" in got[1]
    capsys.readouterr()
    run_eval("tiny-random", "synthetic", tmp_path / "run", dict(FAST), limit=4, model=tiny_random, progress="auto")
    err = capsys.readouterr().err  # stderr is no terminal here: plain lines, the last one at 4/4
    assert "synthetic tiny-random: 4/4 samples (100%)" in err and "ETA" in err


def test_progress_in_a_log_keeps_talking_while_a_batch_decodes():
    """No item finishes (one long batch), yet the log gets a line: the heartbeat, until close()."""
    from mdlm_probe.core.progress import Progress

    got = []
    with Progress("eval x", 4, mode="lines", every=0.05, log=got.append):
        deadline = time.time() + 30
        while not got and time.time() < deadline:
            time.sleep(0.01)
    assert got and got[0].startswith("eval x: 0/4 samples (0%)")
    n = len(got)
    time.sleep(0.2)
    assert len(got) <= n + 1  # stopped at close (at most one line was already on its way)
