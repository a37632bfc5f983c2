"""Shift sweeps: fraction 0 == clean, pairing, same points across checkpoints, metrics, resumption, CLI."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch

from mdlm_probe.tasks.benchmarks import get_benchmark
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.evaluate import build_records
from mdlm_probe.tasks.interventions import Shift
from mdlm_probe.core.records import read_records
from mdlm_probe.decoding import SamplerConfig
from mdlm_probe.runs.shift import (ShiftGrid, at_key, chrf, drop_heatmap_figure, levenshtein, norm_edit, pair_metrics,
                                   plot_drop_heatmap, run_shift, run_sweep, shifted_records, summarize)

CFG = SamplerConfig(gen_length=16, steps=8, block_length=16, batch_size=2)
SAMPLER_ARGS = ["--gen-length", "16", "--steps", "8", "--block-length", "16", "--batch-size", "2"]
VOLATILE = {"id", "seconds", "intervention", "hook_info"}


@pytest.fixture(scope="module")
def bench():
    return get_benchmark("synthetic")


@pytest.fixture(scope="module")
def perturbed_ckpt(tmp_path_factory):
    """A second checkpoint: tiny-random with noise added to its weights (decodes differently)."""
    from safetensors.torch import load_file, save_file

    from mdlm_probe.core.checkpoints import SHIPPED_DIR

    d = tmp_path_factory.mktemp("ckpt") / "tiny-random-2"
    shutil.copytree(SHIPPED_DIR / "tiny-random", d)
    w = load_file(str(d / "model.safetensors"))
    g = torch.Generator().manual_seed(1)
    w = {k: (v + 0.02 * torch.randn(v.shape, generator=g).to(v.dtype)) if v.is_floating_point() else v
         for k, v in w.items()}
    save_file(w, str(d / "model.safetensors"))
    side = json.loads((d / "mdlm_probe.json").read_text())
    (d / "mdlm_probe.json").write_text(json.dumps({**side, "name": "tiny-random-2"}))
    return str(d)


def strip(rec):
    return {k: v for k, v in rec.items() if k not in VOLATILE}


# ----------------------------------------------------------------------------------------- pairing
def test_fraction_zero_reproduces_the_clean_records(tiny_random, bench):
    samples = bench.load()[:3]
    clean = build_records(tiny_random, bench, samples, CFG, ckpt_name="tiny-random")
    for mode in ("insert", "delete"):
        zero = shifted_records(tiny_random, bench, samples, CFG, Shift(mode=mode, fraction=0.0, at=0.5),
                               ckpt_name="tiny-random")
        for c, z in zip(clean, zero):
            assert strip(z) == strip(c)  # field for field: outputs, texts, scores, trajectory, nfe, sampler
            assert z["id"] == c["id"] + f"@{mode}-p0-at0.5"
            assert z["intervention"]["fired"] and z["intervention"]["points"] == []
            assert z["intervention"]["canvas_before"] == z["intervention"]["canvas_after"]
    # and a real edit does change things, so the comparison above can fail
    one = shifted_records(tiny_random, bench, samples, CFG, Shift(mode="insert", fraction=0.25, at=0.5),
                          ckpt_name="tiny-random")
    assert any(o["output_ids"] != c["output_ids"] for o, c in zip(one, clean))


def test_sweep_pairs_every_record_and_uses_the_same_points_across_checkpoints(tmp_path, bench, perturbed_ckpt):
    from mdlm_probe.adapters import load_model

    samples = bench.load()[:3]
    grid = ShiftGrid(modes=["insert", "delete"], fractions=[0.0, 0.2], ats=[0.5])
    ckpts = ["tiny-random", perturbed_ckpt]
    n = run_sweep(ckpts, bench, samples, {c: CFG for c in ckpts}, grid, tmp_path, load=load_model)
    recs = read_records(tmp_path / "shift.jsonl")[0]
    assert n == len(recs) == 2 * 3 * 3  # per checkpoint: clean + 2 settings, 3 samples each
    by = {(r["ckpt"], r["id"]): r for r in recs}
    compared = 0
    for r in recs:
        iv = r["intervention"]
        if iv is not None:
            assert (r["ckpt"], iv["clean_id"]) in by and iv["clean_id"] == r["id"].split("@")[0] + "@clean"
            twin = by[(ckpts[1] if r["ckpt"] == ckpts[0] else ckpts[0], r["id"])]["intervention"]
            if iv["fired"] and twin["fired"]:  # (a random model that proposes [MASK] may never reach 50%)
                assert iv["k"] == 3 and len(iv["points"]) == 3  # round(0.2 * 16)
                assert twin["points"] == iv["points"]  # same points on both checkpoints
                compared += 1
    assert compared >= 4
    a = [by[("tiny-random", f"synthetic/{i}@clean")]["output_ids"] for i in range(3)]
    b = [by[(perturbed_ckpt, f"synthetic/{i}@clean")]["output_ids"] for i in range(3)]
    assert a != b  # the checkpoints really differ, yet the points agree
    rows = summarize(recs, grid)
    assert len(rows) == 2 * 2 * 2  # ckpt x mode x fraction (0, 0.2) x one at
    zero = [r for r in rows if r["fraction"] == 0.0]
    assert all(r["drop"] == 0 and r["absorbed"] == 1 and r["edit_tokens"] == 0 for r in zero)
    assert all(r["n"] == 3 for r in rows)


# ----------------------------------------------------------------------------------------- metrics
def test_edit_distance_and_chrf():
    assert levenshtein("kitten", "sitting") == 3 and levenshtein([1, 2, 3], [1, 3]) == 1
    assert norm_edit("abcd", "abce") == 0.25 and norm_edit("", "") == 0.0 and norm_edit("ab", "") == 1.0
    assert chrf("abc", "abc") == 100.0 and chrf("", "") == 100.0
    # by hand: unigrams P = R = 1, bigrams P = R = 0, longer orders absent -> P = R = 0.5 -> F = 50
    assert chrf("ab", "ba") == pytest.approx(50.0)
    assert chrf("xyz", "abc") == 0.0
    sacrebleu = pytest.importorskip("sacrebleu")  # a dependency of lm-eval
    for hyp, ref in [("12*30=360 360-80=280 #### 280", "12*30=360 360-80=280 #### 28"),
                     ("the cat sat", "the cat sat on the mat"), ("a", "abcdefgh"), ("10+20=30", "10+2=30")]:
        assert chrf(hyp, ref) == pytest.approx(sacrebleu.sentence_chrf(hyp, [ref]).score, abs=1e-6)


def _rec(i, correct, text, ids, setting=None):
    r = {"id": f"synthetic/{i}@" + (setting or "clean"), "ckpt": "m", "correct": correct, "text": text,
         "output_ids": ids, "intervention": None}
    if setting:
        r["intervention"] = {"mode": "insert", "fraction": 0.05, "at": 0.5, "at_step": None, "fired": True,
                             "points": [1], "clean_id": f"synthetic/{i}@clean"}
    return r


def test_summary_on_hand_made_records():
    clean = [_rec(0, True, "a 10", [1, 2]), _rec(1, True, "b", [1, 2]), _rec(2, False, "c", [3, 3]),
             _rec(3, True, "d", [4, 4])]
    s = "insert-p0.05-at0.5"
    shifted = [_rec(0, False, "a 1", [1, 3], s), _rec(1, True, "b", [1, 2], s), _rec(2, True, "cc", [3, 4], s),
               _rec(3, False, "e", [5, 5], s)]
    pm = pair_metrics(clean[0], shifted[0])
    assert pm["broken"] and not pm["fixed"] and pm["edit_tokens"] == 0.5 and pm["edit_text"] == 0.25
    assert not pm["absorbed"] and pair_metrics(clean[1], shifted[1])["absorbed"]
    (row,) = summarize(clean + shifted)
    assert (row["ckpt"], row["mode"], row["fraction"], row["at"], row["n"]) == ("m", "insert", 0.05, "0.5", 4)
    assert row["acc_clean"] == 0.75 and row["acc_shifted"] == 0.5 and row["drop"] == pytest.approx(0.25)
    assert row["drop_lo"] <= 0.25 <= row["drop_hi"]
    assert row["broken_rate"] == 0.5 and row["fixed_rate"] == 0.25 and row["flip_rate"] == 0.75
    assert row["absorbed"] == 0.25 and row["edit_tokens"] == pytest.approx((0.5 + 0 + 0.5 + 1) / 4)
    # an unpaired shifted record (its clean twin missing) is left out, not scored against nothing
    (row,) = summarize(clean[1:] + shifted)
    assert row["n"] == 3


def test_drop_heatmap_draws_each_cell_and_skips_what_has_no_fraction(tmp_path):
    rows = [{"ckpt": c, "mode": m, "fraction": f, "at": a, "drop": d}
            for c, d0 in (("ce", 0.1), ("ctc", -0.02)) for m in ("delete", "insert")
            for f in (0.0, 0.01, 0.05) for a, d in (("step3", d0), ("0.5", d0 / 2))]
    rows.append({"ckpt": "ce", "mode": "insert", "fraction": "pos:3", "at": "0.5", "drop": 0.9})
    fig = drop_heatmap_figure(rows)
    assert [ax.get_title() for ax in fig.axes[:4]] == ["ce · delete", "ce · insert", "ctc · delete", "ctc · insert"]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.5", "step3"]  # fractions before step triggers
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.01", "0.05"]  # fraction 0 (the clean run) left out
    assert sorted(t.get_text() for t in ax.texts) == ["+0.05", "+0.05", "+0.10", "+0.10"]
    assert sorted(at_key(a) for a in ["step10", "step2", "0.25"])[0] == (0, 0.25, "0.25")
    png = tmp_path / "h.png"
    assert plot_drop_heatmap(rows, png) and png.read_bytes()[:4] == b"\x89PNG"
    # nothing but clean and positional rows: no figure, and a stale file from an earlier grid is removed
    assert drop_heatmap_figure([r for r in rows if r["fraction"] in (0.0, "pos:3")]) is None
    assert not plot_drop_heatmap([rows[0]], png) and not png.exists()


# ----------------------------------------------------------------------------------------- the command
def test_cli_writes_outputs_and_resumes(tmp_path, cli, capsys):
    out = tmp_path / "run"
    args = ["shift", "--ckpt", "tiny-random", "--limit", "3", "--fractions", "0,0.1", "--at", "0.5",
            "--mode", "insert,swap", "--out", str(out), *SAMPLER_ARGS]
    assert cli(*args) == 0
    for f in ("config.json", "shift.jsonl", "shift_summary.csv", "shift_accuracy.png", "shift_drop_heatmap.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    first = read_records(out / "shift.jsonl")[0]
    assert len(first) == 9  # 3 clean + 3 insert + 3 swap
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["grid"]["modes"] == ["insert", "swap"] and cfg["checkpoints"][0]["sampler"]["gen_length"] == 16
    rows = list(csv.DictReader(open(out / "shift_summary.csv")))
    assert {(r["mode"], r["fraction"]) for r in rows} == {("insert", "0.0"), ("insert", "0.1"), ("swap", "0.0"),
                                                         ("swap", "0.1")}
    assert {"n", "acc_clean", "acc_shifted", "drop", "drop_lo", "drop_hi", "flip_rate", "edit_tokens",
            "absorbed"} <= set(rows[0])

    # kill simulation: drop the last 4 records and leave a half-written line
    lines = (out / "shift.jsonl").read_text().splitlines(keepends=True)
    (out / "shift.jsonl").write_text("".join(lines[:-4]) + lines[-4][:30])
    capsys.readouterr()
    assert cli(*args) == 0
    assert "wrote 4 new records" in capsys.readouterr().out.replace("\n", " ")
    again = read_records(out / "shift.jsonl")[0]
    assert [r["id"] for r in again] == [r["id"] for r in first]  # no duplicates, nothing lost
    assert [strip(r) for r in again] == [strip(r) for r in first]  # resumed batches decode identically
    assert [r["intervention"] for r in again] == [r["intervention"] for r in first]

    # a different grid into the same directory is refused (one line, exit 2) unless --overwrite
    capsys.readouterr()
    assert cli(*[a if a != "insert,swap" else "delete" for a in args]) == 2
    err = capsys.readouterr().err
    assert "different config" in err and err.strip().count("\n") == 0


@pytest.mark.parametrize("kw", [dict(), dict(block_length=8), dict(temperature=1.0, seed=3)])
def test_forked_sweep_equals_decoding_every_run_whole(tmp_path, bench, kw):
    """The shared prefix of a clean run and its shifted twins is decoded once; nothing else changes."""
    from mdlm_probe.adapters import load_model

    cfg = SamplerConfig(**{**CFG.to_dict(), **kw})
    samples = bench.load()[:4]
    grid = ShiftGrid(modes=["insert", "delete", "displace", "swap"], fractions=[0.0, 0.1, 0.25], ats=[0.25, 0.5, 0.75])
    calls = []

    def load(c):
        m = load_model(c)
        real = m.module.forward
        m.module.forward = lambda *a, **k: (calls.append(1), real(*a, **k))[1]  # count forwards
        return m

    runs = {}
    for fork in (True, False):
        calls.clear()
        run_sweep(["tiny-random"], bench, samples, {"tiny-random": cfg}, grid, tmp_path / str(fork), load=load, fork=fork)
        runs[fork] = (_by_key(tmp_path / str(fork) / "shift.jsonl"), len(calls))
    (forked, n_forked), (whole, n_whole) = runs[True], runs[False]
    assert set(forked) == set(whole) and len(whole) == 4 * (1 + 4 * 2 * 3)
    for k in whole:
        assert strip(forked[k]) == strip(whole[k]), k  # outputs, trajectories, scores, nfe
        assert forked[k]["intervention"] == whole[k]["intervention"], k
    assert n_forked < 0.75 * n_whole  # and the shared parts really were decoded once


def _by_key(path):
    return {(r["ckpt"], r["id"]): r for r in read_records(path)[0]}


def test_two_worker_processes_write_what_one_process_writes(tmp_path, cli, perturbed_ckpt):
    common = ["shift", "--ckpt", "tiny-random", "--ckpt", perturbed_ckpt, "--limit", "4", "--fractions", "0,0.1",
              "--at", "0.5", "--mode", "insert,delete", *SAMPLER_ARGS]
    assert cli(*common, "--out", str(tmp_path / "one")) == 0
    assert cli(*common, "--out", str(tmp_path / "two"), "--num-processes", "2") == 0
    one, two = _by_key(tmp_path / "one" / "shift.jsonl"), _by_key(tmp_path / "two" / "shift.jsonl")
    assert len(one) == 2 * 4 * 3 and set(one) == set(two)  # 2 ckpts x 4 samples x (clean + 2 settings)
    assert all(strip(one[k]) == strip(two[k]) and one[k]["intervention"] == two[k]["intervention"] for k in one)
    assert not list((tmp_path / "two" / "shards").glob("*.jsonl"))  # merged, shard files gone
    assert (tmp_path / "one" / "shift_summary.csv").read_text() == (tmp_path / "two" / "shift_summary.csv").read_text()


def test_clean_run_copied_from_a_matching_eval_run(tmp_path, cli):
    from mdlm_probe.runs.evaluate import run_eval

    overrides = {"gen_length": 16, "steps": 8, "block_length": 16, "batch_size": 2}
    run_eval("tiny-random", "synthetic", tmp_path / "eval", sampler_overrides=overrides, limit=4)
    args = ["shift", "--ckpt", "tiny-random", "--limit", "4", "--fractions", "0,0.1", "--mode", "insert", *SAMPLER_ARGS]
    assert cli(*args, "--out", str(tmp_path / "fresh")) == 0
    assert cli(*args, "--out", str(tmp_path / "copied"), "--clean-from", str(tmp_path / "eval")) == 0
    fresh, copied = _by_key(tmp_path / "fresh" / "shift.jsonl"), _by_key(tmp_path / "copied" / "shift.jsonl")
    cleans = [k for k in fresh if k[1].endswith("@clean")]
    assert len(cleans) == 4 and all("batch" in copied[k] and "batch" not in fresh[k] for k in cleans)  # copied
    for k in cleans:
        assert copied[k]["output_ids"] == fresh[k]["output_ids"] and copied[k]["trajectory"] == fresh[k]["trajectory"]
        assert copied[k]["correct"] == fresh[k]["correct"]
    # other settings (steps 16 here) are not the same decode: nothing is copied
    other = [a if a != "8" else "16" for a in args]
    assert cli(*other, "--out", str(tmp_path / "other"), "--clean-from", str(tmp_path / "eval")) == 0
    assert not any("batch" in r for r in read_records(tmp_path / "other" / "shift.jsonl")[0])


def test_copied_clean_records_carry_the_sweeps_checkpoint_label(tmp_path):
    """A folder given by path is labelled by its sidecar name in eval records and by the path here: the copied
    clean records must carry the sweep's label, or nothing pairs them with the shifted ones."""
    import shutil

    from mdlm_probe.core.checkpoints import SHIPPED_DIR
    from mdlm_probe.runs.evaluate import run_eval

    ckpt = tmp_path / "renamed"
    shutil.copytree(SHIPPED_DIR / "tiny-random", ckpt)
    overrides = {"gen_length": 16, "steps": 8, "block_length": 16, "batch_size": 2}
    run_eval(str(ckpt), "synthetic", tmp_path / "eval", sampler_overrides=overrides, limit=2)
    grid = ShiftGrid(modes=["insert"], fractions=[0.0, 0.1], ats=[0.5])
    run_shift([str(ckpt)], tmp_path / "shift", grid, limit=2, sampler=overrides, clean_from=[tmp_path / "eval"])
    recs = read_records(tmp_path / "shift" / "shift.jsonl")[0]
    assert any("batch" in r for r in recs if r["id"].endswith("@clean"))  # copied from the eval run
    assert {r["ckpt"] for r in recs} == {str(ckpt)}


