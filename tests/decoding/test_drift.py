"""The cache-drift meter (decoding/drift.py): zero with a refresh every step, positive with a stale cache, and
never a change to the decode."""

from __future__ import annotations

import pytest

from mdlm_probe.adapters import load_model
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding import SamplerConfig, generate

PROMPTS = ["Ann has 120 pens and buys 30 more. How many now?\n", "Max buys 10 packs of 600 apples. How many?\n"]


@pytest.fixture(scope="module")
def model():
    return load_model("tiny-ctc")


def cfg(**kw) -> SamplerConfig:
    return SamplerConfig(gen_length=24, steps=24, block_length=8, batch_size=2, **kw)


def drift_of(recs):
    return [r["hook_info"]["cache_drift"] for r in recs]


def test_refresh_every_step_has_no_drift(model):
    recs = generate(model, PROMPTS, cfg(cache="prefix", cache_refresh=1, measure_cache_drift=True))
    for d in drift_of(recs):
        assert d["steps"] == 24 and d["rows"] > 0
        assert d["kl_max"] <= 1e-6 and d["top1_agree"] == 1.0 and d["committed_differ"] == 0


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_stale_cache_drifts_and_the_decode_is_unchanged(model, cache):
    plain = generate(model, PROMPTS, cfg(cache=cache))
    measured = generate(model, PROMPTS, cfg(cache=cache, measure_cache_drift=True, drift_every=2))
    assert [r["output_ids"] for r in plain] == [r["output_ids"] for r in measured]
    assert [r["trajectory"]["commit_step"] for r in plain] == [r["trajectory"]["commit_step"] for r in measured]
    d = drift_of(measured)
    assert all(x["steps"] == 12 for x in d)  # every 2nd of 24 steps
    assert max(x["kl_mean"] for x in d) > 1e-4
    assert "hook_info" not in plain[0]


def test_default_records_do_not_name_the_meter():
    assert "measure_cache_drift" not in SamplerConfig().to_dict() and "drift_every" not in SamplerConfig().to_dict()


def test_meter_needs_a_cache():
    with pytest.raises(BadInput, match="--cache prefix or dual"):
        cfg(measure_cache_drift=True).validate()
    with pytest.raises(BadInput, match="drift-every"):
        cfg(cache="prefix", measure_cache_drift=True, drift_every=0).validate()
