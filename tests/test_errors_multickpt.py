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
