"""`mdlm-probe invariance`: the same problems under several settings, compared with the baseline."""

from __future__ import annotations

import csv
import json

import pytest

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.invariance import compare_records, parse_vary, variants


def test_parse_vary_types_and_one_factor_at_a_time():
    vary = parse_vary(["batch-size=1,8", "threshold=none,0.9", "dtype=float32,bfloat16", "cache=none,dual"])
    assert vary == [("batch_size", [1, 8]), ("threshold", [None, 0.9]), ("dtype", ["float32", "bfloat16"]),
                    ("cache", ["none", "dual"])]  # cache is a str field: "none" stays a name
    labels = [label for label, _ in variants(vary)]
    assert labels == ["base", "batch_size=8", "threshold=0.9", "dtype=bfloat16", "cache=dual"]
    settings = dict(variants(vary))
    assert settings["dtype=bfloat16"] == {"batch_size": 1, "threshold": None, "dtype": "bfloat16", "cache": "none"}


@pytest.mark.parametrize("spec", [["bogus=1,2"], ["batch-size=1"], ["batch-size"], ["batch-size=1,x"],
                                  ["batch-size=1,1"], ["cache=none,dual", "cache=none,prefix"], []])
def test_bad_vary_is_bad_input(spec):
    with pytest.raises(BadInput):
        parse_vary(spec)


def test_compare_records_counts_identical_outputs_and_flips():
    base = [{"id": "a", "output_ids": [1, 2], "correct": True, "text": "12"},
            {"id": "b", "output_ids": [3], "correct": False, "text": "3"},
            {"id": "c", "output_ids": [4], "correct": True, "text": "4"}]
    other = [{"id": "a", "output_ids": [1, 2], "correct": True, "text": "12"},
             {"id": "b", "output_ids": [3], "correct": False, "text": "3"},
             {"id": "c", "output_ids": [5], "correct": False, "text": "5"}]
    r = compare_records(base, other)
    assert (r["n"], r["identical"]) == (3, 2)
    assert r["base_right_variant_wrong"] == ["c"] and r["variant_right_base_wrong"] == []
    assert r["diff"] == pytest.approx(-1 / 3)
    assert [c["id"] for c in r["changed"]] == ["c"] and r["changed"][0]["text"] == "5"


def test_invariance_end_to_end_batch_size_gives_identical_outputs(cli, capsys, tmp_path):
    """On the shipped tiny-ce checkpoint on CPU, batch size 1 and 8 decode exactly the same tokens; the cache
    variant is measured, not asserted equal."""
    out = tmp_path / "inv"
    assert cli("invariance", "synthetic", "--ckpt", "tiny-ce", "--vary", "batch-size=1,8", "--vary", "cache=none,dual",
               "--vary", "dtype=float32,bfloat16", "--limit", "16", "--out", str(out)) == 0
    res = json.loads((out / "invariance.json").read_text())
    rows = {r["variant"]: r for r in res["variants"]}
    assert list(rows) == ["base", "batch_size=8", "cache=dual", "dtype=bfloat16"]
    b8 = rows["batch_size=8"]
    assert b8["n"] == 16 and b8["identical"] == 16 and b8["changed"] == [] and b8["diff"] == 0.0
    for label in rows:  # each variant is an ordinary eval run with its own settings
        cfg = json.loads((out / "runs" / label / "config.json").read_text())
        assert cfg["sampler"]["batch_size"] == (8 if label == "batch_size=8" else 1)
        assert cfg["sampler"]["cache"] == ("dual" if label == "cache=dual" else "none")
        assert cfg["dtype"] == ("bfloat16" if label == "dtype=bfloat16" else "float32")
    for label in ("cache=dual", "dtype=bfloat16"):  # measured, not asserted equal
        r = rows[label]
        assert r["n"] == 16 and r["identical"] + len(r["changed"]) == 16
        assert r["accuracy"] - r["accuracy_base"] == pytest.approx(r["diff"])
    with open(out / "invariance.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["variant"] for r in table] == list(rows)
    assert table[1]["identical"] == "16"
    printed = capsys.readouterr().out
    assert "16/16" in printed and "invariance.json" in printed


def test_invariance_cli_bad_setting_exits_2(cli, capsys, tmp_path):
    assert cli("invariance", "synthetic", "--ckpt", "tiny-ce", "--vary", "bogus=1,2", "--out", str(tmp_path)) == 2
    assert "unknown setting 'bogus'" in capsys.readouterr().err
