"""The adaptive cache (`--cache adaptive`, decoding/adaptive_cache.py) on checkpoints with LLaDA's and Dream's
real layouts (tests/helpers/arch_checkpoints.py) and on the shipped tiny-ce:

- the adapters' write-through forward: on an unchanged canvas it gives the full forward's logits and leaves the
  stored keys as they were; re-running every position after an edit gives the edited canvas's full forward and
  keys (float64, to rounding);
- with the drift threshold at 0 it refreshes at every step: exactly `--cache-refresh 1` (itself exact mode),
  token for token, in the trajectories, NFE and tokens forwarded; both adapters, both step plans, greedy and
  Gumbel, with and without a confidence threshold, with CFG, left-padded batches;
- with a drift no step reaches it makes one full forward per decode, and each cached step runs the block, the
  probe and exactly the positions whose tokens changed since their keys were computed; bad settings are one line.
"""

from __future__ import annotations

import pytest
import torch

from arch_checkpoints import dream_arch_checkpoint, llada_arch_checkpoint
from mdlm_probe import SamplerConfig, generate, load_model
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding.adaptive_cache import AdaptiveCache, key_drift

FAMILIES = ("llada", "dream")
PROMPTS = ["Ann has 10 pens.", "7 * 8?", "x"]  # different lengths: left-padded in one batch
SETTINGS = [dict(), dict(temperature=1.0, seed=3), dict(threshold=0.15), dict(threshold=0.05, temperature=1.0, seed=5),
            dict(cfg_scale=1.0)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("arch")
    folders = {"llada": llada_arch_checkpoint(root / "llada"), "dream": dream_arch_checkpoint(root / "dream")}
    return {f: load_model(folders[f], dtype="float64") for f in FAMILIES}


@pytest.mark.parametrize("name", ["llada", "dream", "tiny-ce"])
def test_write_through_forward(models, name):
    m = models[name] if name in models else load_model(name, dtype="float64")
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 40, (3, 20), generator=g)
    am = torch.ones_like(ids)
    am[0, :3] = 0  # left padding
    am[1, :1] = 0
    full, cache = m.forward_all(ids, am)
    torch.testing.assert_close(full, m(ids, attention_mask=am))
    keys = torch.stack([m.cache_keys(cache, r) for r in range(20)])  # (L, layers, B, D)
    rows = torch.tensor([4, 10, 11, 12, 13])
    torch.testing.assert_close(m.forward_through(ids, am, cache, rows), full[:, rows])
    torch.testing.assert_close(torch.stack([m.cache_keys(cache, r) for r in range(20)]), keys)
    edited = ids.clone()
    edited[:, 12] = 7
    part = m.forward_through(edited, am, cache, rows)  # the other positions' keys are stale now: not exact
    assert not torch.allclose(part, m(edited, attention_mask=am)[:, rows])
    assert not torch.allclose(m.cache_keys(cache, 12), keys[12])  # ... but the edited position's were rewritten
    everything = m.forward_through(edited, am, cache, torch.arange(20))
    new_full, new_cache = m.forward_all(edited, am)
    torch.testing.assert_close(everything, new_full)
    for r in range(20):
        torch.testing.assert_close(m.cache_keys(cache, r), m.cache_keys(new_cache, r))


def cfg_of(**kw) -> SamplerConfig:
    return SamplerConfig(**{**dict(gen_length=8, steps=8, block_length=4, batch_size=8), **kw})


def same_decode(a, b):
    assert [r["output_ids"] for r in a] == [r["output_ids"] for r in b]
    assert [r["trajectory"] for r in a] == [r["trajectory"] for r in b]
    assert [(r["nfe"], r["tokens_forwarded"]) for r in a] == [(r["nfe"], r["tokens_forwarded"]) for r in b]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("schedule", ["llada", "dream"])
@pytest.mark.parametrize("kw", SETTINGS)
def test_adaptive_at_threshold_zero_equals_refresh_every_step(models, family, schedule, kw):
    m = models[family]
    extra = {"remasking": "maskgit_plus"} if schedule == "dream" else {}
    cfg = cfg_of(schedule=schedule, **extra, **kw)
    a = generate(m, PROMPTS, SamplerConfig(**{**cfg.to_dict(), "cache": "dual", "cache_refresh": 1}))
    b = generate(m, PROMPTS, SamplerConfig(**{**cfg.to_dict(), "cache": "adaptive", "cache_drift_threshold": 0.0}))
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
    dual = generate(m, prompts, SamplerConfig(**{**cfg.to_dict(), "cache": "dual"}))
    lazy = generate(m, prompts, SamplerConfig(**{**cfg.to_dict(), "cache": "adaptive"}))
    assert sum(r["tokens_forwarded"] for r in lazy) < sum(r["tokens_forwarded"] for r in dual)
    for r in lazy:
        assert m.mask_id not in r["output_ids"]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_drift_never_reached_runs_the_block_the_probe_and_the_stale_positions(models, family, monkeypatch):
    m, made, calls = models[family], [], []
    init = AdaptiveCache.__init__

    def counting(self, *a, **k):
        init(self, *a, **k)
        made.append(self)
    through, full = type(m).forward_through, type(m).forward_all

    def spy(self, ids, am, cache, rows):
        calls.append((ids.clone(), rows.tolist()))
        return through(self, ids, am, cache, rows)

    def spy_full(self, ids, am):
        calls.append((ids.clone(), None))
        return full(self, ids, am)
    monkeypatch.setattr(AdaptiveCache, "__init__", counting)
    monkeypatch.setattr(type(m), "forward_through", spy)
    monkeypatch.setattr(type(m), "forward_all", spy_full)
    generate(m, PROMPTS[:2], cfg_of(gen_length=16, steps=16, cache="adaptive", cache_drift_threshold=float("inf")))
    assert [p.full_forwards for p in made] == [1]  # the dual cache would make 4: one per block
    assert [rows is None for _, rows in calls] == [True] + [False] * 15
    seen = calls[0][0].clone()  # the canvas the keys were computed from
    P = seen.shape[1] - 16  # the prompt's positions (left-padded)
    assert made[0].probe == P - 1
    for step, (ids, rows) in enumerate(calls[1:], start=1):
        start = P + 4 * (step // 4)  # 4 steps per block of 4
        stale = sorted({P - 1, *range(start, start + 4), *(ids != seen).any(0).nonzero().squeeze(1).tolist()})
        assert rows == stale
        seen[:, rows] = ids[:, rows]
        if step % 4 == 0:  # a block start: the last block's final commits are re-run
            assert any(p < start for p in rows if p != P - 1)


def test_key_drift_is_the_largest_relative_change():
    ref = torch.tensor([[[3.0, 4.0], [1.0, 0.0]], [[0.0, 2.0], [1.0, 1.0]]])  # (layers, B, D)
    keys = ref.clone()
    keys[0, 0] = torch.tensor([3.0, 5.0])  # |(0, 1)| / 5 = 0.2
    keys[1, 1] = torch.tensor([1.0, 0.5])  # |(0, -0.5)| / sqrt(2)
    assert key_drift(keys, ref) == pytest.approx(0.5 / 2 ** 0.5)
    assert key_drift(ref, ref) == 0.0


@pytest.mark.parametrize("kw", [dict(cache_drift_threshold=-0.1), dict(cache_drift_threshold=float("nan"))])
def test_bad_adaptive_settings_are_one_line(kw):
    with pytest.raises(BadInput):
        SamplerConfig(cache="adaptive", **kw).validate()
