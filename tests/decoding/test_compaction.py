"""Batch compaction (`SamplerConfig.compact`, decoding/compaction.py): rows with no mask left up to the block's
end leave the forward batch. The decoded tokens, commit steps and NFE are those of the uncompacted decode
(greedy and with random draws: they happen over the full batch's shapes), on left-padded batches of prompts of
different lengths; fewer positions are forwarded wherever a row finishes before the batch; settings whose
stages read every row's logits are refused in one line."""

from __future__ import annotations

import pytest

from mdlm_probe import SamplerConfig, generate, load_model
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks.benchmarks import get_benchmark

SETTINGS = [
    dict(threshold=0.9),  # the sidecar's single block
    dict(threshold=0.7, block_length=16),
    dict(block_length=16),  # LLaDA's plan: rows finish a block together, so little or nothing leaves
    dict(threshold=0.9, temperature=0.8, seed=3),  # Gumbel noise drawn over the whole (B, L, V)
    dict(remasking="random", block_length=16, steps=24),  # random confidences drawn over the whole canvas
]


@pytest.fixture(scope="module")
def model():
    return load_model("tiny-ce")


@pytest.fixture(scope="module")
def prompts():
    bench = get_benchmark("synthetic")
    ps = [bench.prompt(s, 0) for s in bench.load()[:8]]
    assert len({len(p) for p in ps}) > 1  # different lengths: the batch is left-padded
    return ps


@pytest.mark.parametrize("extra", SETTINGS, ids=[str(s) for s in SETTINGS])
def test_compaction_gives_the_same_decode(model, prompts, extra):
    cfg = SamplerConfig(**{**dict(gen_length=48, steps=48, block_length=48, batch_size=8), **extra})
    a = generate(model, prompts, cfg)
    b = generate(model, prompts, SamplerConfig(**{**cfg.to_dict(), "compact": True}))
    for ra, rb in zip(a, b):
        assert rb["output_ids"] == ra["output_ids"]
        assert rb["trajectory"]["commit_step"] == ra["trajectory"]["commit_step"]
        assert rb["nfe"] == ra["nfe"]
    forwarded = (sum(r["tokens_forwarded"] for r in a), sum(r["tokens_forwarded"] for r in b))
    assert forwarded[1] <= forwarded[0]
    if extra.get("threshold") and "block_length" not in extra:  # rows finish at different steps: they leave
        assert forwarded[1] < forwarded[0]


def test_compaction_is_recorded_only_when_on():
    assert "compact" not in SamplerConfig().to_dict()
    assert SamplerConfig(compact=True).to_dict()["compact"] is True


@pytest.mark.parametrize("extra", [dict(cache="dual"), dict(cache="prefix"), dict(cfg_scale=1.0),
                                   dict(repair="remask-low"), dict(cache="dual", measure_cache_drift=True)])
def test_compaction_refuses_settings_that_read_every_row(extra):
    with pytest.raises(BadInput, match="--compact"):
        SamplerConfig(compact=True, **extra).validate()
