"""`compare` (library + CLI) and `errors` (CLI) on small run directories written in tmp_path."""

from __future__ import annotations

import csv
import json
from functools import partial

import pytest

from mdlm_probe.core import rundir
from mdlm_probe.runs.compare import compare_runs, write_compare
from mdlm_probe.core.exceptions import BadInput

load_run = partial(rundir.load_run, need_records=True)  # what compare and errors read

SAMPLER = {"gen_length": 48, "steps": 48, "block_length": 48, "temperature": 0.0, "collapse": "surface"}


def record(i, text, correct, reference="12*100=1200 1200-300=900 #### 900", prompt="Ann buys 12 packs of 100.\n",
           raw_text=None, sampler=SAMPLER):
    return {"id": f"synthetic/{i}", "benchmark": "synthetic", "ckpt": "x", "prompt": prompt, "reference": reference,
            "text": text, "raw_text": raw_text if raw_text is not None else text + "<eos>",
            "correct": correct, "verdict": "correct" if correct else "wrong", "sampler": sampler}


def make_run(path, recs, benchmark="synthetic", sampler=SAMPLER, extra_lines=()):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"benchmark": benchmark, "sampler": sampler}))
    lines = [json.dumps(r) for r in recs] + list(extra_lines)
    (path / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return path


GOOD = "12*100=1200 1200-300=900 #### 900"
ZERO = "12*100=120 120-300=90 #### 90"  # dropped zeros


@pytest.fixture
def two_runs(tmp_path):
    # a: right on 0-9, wrong on 10-11; b: right on 0-3 and 10, wrong (dropped zeros) on 4-9 and 11.
    a = [record(i, GOOD if i < 10 else "#### 7", i < 10) for i in range(12)]
    b = [record(i, GOOD if i < 4 or i == 10 else ZERO, i < 4 or i == 10) for i in range(12)]
    return make_run(tmp_path / "ce", a), make_run(tmp_path / "ctc", b)


def test_compare_paired_numbers(two_runs):
    res = compare_runs([load_run(d) for d in two_runs])
    acc = {r["run"]: r for r in res["runs"]}
    assert acc["ce"]["correct"] == 10 and acc["ctc"]["correct"] == 5 and res["n_compared"] == 12
    lo, hi = acc["ce"]["ci"]
    assert lo < 10 / 12 < hi
    p = res["pairs"][0]
    assert p["diff"] == pytest.approx(-5 / 12)
    assert p["diff_ci"][0] <= p["diff"] <= p["diff_ci"][1] < 0
    assert p["b_right_a_wrong"] == ["synthetic/10"]
    assert sorted(p["a_right_b_wrong"]) == sorted(f"synthetic/{i}" for i in range(4, 10))
    assert p["mcnemar_p"] == pytest.approx(2 * (1 + 7) / 2 ** 7)  # 1 vs 6 discordant: 2 P(X <= 1), X ~ Bin(7, 1/2)
    tz = p["patterns"]["trailing-zero"]
    assert tz["rate_a"] == 0 and tz["rate_b"] == pytest.approx(7 / 12) and tz["diff_ci"][0] > 0


def test_compare_only_on_shared_ids(tmp_path):
    a = make_run(tmp_path / "a", [record(i, GOOD, True) for i in range(6)])
    b = make_run(tmp_path / "b", [record(i, GOOD, True) for i in range(3, 9)])
    res = compare_runs([load_run(a), load_run(b)])
    assert res["n_compared"] == 3
    c = make_run(tmp_path / "c", [record(i, GOOD, True) for i in range(20, 22)])
    with pytest.raises(BadInput, match="share no sample ids"):
        compare_runs([load_run(a), load_run(c)])


def test_compare_refuses_different_settings_unless_forced(tmp_path):
    a = make_run(tmp_path / "a", [record(i, GOOD, True) for i in range(3)])
    s2 = {**SAMPLER, "steps": 24}
    b = make_run(tmp_path / "b", [record(i, GOOD, True, sampler=s2) for i in range(3)], sampler=s2)
    with pytest.raises(BadInput, match="sampler differs.*steps"):
        compare_runs([load_run(a), load_run(b)])
    assert compare_runs([load_run(a), load_run(b)], force=True)["notes"]
    g = make_run(tmp_path / "g", [record(i, GOOD, True) for i in range(3)], benchmark="gsm8k")
    with pytest.raises(BadInput, match="benchmark differs"):
        compare_runs([load_run(a), load_run(g)])
    # the collapse map may differ: comparing a checkpoint under each map is the point
    c = {**SAMPLER, "collapse": "ctc"}
    d = make_run(tmp_path / "d", [record(i, GOOD, True, sampler=c) for i in range(3)], sampler=c)
    assert compare_runs([load_run(a), load_run(d)])["n_compared"] == 3


def test_unusable_runs(tmp_path):
    with pytest.raises(BadInput, match="no samples.jsonl"):
        load_run((tmp_path / "empty").mkdir() or tmp_path / "empty")
    e = make_run(tmp_path / "bad", [], extra_lines=["{not json", '{"no_id": 1}'])
    with pytest.warns(UserWarning, match="skipped 2 malformed"), \
            pytest.raises(BadInput, match=r"no usable records.*2 malformed"):
        load_run(e)
    a = make_run(tmp_path / "a", [record(i, GOOD, None, reference=None) for i in range(3)])
    b = make_run(tmp_path / "b", [record(i, GOOD, None, reference=None) for i in range(3)])
    with pytest.raises(BadInput, match="none of the 3 shared samples is scored"):
        compare_runs([load_run(a), load_run(b)])


def test_cli_compare_writes_files_and_warns(two_runs, tmp_path, cli, capsys):
    a, b = two_runs
    with open(b / "samples.jsonl", "a") as fh:
        fh.write("{broken\n")
    out = tmp_path / "cmp"
    assert cli("compare", str(a), str(b), "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert "skipped 1 malformed" in err
    res = json.loads((out / "compare.json").read_text())
    assert res["pairs"][0]["a_right_b_wrong"]
    rows = list(csv.DictReader(open(out / "compare.csv")))
    assert rows[0]["metric"] == "accuracy" and float(rows[0]["diff"]) == pytest.approx(-5 / 12)
    assert cli("compare", str(a)) == 2
    assert cli("compare", str(a), str(tmp_path / "nope")) == 2


def test_cli_errors_writes_outputs(two_runs, cli, capsys):
    a, b = two_runs
    assert cli("errors", str(a), str(b), "--show", "1") == 0
    out = capsys.readouterr().out
    assert "trailing-zero" in out
    rows = [json.loads(x) for x in (b / "errors.jsonl").read_text().splitlines()]
    tz = [r for r in rows if r["pattern"] == "trailing-zero"]
    assert {r["id"] for r in tz} == {f"synthetic/{i}" for i in list(range(4, 10)) + [11]}
    assert all(ZERO[r["start"]:r["end"]] == r["evidence"] for r in tz)
    summ = {r["pattern"]: r for r in csv.DictReader(open(b / "errors_summary.csv"))}
    assert summ["trailing-zero"]["records"] == "7" and float(summ["trailing-zero"]["rate_wrong"]) == 1.0
    assert float(summ["trailing-zero"]["rate"]) == pytest.approx(7 / 12, abs=1e-4)
    assert (a / "errors_summary.csv").is_file()


def test_cli_errors_options_and_bad_input(two_runs, tmp_path, cli, capsys):
    a, b = two_runs
    assert cli("errors", str(b), "--pattern", "trailing-zero", "--only-wrong", "--show", "0") == 0
    summ = list(csv.DictReader(open(b / "errors_summary.csv")))
    assert [r["pattern"] for r in summ] == ["trailing-zero"] and summ[0]["n"] == "7"
    assert cli("errors", str(b), "--pattern", "nonsense") == 2
    noref = make_run(tmp_path / "noref", [record(i, GOOD, None, reference=None) for i in range(2)])
    assert cli("errors", str(noref), "--pattern", "trailing-zero") == 2
    assert "no record has a reference" in capsys.readouterr().err
    assert cli("errors", str(noref), "--pattern", "all") == 0  # slack-leak / eos-truncation still apply
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "samples.jsonl").write_text("")
    assert cli("errors", str(tmp_path / "blank")) == 2


# ----------------------------------------------------------------------------------------- several checkpoints per run
def shift_run(path, right_by_ckpt, collapse=None):
    """A shift-like run: for each checkpoint, clean records synthetic/i@clean right where `right` says."""
    path.mkdir(parents=True)
    sampler = {**SAMPLER, "collapse": collapse}
    (path / "config.json").write_text(json.dumps({"benchmark": "synthetic", "sampler": sampler}))
    recs = []
    for ckpt, right in right_by_ckpt.items():
        for i, ok in enumerate(right):
            r = record(i, GOOD if ok else ZERO, bool(ok), sampler=sampler)
            recs.append({**r, "id": f"synthetic/{i}@clean", "ckpt": ckpt, "collapse": "surface"})
    (path / "shift.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def test_compare_shift_runs_pairs_each_checkpoint_with_itself(tmp_path):
    a = shift_run(tmp_path / "a", {"ce": [1, 1, 1, 1], "ctc": [1, 1, 0, 0]})
    b = shift_run(tmp_path / "b", {"ce": [1, 1, 1, 0], "ctc": [0, 0, 0, 0]})
    res, out = write_compare([a, b], tmp_path / "cmp")
    assert [(p["a"], p["b"]) for p in res["pairs"]] == [("a/ce", "b/ce"), ("a/ctc", "b/ctc")]
    diffs = {p["b"]: p["diff"] for p in res["pairs"]}
    assert diffs == {"b/ce": pytest.approx(-1 / 4), "b/ctc": pytest.approx(-2 / 4)}  # not one arm picked silently
    assert "ce: a/ce vs b/ce" in res["compared"] and "ctc: a/ctc vs b/ctc" in res["compared"]
    assert json.loads((out / "compare.json").read_text())["compared"] == res["compared"]
    # --ckpt chooses
    res, _ = write_compare([a, b], tmp_path / "cmp2", ckpts=["ctc"])
    assert [(p["a"], p["b"]) for p in res["pairs"]] == [("a/ctc", "b/ctc")]
    with pytest.raises(BadInput, match="holds no checkpoint nope"):
        write_compare([a, b], tmp_path / "cmp3", ckpts=["nope"])


def test_compare_one_run_compares_its_checkpoints_against_the_first(tmp_path):
    a = shift_run(tmp_path / "a", {"ce": [1, 1, 1, 1], "ctc": [1, 0, 0, 0], "ctc2": [1, 1, 0, 0]})
    res, _ = write_compare([a], tmp_path / "cmp")
    assert [(p["a"], p["b"]) for p in res["pairs"]] == [("a/ce", "a/ctc"), ("a/ce", "a/ctc2")]
    assert "against ce" in res["compared"]
    e = make_run(tmp_path / "e", [record(i, GOOD, True) for i in range(3)])
    with pytest.raises(BadInput, match="at least two"):
        write_compare([e], tmp_path / "cmp2")


def test_compare_names_collapse_and_what_is_compared(two_runs, tmp_path, cli, capsys):
    a, b = two_runs
    assert cli("compare", str(a), str(b), "--out", str(tmp_path / "cmp")) == 0
    out = capsys.readouterr().out
    assert "comparing ce vs ctc" in out and "None" not in out
    res = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["collapse"] for r in res["runs"]] == ["surface", "surface"]
    own = shift_run(tmp_path / "own", {"ce": [1, 0]})  # no collapse forced: the record's own map
    assert load_run(own).shift[0]["collapse"] == "surface"
    from mdlm_probe.runs.compare import collapse_of

    assert collapse_of({"sampler": {"collapse": None}, "collapse": "ctc"}) == "ctc"
    assert collapse_of({"sampler": {"collapse": None}}) == "own"


def test_tables_in_a_log_keep_long_run_names_apart(tmp_path, cli, capsys):
    """Non-terminal output (80 columns) must not cut two long run names to the same prefix."""
    long = "a-rather-long-run-directory-name-shared-by-both-runs"
    a = make_run(tmp_path / f"{long}-first", [record(i, GOOD, True) for i in range(4)])
    b = make_run(tmp_path / f"{long}-second", [record(i, ZERO, False) for i in range(4)])
    capsys.readouterr()
    assert cli("errors", str(a), str(b), "--show", "0") == 0
    assert cli("compare", str(a), str(b), "--out", str(tmp_path / "cmp"), "--show-ids", "0") == 0
    out = capsys.readouterr().out
    assert "…" not in out
    assert out.count("first") >= 2 and out.count("second") >= 2  # each name in full, in each table
