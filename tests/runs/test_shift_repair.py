"""`shift --repair`: the paired sweeps without and with a repair, their summary, the report's Repair section."""

from __future__ import annotations

import json

import pytest

from mdlm_probe.core.stats import paired_ratio_bootstrap
from mdlm_probe.report import build_report
from mdlm_probe.runs.shift import ShiftGrid
from mdlm_probe.runs.shift_repair import REPAIR_CSV, repair_summary, run_shift_repair, without_repair


def _rec(i: str, setting: str, correct: bool, nfe: int, repaired: bool = False) -> dict:
    r = {"ckpt": "m", "id": f"s/{i}@{setting}", "correct": correct, "nfe": nfe, "text": "x"}
    if setting != "clean":
        r["intervention"] = {"mode": "delete", "fraction": 0.01, "at": 0.5, "at_step": None,
                             "clean_id": f"s/{i}@clean", "fired": True}
        if repaired:
            r["hook_info"] = {"repair": [{"step": 3, "block": 0, "kind": "remask", "positions": [1]}]}
    return r


def test_the_summary_pairs_both_sweeps_per_problem():
    # 4 problems, all clean-correct in both; the shift breaks 2 without repair, 1 with it (problem 0 repaired)
    base = [_rec(str(i), "clean", True, 10) for i in range(4)]
    base += [_rec(str(i), "delete-p0.01-at0.5", i >= 2, 10) for i in range(4)]
    rep = [_rec(str(i), "clean", True, 12) for i in range(4)]
    rep += [_rec(str(i), "delete-p0.01-at0.5", i != 1, 13, repaired=i == 0) for i in range(4)]
    [row] = repair_summary(base, rep)
    assert (row["n"], row["drop_without"], row["drop_with"]) == (4, 0.5, 0.25)
    assert row["recovered"] == pytest.approx(0.5) and row["recovered_lo"] <= 0.5 <= row["recovered_hi"]
    assert row["nfe_ratio"] == pytest.approx(1.3) and row["extra_nfe"] == pytest.approx(3)
    assert row["clean_change"] == 0 and row["repaired_share"] == 0.25
    # a problem missing from either sweep is left out (unpaired)
    assert repair_summary(base, rep[1:])[0]["n"] == 3


def test_the_recovered_share_is_nan_without_a_drop():
    assert all(v != v for v in paired_ratio_bootstrap([0, 0], [0, 1]))
    share, lo, hi = paired_ratio_bootstrap([1, 1, 0, 0], [0, 1, 0, 0])
    assert share == pytest.approx(0.5) and lo <= share <= hi


def test_without_repair_drops_every_repair_setting():
    assert without_repair({"repair": "seam", "repair_window": 2, "steps": 8}) == {"steps": 8}


def test_a_repaired_sweep_beside_the_plain_one_and_the_report_section(tmp_path):
    grid = ShiftGrid(modes=["delete"], fractions=[0.0, 0.25], ats=(0.5,))
    sampler = {"gen_length": 8, "steps": 8, "block_length": 8, "batch_size": 4, "repair": "remask-low",
               "repair_threshold": 1.0}
    out = tmp_path / "shift"
    both = run_shift_repair(["tiny-random"], out, grid, sampler=sampler, limit=3)
    assert both.repaired.out == out / "repair-remask-low-t1" and (out / "shift.jsonl").is_file()
    assert json.loads((out / "config.json").read_text())["checkpoints"][0]["sampler"].get("repair") is None
    [row] = both.rows
    assert row["n"] == 3 and row["nfe_with"] >= row["nfe_without"]
    assert (both.repaired.out / REPAIR_CSV).is_file()
    html = build_report([out], tmp_path / "report", generated="T").read_text()
    assert 'id="repair"' in html and "recovered" in html