def test_show_prints_a_pair(cli, capsys):
    rc = cli("shift", "--ckpt", "tiny-random", "--prompt", "Ann has 10 pens.", "--show", "--mode", "delete",
             "--positions", "3", "--at", "0.5", *SAMPLER_ARGS)
    assert rc == 0
    out = capsys.readouterr().out
    assert "clean" in out and "shifted" in out and "delete-pos3-at0.5" in out and "final canvas" in out


@pytest.mark.parametrize("bad,needle", [
    (["--mode", "rotate"], "unknown shift mode"),
    (["--fractions", "0,x"], "--fractions"),
    (["--fractions", "0"], "nothing to shift"),
    (["--fractions", "1.5"], "not in [0, 1]"),
    (["--at", "1.5"], "--at"),
    (["--at", "0.5", "--at-step", "3"], "not both"),
    (["--positions", "40"], "--positions"),
    (["--positions", "3", "--fractions", "0.1"], "not both"),
    (["--mode", "displace", "--direction", "up"], "direction"),
    (["--judge-url", "ftp://x", "--judge-model", "m"], "judge-url"),
    (["--judge-url", "http://127.0.0.1:9/v1"], "--judge-model"),
    (["--limit", "0"], "--limit"),
    (["--block-length", "5"], "block-length"),
    (["--num-processes", "0"], "--num-processes"),
])
def test_bad_options_exit_2_with_one_line(cli, capsys, bad, needle):
    capsys.readouterr()
    rc = cli("shift", "--ckpt", "tiny-random", *SAMPLER_ARGS, *bad)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert needle in err and "Traceback" not in err and err.strip().count("\n") == 0


