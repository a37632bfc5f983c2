"""`mdlm-probe frontier`: accuracy against speed for several decoding modes on the same problems."""

from __future__ import annotations

import csv
import json

import pytest

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.evaluate import run_eval
import math

from mdlm_probe.runs.frontier import add_aup, aup, family, mode_row, parse_mode, parse_modes, pareto


def test_parse_mode():
    assert parse_mode("exact") == {}
    assert parse_mode("dual") == {"cache": "dual"}
    assert parse_mode("threshold=0.7") == {"threshold": 0.7}
    assert parse_mode("dual+threshold=0.9") == {"cache": "dual", "threshold": 0.9}
    assert parse_mode("prefix+cache-refresh=2") == {"cache": "prefix", "cache_refresh": 2}


@pytest.mark.parametrize("modes", [["bogus"], ["threshold"], ["threshold=x"], ["dtype=bfloat16"],
                                   ["exact", "exact"], []])
def test_bad_modes_are_bad_input(modes):
    with pytest.raises(BadInput):
        parse_modes(modes)


def test_mode_row_and_pareto():
    recs = [{"correct": True, "output_ids": [1] * 8, "nfe": 4, "seconds": 0.5},
            {"correct": False, "output_ids": [1] * 8, "nfe": 4, "seconds": 0.5}]
    r = mode_row("m", {}, recs)
    assert (r["accuracy"], r["tokens_per_forward"], r["tokens_per_second"], r["seconds_per_sample"]) == \
        (0.5, 2.0, 16.0, 0.5)
    rows = [{"accuracy": 0.9, "s": 1.0}, {"accuracy": 0.8, "s": 2.0}, {"accuracy": 0.8, "s": 1.5},
            {"accuracy": 0.9, "s": 1.0}]
    assert pareto(rows, "s") == [True, True, False, True]  # ties dominate neither


def test_aup_against_a_hand_computation():
    # points (TPF, accuracy %): (1, 80), (2, 78), (4, 70) and (3, 75.5); y_max 80; y_1 = 80, so 75.5 and
    # above stay, 70 is dropped (more than 5 points below the least parallel point)
    w = lambda y: min(1.0, math.exp(-3 * (1 - y / 80)))  # noqa: E731
    hand = 1 * 80 + (2 - 1) * (78 * w(78) + 80 * w(80)) / 2 + (3 - 2) * (75.5 * w(75.5) + 78 * w(78)) / 2
    # by hand: w(78) = exp(-0.075) = 0.927743, w(75.5) = exp(-0.16875) = 0.844718
    assert hand == pytest.approx(80 + (72.364 + 80) / 2 + (63.776 + 72.364) / 2, abs=1e-2)
    assert aup([(4, 70), (2, 78), (1, 80), (3, 75.5)], y_max=80) == pytest.approx(hand)
    assert aup([(2.5, 60)], y_max=80) == pytest.approx(150)  # one point: its rectangle, unweighted
    # a curve whose accuracy stays at the best gains the full rectangle for every step in TPF
    assert aup([(1, 50), (3, 50)], y_max=50) == pytest.approx(150)
    assert math.isnan(aup([], y_max=80))


def test_aup_families_group_modes_by_all_but_threshold():
    assert family({}) == "exact" and family({"threshold": 0.9}) == "exact"
    assert family({"cache": "dual", "threshold": 0.9}) == "cache=dual"
    rows = [{"settings": {}, "accuracy": 0.8, "tokens_per_forward": 1.0},
            {"settings": {"threshold": 0.9}, "accuracy": 0.78, "tokens_per_forward": 2.0},
            {"settings": {"cache": "dual"}, "accuracy": 0.7, "tokens_per_forward": 1.0}]
    fams = add_aup(rows)
    assert fams["exact"] == pytest.approx(aup([(1, 80), (2, 78)], 80))
    assert fams["cache=dual"] == pytest.approx(70.0)
    assert [r["aup"] for r in rows] == [fams["exact"], fams["exact"], fams["cache=dual"]]


def test_frontier_end_to_end(cli, capsys, tmp_path):
    out = tmp_path / "fr"
    assert cli("frontier", "synthetic", "--ckpt", "tiny-ce", "--limit", "8", "--out", str(out),
               "--modes", "exact,threshold=0.9,dual,dual+threshold=0.9") == 0
    res = json.loads((out / "frontier.json").read_text())
    rows = {r["mode"]: r for r in res["modes"]}
    assert list(rows) == ["exact", "threshold=0.9", "dual", "dual+threshold=0.9"]
    assert (out / "frontier.png").stat().st_size > 0
    with open(out / "frontier.csv") as f:
        assert [r["mode"] for r in csv.DictReader(f)] == list(rows)
    for r in rows.values():
        assert r["n"] == 8 and r["tokens_per_forward"] > 0 and r["tokens_per_second"] > 0
        assert r["tokens_per_forward"] == pytest.approx(r["tokens"] / (r["nfe_mean"] * r["n"]))
        assert r["tokens"] == 8 * 48  # generated tokens only: the 48-token canvas of each sample, no prompt
        assert r["aup"] == res["aup"][r["aup_family"]] and r["aup"] > 0
    assert rows["threshold=0.9"]["aup_family"] == "exact" and rows["dual+threshold=0.9"]["aup_family"] == "cache=dual"
    # a confidence threshold commits several tokens per forward; exact decoding commits one per step here
    assert rows["threshold=0.9"]["tokens_per_forward"] > rows["exact"]["tokens_per_forward"]
    assert any(r["pareto_tokens_per_second"] for r in rows.values())
    assert any(r["pareto_tokens_per_forward"] for r in rows.values())
    # the exact mode is what `eval` gives on the same problems
    s = run_eval("tiny-ce", "synthetic", tmp_path / "eval", limit=8)
    assert rows["exact"]["accuracy"] == s["accuracy"] and rows["exact"]["correct"] == s["correct"]
    assert "frontier.png" in capsys.readouterr().out
