"""Win rates against a baseline, checked against Arena-Hard-Auto's own numbers (tests/fixtures/arena_hard/,
computed with its show_result code at two commits by analyses/make_arena_hard_fixture.py) and by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mdlm_probe.core import winrate
from mdlm_probe.tasks.arena_judge import legacy_rows, main_rows

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "arena_hard"
DATA = json.loads((FIX / "judgments.json").read_text())
RES = json.loads((FIX / "results.json").read_text())
MODELS = DATA["models"]


def _label(g):
    return None if g is None else g["verdict"]


def battle_rows():
    """Legacy battle rows in Arena-Hard's order: the judgments' order, game 1's rows before game 2's."""
    rows = []
    for j in DATA["judgments"]:
        g1, g2 = (_label(g) for g in j["games"])
        rows += [(j["model"], w) for w in legacy_rows(g1, 1) + legacy_rows(g2, 2)]
    return rows


def score_rows():
    out = {m: [] for m in MODELS}
    for j in DATA["judgments"]:
        s = main_rows(*(_label(g) for g in j["games"]))
        if s is not None:
            out[j["model"]] += s
    return out


def test_battles_match_legacy_counts():
    rows = battle_rows()
    leg = RES["legacy"]
    c = winrate.counts(rows)
    for m in MODELS:
        assert sum(c[m].values()) == leg["n_battles"][m]
        wc = leg["winner_counts"][m]  # model_a is the baseline, model_b the model
        assert (c[m]["baseline"], c[m]["model"], c[m]["tie"]) == (wc.get("model_a", 0), wc.get("model_b", 0),
                                                                  wc.get("tie", 0))


def test_score_rows_match_main_exactly():
    rows = score_rows()
    for m in MODELS:
        assert rows[m] == RES["main"]["battles_scores"][m]
        assert len(rows[m]) == RES["main"]["n_score_rows"][m]


def test_legacy_point_is_the_closed_form_and_matches_sklearn():
    got = winrate.legacy_bt(battle_rows())
    exact = RES["legacy"]["bt"]["winrate_exact"]["score"]
    elo = RES["legacy"]["bt"]["elo"]["score"]
    assert got["model-strong"].score == pytest.approx(123.5 / 147, abs=1e-12)  # (W + T/2) / N by hand: 116 + 15/2
    for m in MODELS:
        assert got[m].score == pytest.approx(exact[m], abs=1e-6)  # sklearn's lbfgs stops at tol 1e-8
        assert got[m].elo == pytest.approx(elo[m], abs=1e-3)


def test_legacy_bootstrap_reproduces_its_seeded_draws():
    """Same generator (numpy's legacy RandomState seeded 42, randint per round), same rows in the same order:
    the interval matches show_result's to the solver's tolerance."""
    got = winrate.legacy_bt(battle_rows(), rounds=100, seed=42)
    ref = RES["legacy"]["bt"]["winrate_exact"]
    for m in MODELS:
        assert got[m].lower == pytest.approx(ref["lower"][m], abs=1e-6)
        assert got[m].upper == pytest.approx(ref["upper"][m], abs=1e-6)
        assert round(100 * got[m].score, 2) == RES["legacy"]["bt"]["winrate_pct_rounded"]["score"][m]


def test_legacy_percentiles_from_stored_replicates():
    for m in MODELS:
        boot = np.array(RES["legacy"]["bt"]["elo_bootstrap"][m])
        lo = winrate.p_of(float(np.percentile(boot, 2.5)))
        assert lo == pytest.approx(RES["legacy"]["bt"]["winrate_exact"]["lower"][m], abs=1e-12)


def test_main_plain_reproduces_show_result():
    got = winrate.main_plain(score_rows(), rounds=100, seed=42)
    ref = RES["main"]["plain"]
    for m in MODELS:
        assert np.mean(score_rows()[m]) == pytest.approx(RES["main"]["mean_score_full_data"][m], abs=1e-12)
        for k, attr in (("mean", "score"), ("lower", "lower"), ("upper", "upper")):
            assert getattr(got[m], attr) == pytest.approx(ref[k][m], abs=1e-12)


def test_another_seed_moves_the_interval_not_the_point():
    a, b = winrate.legacy_bt(battle_rows(), seed=42), winrate.legacy_bt(battle_rows(), seed=7)
    assert a["model-even"].score == b["model-even"].score
    assert a["model-even"].lower != b["model-even"].lower


def test_all_wins_is_clipped_not_infinite():
    got = winrate.legacy_bt([("m", 1.0)] * 5 + [("n", 0.0)] * 3)
    assert got["m"].score == pytest.approx(1.0) and np.isfinite(got["m"].elo)
    assert got["n"].score == pytest.approx(0.0, abs=1e-8) and np.isfinite(got["n"].elo)