def test_grid_validation_library():
    with pytest.raises(BadInput):
        ShiftGrid(modes=["insert", "insert"]).validate(16)
    with pytest.raises(BadInput):
        ShiftGrid(modes=[]).validate(16)
    assert [s.setting for s in ShiftGrid(modes=["insert"], fractions=[0, 0.01], ats=[0.25, 0.5]).specs()] == [
        "insert-p0.01-at0.25", "insert-p0.01-at0.5"]
    assert [s.setting for s in ShiftGrid(modes=["displace"], direction="left", at_step=4, ats=[],
                                         positions=[3, 7]).specs()] == ["displace-left-pos3_7-step4"]


def test_fixed_positions_are_their_own_summary_rows(tiny_random, bench):
    samples = bench.load()[:2]
    clean = build_records(tiny_random, bench, samples, CFG, ckpt_name="m", id_suffix="@clean")
    fixed = shifted_records(tiny_random, bench, samples, CFG, Shift(mode="delete", positions=(3, 9), at=0.5),
                            ckpt_name="m")
    assert all(r["intervention"]["points"] == [3, 9] and r["intervention"]["fraction"] is None for r in fixed)
    (row,) = summarize(clean + fixed)
    assert row["fraction"] == "pos:3_9" and row["n"] == 2 and row["fired"] == 1.0


