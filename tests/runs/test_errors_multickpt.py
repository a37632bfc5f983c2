"""A shift run holds several checkpoints whose record ids repeat: errors mines and counts each one."""

import csv
import json

from mdlm_probe.cli import main


def _rec(ckpt, rid, text):
    return {"id": rid, "ckpt": ckpt, "benchmark": "synthetic", "prompt": "Ann has 1200 pens.\n",
            "reference": "1200-100=1100 #### 1100", "reference_answer": "1100", "text": text,
            "correct": text.endswith("1100"), "verdict": "correct" if text.endswith("1100") else "wrong"}


def test_errors_counts_each_checkpoint_of_a_shift_run(tmp_path):
    run = tmp_path / "shift"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"command": "shift", "benchmark": "synthetic"}))
    recs = [_rec("a", "synthetic/0@clean", "1200-100=1100 #### 1100"),
            _rec("a", "synthetic/1@clean", "1200-100=1100 #### 1100"),
            _rec("b", "synthetic/0@clean", "1200-100=110 #### 110"),  # dropped trailing zero
            _rec("b", "synthetic/1@clean", "1200-100=1100 #### 1100")]
    (run / "shift.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main(["errors", str(run), "--pattern", "trailing-zero", "--show", "0"]) == 0
    rows = {r["run"]: r for r in csv.DictReader(open(run / "errors_summary.csv"))}
    assert set(rows) == {"shift/a", "shift/b"}
    assert (rows["shift/a"]["n"], rows["shift/a"]["records"]) == ("2", "0")
    assert (rows["shift/b"]["n"], rows["shift/b"]["records"]) == ("2", "1")
    found = [json.loads(l) for l in open(run / "errors.jsonl")]
    assert {(f["ckpt"], f["id"]) for f in found} == {("b", "synthetic/0@clean")}


def _summary_matches_findings(run):
    """errors_summary.csv's `findings` per (run/ckpt, pattern) equal the errors.jsonl lines it counts."""
    found = [json.loads(l) for l in open(run / "errors.jsonl")]
    rows = list(csv.DictReader(open(run / "errors_summary.csv")))
    for r in rows:
        ckpt = r["run"].split("/", 1)[1] if "/" in r["run"] else None
        n = sum(f["pattern"] == r["pattern"] and (ckpt is None or f["ckpt"] == ckpt) for f in found)
        assert int(r["findings"]) == n, r
    return found, rows


def test_mining_one_pattern_keeps_the_other_patterns_findings(tmp_path):
    run = tmp_path / "shift"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"command": "shift", "benchmark": "synthetic"}))
    recs = [_rec("a", "synthetic/0@clean", "1200-100=110 #### 110"),  # dropped trailing zero
            _rec("a", "synthetic/1@clean", "1200-100=1100 <slack> #### 1100"),  # slack leak
            _rec("b", "synthetic/0@clean", "1200-100=1100 <slack> #### 1100"),
            _rec("b", "synthetic/1@clean", "1200-100=110 #### 110")]
    (run / "shift.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main(["errors", str(run), "--show", "0"]) == 0
    all_found, all_rows = _summary_matches_findings(run)
    assert {f["pattern"] for f in all_found} >= {"trailing-zero", "slack-leak"}
    assert main(["errors", str(run), "--pattern", "trailing-zero", "--show", "0"]) == 0
    found, rows = _summary_matches_findings(run)
    assert found == all_found  # the slack-leak findings (and every other pattern's) are still there
    assert rows == all_rows
    # mining one pattern of a fresh copy, then another, gives both, the summary listing both
    (run / "errors.jsonl").unlink()
    (run / "errors_summary.csv").unlink()
    assert main(["errors", str(run), "--pattern", "slack-leak", "--show", "0"]) == 0
    assert main(["errors", str(run), "--pattern", "trailing-zero", "--show", "0"]) == 0
    found, rows = _summary_matches_findings(run)
    assert {r["pattern"] for r in rows} == {"trailing-zero", "slack-leak"}
    assert {(f["ckpt"], f["id"], f["pattern"]) for f in found} == {
        ("a", "synthetic/0@clean", "trailing-zero"), ("b", "synthetic/1@clean", "trailing-zero"),
        ("a", "synthetic/1@clean", "slack-leak"), ("b", "synthetic/0@clean", "slack-leak")}


def test_mine_run_is_the_library_behind_errors(tmp_path):
    from mdlm_probe.runs.miners import mine_run

    run = tmp_path / "eval"
    run.mkdir()
    (run / "samples.jsonl").write_text(json.dumps(_rec("a", "synthetic/0", "1200-100=110 #### 110")) + "\n")
    res = mine_run(run, ["trailing-zero"])
    assert {f.pattern for _, f in res.hits} == {"trailing-zero"} and res.rows[0]["run"] == "eval"
    assert (run / "errors.jsonl").is_file() and (run / "errors_summary.csv").is_file()
