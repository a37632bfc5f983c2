"""The adaptive cache (`--cache adaptive`, decoding/adaptive_cache.py) on checkpoints with LLaDA's and Dream's
real layouts (tests/helpers/arch_checkpoints.py) and on the shipped tiny-ce:

- with the drift threshold at 0 it refreshes at every step: exactly `--cache-refresh 1` (itself exact mode),
  token for token, in the trajectories, NFE and tokens forwarded; both adapters, both step plans, greedy and
  Gumbel, with and without a confidence threshold, with CFG, left-padded batches, windows of 1 and 2 blocks;
- with a positive threshold it forwards fewer positions than exact mode, and a threshold no drift reaches
  refreshes only where the window ends; bad settings are one line.
"""

from __future__ import annotations

import pytest

from arch_checkpoints import dream_arch_checkpoint, llada_arch_checkpoint
from mdlm_probe import SamplerConfig, generate, load_model
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding.adaptive_cache import AdaptiveCache, block_drift

FAMILIES = ("llada", "dream")
PROMPTS = ["Ann has 10 pens.", "7 * 8?", "x"]  # different lengths: left-padded in one batch
SETTINGS = [dict(), dict(temperature=1.0, seed=3), dict(threshold=0.15), dict(threshold=0.05, temperature=1.0, seed=5),
            dict(cfg_scale=1.0)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("arch")
    folders = {"llada": llada_arch_checkpoint(root / "llada"), "dream": dream_arch_checkpoint(root / "dream")}
    return {f: load_model(folders[f], dtype="float64") for f in FAMILIES}


def cfg_of(**kw) -> SamplerConfig:
    return SamplerConfig(**{**dict(gen_length=8, steps=8, block_length=4, batch_size=8), **kw})


def same_decode(a, b):
    assert [r["output_ids"] for r in a] == [r["output_ids"] for r in b]
    assert [r["trajectory"] for r in a] == [r["trajectory"] for r in b]
    assert [(r["nfe"], r["tokens_forwarded"]) for r in a] == [(r["nfe"], r["tokens_forwarded"]) for r in b]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("schedule", ["llada", "dream"])
@pytest.mark.parametrize("window", [1, 2])
@pytest.mark.parametrize("kw", SETTINGS)
def test_adaptive_at_threshold_zero_equals_refresh_every_step(models, family, schedule, window, kw):
    m = models[family]
    extra = {"remasking": "maskgit_plus"} if schedule == "dream" else {}
    cfg = cfg_of(schedule=schedule, **extra, **kw)
    a = generate(m, PROMPTS, SamplerConfig(**{**cfg.to_dict(), "cache": "dual", "cache_refresh": 1}))
    b = generate(m, PROMPTS, SamplerConfig(**{**cfg.to_dict(), "cache": "adaptive", "cache_drift_threshold": 0.0,
                                              "cache_window": window}))
    same_decode(a, b)
    same_decode(generate(m, PROMPTS, cfg), b)  # and so exact mode


@pytest.mark.parametrize("kw", [dict(block_length=16), dict(block_length=16, threshold=0.9)])
def test_adaptive_on_tiny_ce(kw):
    m = load_model("tiny-ce")
    prompts = ["Eva has 60 stamps and gets 250 more. How many now?\n", "Ray has 220 nuts and gets 200 more. How many now?\n"]
    cfg = SamplerConfig(**{**dict(gen_length=48, steps=48, batch_size=8), **kw})
    refresh1 = generate(m, prompts, SamplerConfig(**{**cfg.to_dict(), "cache": "dual", "cache_refresh": 1}))
    zero = generate(m, prompts, SamplerConfig(**{**cfg.to_dict(), "cache": "adaptive", "cache_drift_threshold": 0.0}))
    same_decode(refresh1, zero)
    exact = generate(m, prompts, cfg)
    lazy = generate(m, prompts, SamplerConfig(**{**cfg.to_dict(), "cache": "adaptive"}))
    assert sum(r["tokens_forwarded"] for r in lazy) < sum(r["tokens_forwarded"] for r in exact)
    for r in lazy:
        assert m.mask_id not in r["output_ids"]


def test_a_drift_never_reached_refreshes_only_where_the_window_ends(models, monkeypatch):
    made = []
    init = AdaptiveCache.__init__

    def counting(self, *a, **k):
        init(self, *a, **k)
        made.append(self)
    monkeypatch.setattr(AdaptiveCache, "__init__", counting)
    # 16 positions in blocks of 4 with a window of 2 blocks: full forwards at blocks 0 and 2 only
    generate(models["llada"], PROMPTS[:1], cfg_of(gen_length=16, steps=16, cache="adaptive",
                                                  cache_drift_threshold=2.0, cache_window=2))
    assert [p.full_forwards for p in made] == [2]
    made.clear()
    generate(models["llada"], PROMPTS[:1], cfg_of(gen_length=16, steps=16, cache="adaptive",
                                                  cache_drift_threshold=2.0, cache_window=1))
    assert [p.full_forwards for p in made] == [4]  # a window of one block: the dual cache's refreshes


def test_block_drift_is_total_variation():
    import torch
    p = torch.tensor([[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]], [[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]])
    q = torch.tensor([[[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]], [[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]])
    assert block_drift(p, q) == pytest.approx(0.25)  # row 0: (0.5 + 0) / 2; row 1: 0


@pytest.mark.parametrize("kw", [dict(cache_drift_threshold=-0.1), dict(cache_window=0),
                                dict(cache_drift_threshold=float("nan"))])
def test_bad_adaptive_settings_are_one_line(kw):
    with pytest.raises(BadInput):
        SamplerConfig(cache="adaptive", **kw).validate()