# ----------------------------------------------------------------------------------------- the library's run
def test_run_shift_owns_the_whole_run_without_the_cli(tmp_path):
    from mdlm_probe.runs.shift import run_shift

    grid = ShiftGrid(modes=["delete"], fractions=[0.0, 0.1], ats=[0.5])
    sampler = {"gen_length": 16, "steps": 8, "block_length": 16, "batch_size": 2}
    lines = []
    res = run_shift(["tiny-random"], tmp_path / "run", grid, limit=3, sampler=sampler, log=lines.append)
    assert res.written == 6 and len(res.records) == 6  # 3 clean + 3 shifted
    assert any("6/6 records (100%)" in ln and "ETA" in ln for ln in lines), lines  # progress with its total
    for f in ("config.json", "shift.jsonl", "shift_summary.csv", "shift_accuracy.png", "shift_drop_heatmap.png"):
        assert (tmp_path / "run" / f).is_file(), f
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["command"] == "shift" and cfg["limit"] == 3 and cfg["checkpoints"][0]["sampler"]["steps"] == 8
    assert {(r["mode"], r["fraction"]) for r in res.rows} == {("delete", 0.0), ("delete", 0.1)}
    again = run_shift(["tiny-random"], tmp_path / "run", grid, limit=3, sampler=sampler)
    assert again.written == 0 and again.rows == res.rows  # resumed: nothing decoded again
    with pytest.raises(BadInput, match="--clean-from"):
        run_shift(["tiny-random"], tmp_path / "run2", grid, limit=3, sampler=sampler, clean_from=[tmp_path])
    with pytest.raises(BadInput, match="nothing to shift"):
        run_shift(["tiny-random"], tmp_path / "run3", ShiftGrid(modes=["delete"], fractions=[0.0]), sampler=sampler)
    assert not (tmp_path / "run2").exists() and not (tmp_path / "run3").exists()  # checked before anything is written


