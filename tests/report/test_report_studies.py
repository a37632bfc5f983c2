"""The report's invariance and frontier sections, from folders the `invariance` and `frontier` commands made on
the shipped tiny-ce with a tiny --limit: the tables carry the numbers of invariance.json / frontier.json, the
changed outputs appear as diffs, the frontier plot is embedded, and the sub-runs' cards line up with the
fields that differ marked."""

from __future__ import annotations

import csv
import html as htmllib
import json
import re

import pytest

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.report import build_report

SMALL = ["--gen-length", "16", "--steps", "16", "--block-length", "16", "--limit", "3"]


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    from mdlm_probe.cli import main

    root = tmp_path_factory.mktemp("studies")
    # batch size must not change anything; halving the steps changes outputs, so the diffs have something to show
    assert main(["invariance", "synthetic", "--ckpt", "tiny-ce", "--vary", "batch-size=1,3", "--vary", "steps=16,4",
                 "--out", str(root / "inv"), *SMALL]) == 0
    assert main(["frontier", "synthetic", "--ckpt", "tiny-ce", "--modes", "exact,threshold=0.9",
                 "--out", str(root / "fr"), *SMALL]) == 0
    return root


@pytest.fixture(scope="module")
def page(studies, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    html = build_report([studies / "inv", studies / "fr"], out, generated="fixed").read_text()
    return html, out


def _section(html: str, name: str) -> str:
    m = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert m, f"no {name} section"
    return m.group(1)


def test_invariance_section_carries_the_comparison(studies, page):
    html, out = page
    res = json.loads((studies / "inv" / "invariance.json").read_text())
    sec = htmllib.unescape(_section(html, "invariance"))
    by = {v["variant"]: v for v in res["variants"]}
    assert set(by) == {"base", "batch_size=3", "steps=4"}
    assert by["batch_size=3"]["identical"] == 3  # batch invariance on the shipped checkpoint
    for label, v in by.items():
        assert label in sec and f"{v.get('identical', v['n'])}/{v['n']}" in sec
    rows = {r["variant"]: r for r in csv.DictReader(open(out / "invariance.csv"))}
    assert float(rows["steps=4"]["McNemar p"]) == pytest.approx(by["steps=4"]["mcnemar_p"])
    assert float(rows["steps=4"]["diff vs base"]) == pytest.approx(by["steps=4"]["diff"])
    changed = by["steps=4"]["changed"]
    assert changed and not by["batch_size=3"]["changed"]
    for c in changed:  # every changed output shows as a diff against the baseline's, its id in the title
        assert f"steps=4 · {c['id']}" in sec
    assert '<span class="del">' in _section(html, "invariance") or '<span class="ins">' in _section(html, "invariance")


def test_frontier_section_has_the_table_and_the_plot(studies, page):
    html, out = page
    res = json.loads((studies / "fr" / "frontier.json").read_text())
    sec = htmllib.unescape(_section(html, "frontier"))
    assert re.search(r'<img class="plot" alt="accuracy against speed per decoding mode" src="data:image/png;base64,', sec)
    rows = {r["mode"]: r for r in csv.DictReader(open(out / "frontier.csv"))}
    assert set(rows) == {m["mode"] for m in res["modes"]} == {"exact", "threshold=0.9"}
    for m in res["modes"]:
        assert float(rows[m["mode"]]["accuracy"]) == pytest.approx(m["accuracy"])
        assert float(rows[m["mode"]]["tokens_per_forward"]) == pytest.approx(m["tokens_per_forward"])
    assert any(m["pareto_tokens_per_forward"] for m in res["modes"]) and "*" in sec


def test_sub_runs_show_as_runs_with_their_cards(page):
    html, _ = page
    runs = _section(html, "runs")
    for label in ("inv/base", "inv/batch_size=3", "inv/steps=4", "fr/exact", "fr/threshold=0.9"):
        assert label in runs
    differing = re.findall(r'<tr class="differs"><td>≠ ([^<]+)</td>', runs)
    assert {"sampler.batch_size", "sampler.steps", "sampler.threshold", "overrides.batch_size"} <= set(differing)
    assert '<a href="#invariance">' in html and '<a href="#frontier">' in html
    accuracy = _section(html, "accuracy")  # each study's runs in the accuracy table, paired in their own section
    assert "fr/threshold=0.9" in accuracy and "inv/steps=4" in accuracy
    assert "compared in their own sections" in accuracy


def test_a_corrupt_study_file_is_bad_input(tmp_path):
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "invariance.json").write_text("{not json")
    with pytest.raises(BadInput, match="invariance.json: not readable JSON"):
        build_report([tmp_path / "inv"], tmp_path / "out")