def test_shift_and_eval_share_the_chat_default_and_shift_has_a_default_out(tmp_path, cli, monkeypatch):
    import inspect

    from mdlm_probe.cli.eval import eval_command
    from mdlm_probe.cli.shift import shift
    from mdlm_probe.core.rundir import DEFAULT_CHAT

    from mdlm_probe.runs.settings import resolve_settings

    # One declaration for both (None = not given, so a --preset can set it), resolved in one place.
    defaults = {f.__name__: inspect.signature(f).parameters["chat"].default.default for f in (eval_command, shift)}
    assert defaults["eval_command"] == defaults["shift"]
    st = resolve_settings(ckpt="tiny-random", chat=defaults["shift"], command="shift")
    assert st.chat is DEFAULT_CHAT and st.provenance["chat"] == "default"
    monkeypatch.chdir(tmp_path)
    assert cli("shift", "--ckpt", "tiny-random", "--limit", "2", "--fractions", "0,0.1", "--mode", "delete",
               *SAMPLER_ARGS) == 0
    run = tmp_path / "runs" / "shift" / "synthetic-tiny-random"
    assert (run / "shift.jsonl").is_file() and json.loads((run / "config.json").read_text())["chat"] is DEFAULT_CHAT


def test_a_larger_limit_extends_a_shift_run_reusing_its_records(tmp_path):
    from mdlm_probe.runs.shift import run_shift

    grid = ShiftGrid(modes=["delete"], fractions=[0.0, 0.1], ats=[0.5])
    sampler = {"gen_length": 16, "steps": 8, "block_length": 16, "batch_size": 2}
    small = run_shift(["tiny-random"], tmp_path / "run", grid, limit=2, sampler=sampler)
    big = run_shift(["tiny-random"], tmp_path / "run", grid, limit=4, sampler=sampler)
    assert big.written == 4 and len(big.records) == 8  # only the 2 new problems decoded (clean + shifted)
    assert big.records[:4] == small.records  # the first records kept as they were
    assert json.loads((tmp_path / "run" / "config.json").read_text())["limit"] == 4
    fresh = run_shift(["tiny-random"], tmp_path / "fresh", grid, limit=4, sampler=sampler)
    assert sorted(map(strip, big.records), key=str) == sorted(map(strip, fresh.records), key=str)
    with pytest.raises(BadInput, match="different config"):  # shrinking is not extending
        run_shift(["tiny-random"], tmp_path / "run", grid, limit=3, sampler=sampler)
