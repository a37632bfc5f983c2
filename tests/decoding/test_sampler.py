"""The diffusion sampler: LLaDA parity (golden ids), schedule, batch independence, seeds, hooks, threshold,
block caches (prefix, dual), collapse maps, bad settings.

All decoding here runs tiny-random in float64 (random weights give near-flat logits, so confidences are
close and any deviation from the reference's arithmetic changes which positions commit).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mdlm_probe import SamplerConfig, diffuse, generate
from mdlm_probe.core.collapse import collapse_ids
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding import num_transfer_tokens, pad_left, resolve_sampler

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "llada_golden.json"
PROMPTS = ["Ann has 10 pens.", "What is 7 * 8?", "x"]


@pytest.fixture(scope="module")
def gold() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def m64(gold):
    """tiny-random in float64, with the golden fixture's EoT id (LLaDA's <|eot_id|> stand-in)."""
    from mdlm_probe import load_model

    m = load_model("tiny-random", dtype="float64")
    m.eot_id = gold["eot_id"]
    return m


def cfg_of(**kw) -> SamplerConfig:
    base = dict(gen_length=8, steps=8, block_length=8, batch_size=8)
    return SamplerConfig(**{**base, **kw})


def canvas(m, prompts):
    ids, am = pad_left([m.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts], m.pad_id)
    return ids, (am if bool((am == 0).any()) else None)


# ----------------------------------------------------------------------------------------- golden parity
def test_golden_fixture_matches_the_shipped_weights(gold, m64):
    from mdlm_probe.core.checkpoints import checkpoint_hash

    assert gold["ckpt_hash"] == checkpoint_hash(m64.path), \
        "tiny-random changed: regenerate tests/fixtures/llada_golden.json with analyses/make_golden.py"
    assert gold["eos_id"] == m64.eos_id
    names = {c["name"] for c in gold["cases"]}
    # the settings the issue asks parity for are all covered
    assert {"t0_one_block", "t0_blocks", "t0_few_steps", "t0_cfg", "random_remask", "t1_seed",
            "t1_logits_eos_inf", "t0_conf_eos_eot_inf", "t03_conf_eos_eot_inf", "padded_t0",
            "padded_t1_seed"} <= names


@pytest.mark.parametrize("name", [
    "t0_one_block", "t0_blocks", "t0_few_steps", "t0_cfg", "random_remask", "t1_seed", "t07_random_blocks",
    "t1_logits_eos_inf", "t0_conf_eos_eot_inf", "t03_conf_eos_eot_inf", "padded_t0", "padded_t0_blocks_cfg",
    "padded_t1_seed"])
def test_generate_reproduces_llada_reference(gold, m64, name):
    case = next(c for c in gold["cases"] if c["name"] == name)
    cfg = SamplerConfig(**{**gold["defaults"], **case["settings"], "batch_size": len(case["prompts"])})
    out = [r["output_ids"] for r in generate(m64, case["prompts"], cfg)]
    assert out == case["output_ids"]


def test_diffuse_reproduces_llada_reference_on_a_padded_batch(gold, m64):
    case = next(c for c in gold["cases"] if c["name"] == "padded_t1_seed")
    ids, am = canvas(m64, case["prompts"])
    assert am is not None  # the case really is padded
    torch.manual_seed(case["settings"]["seed"])
    out = diffuse(m64, ids, am, SamplerConfig(**{**gold["defaults"], **case["settings"]}))
    assert out.x[:, ids.shape[1]:].tolist() == case["output_ids"]
    assert out.nfe == case["settings"]["steps"]


# ----------------------------------------------------------------------------------------- schedule
def test_num_transfer_tokens_matches_the_rule():
    got = num_transfer_tokens(torch.tensor([10, 3, 0, 8]), 4)
    assert got.tolist() == [[3, 3, 2, 2], [1, 1, 1, 0], [0, 0, 0, 0], [2, 2, 2, 2]]


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 7, 16])
def test_num_transfer_tokens_sums_to_masks_and_is_non_increasing(steps):
    masks = torch.arange(0, 40)
    got = num_transfer_tokens(masks, steps)
    assert got.shape == (40, steps)
    assert torch.equal(got.sum(1), masks)
    assert bool((got[:, :-1] >= got[:, 1:]).all())
    assert int((got.max(1).values - got.min(1).values).max()) <= 1


def test_steps_per_block_and_commits_per_step(m64):
    cfg = cfg_of(gen_length=12, steps=6, block_length=6)  # 2 blocks x 3 steps: 2 tokens per step
    r = generate(m64, PROMPTS[:1], cfg)[0]
    traj = r["trajectory"]
    assert r["nfe"] == 6
    assert sorted(traj["commit_step"]) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert traj["block"] == [0] * 6 + [1] * 6
    assert all(s < 3 for s, b in zip(traj["commit_step"], traj["block"]) if b == 0)
    assert m64.mask_id not in r["output_ids"]


# ----------------------------------------------------------------------------------------- batch independence, seeds
def test_t0_output_does_not_depend_on_batch_or_padding(m64):
    cfg = cfg_of(gen_length=8, steps=4, block_length=4)
    alone = [generate(m64, [p], cfg)[0]["output_ids"] for p in PROMPTS]
    together = [r["output_ids"] for r in generate(m64, PROMPTS, cfg)]  # left-padded to the longest
    reordered = [r["output_ids"] for r in generate(m64, PROMPTS[::-1] + ["a much longer prompt than the rest"], cfg)]
    assert together == alone
    assert reordered[:3][::-1] == alone
    assert len({tuple(o) for o in alone}) > 1  # the prompts matter at all


def test_t0_padding_alone_does_not_change_output(m64):
    cfg = cfg_of(gen_length=8, steps=8, block_length=8)
    ids = m64.tokenizer("What is 7 * 8?", add_special_tokens=False)["input_ids"]
    plain = diffuse(m64, torch.tensor([ids]), None, cfg)
    padded_ids = torch.tensor([[m64.pad_id] * 5 + ids])
    am = torch.tensor([[0] * 5 + [1] * len(ids)])
    padded = diffuse(m64, padded_ids, am, cfg)
    assert plain.x[0, len(ids):].tolist() == padded.x[0, len(ids) + 5:].tolist()


def test_t_positive_same_seed_same_batch_same_output(m64):
    cfg = cfg_of(temperature=1.0, seed=5)
    a = [r["output_ids"] for r in generate(m64, PROMPTS, cfg)]
    b = [r["output_ids"] for r in generate(m64, PROMPTS, cfg)]
    c = [r["output_ids"] for r in generate(m64, PROMPTS, cfg_of(temperature=1.0, seed=6))]
    assert a == b
    assert a != c  # the seed is used


# ----------------------------------------------------------------------------------------- hooks
def test_noop_hook_changes_nothing(m64):
    cfg = cfg_of(gen_length=8, steps=4, block_length=4)
    seen = []
    plain = generate(m64, PROMPTS, cfg)
    hooked = generate(m64, PROMPTS, cfg, hooks=[lambda st: seen.append((st.step, st.block))])
    assert [r["output_ids"] for r in hooked] == [r["output_ids"] for r in plain]
    assert [r["trajectory"] for r in hooked] == [r["trajectory"] for r in plain]
    assert [r["nfe"] for r in hooked] == [r["nfe"] for r in plain]
    assert seen == [(0, 0), (1, 0), (2, 1), (3, 1)]


def reopen_hook(at_step: int, offset: int):
    """Turn the response position `offset` back into a mask after step `at_step` (once), as a shift would."""
    def hook(st):
        if st.step == at_step:
            st.x[:, st.prompt_len + offset] = st.mask_id
            st.commit_step[:, offset] = -1
    return hook


def test_hook_that_reopens_a_position_mid_block_reschedules(m64):
    cfg = cfg_of(gen_length=8, steps=4, block_length=8)  # 2 tokens per step
    ids, am = canvas(m64, PROMPTS)
    plain = diffuse(m64, ids, am, cfg)
    first = int(plain.commit_step[0].argmin())  # a position committed at step 0 in row 0
    assert int(plain.commit_step[0, first]) == 0
    out = diffuse(m64, ids, am, cfg, hooks=[reopen_hook(1, first)])
    P = ids.shape[1]
    assert not bool((out.x[:, P:] == m64.mask_id).any())  # ends with no masks
    assert out.nfe == 4  # the extra token fits in the remaining steps (recomputed schedule)
    assert int(out.commit_step[0, first]) >= 2  # re-committed after the hook
    assert bool((out.commit_step >= 0).all())


def test_hook_that_reopens_after_the_last_step_of_a_block_adds_a_step(m64):
    cfg = cfg_of(gen_length=8, steps=4, block_length=4)  # 2 blocks x 2 steps
    ids, am = canvas(m64, PROMPTS[:1])
    out = diffuse(m64, ids, am, cfg, hooks=[reopen_hook(1, 0)])  # step 1 is block 0's last
    assert out.nfe == 5
    assert not bool((out.x == m64.mask_id).any())
    assert int(out.block_of[0, 0]) == 0 and int(out.commit_step[0, 0]) == 2


# ----------------------------------------------------------------------------------------- threshold
class Scripted:
    """A 'model' whose logits are scripted per forward call: (G, V) probability tables for the response.

    Vocabulary: 0 = [MASK], 1..V-1 tokens. The prompt rows get flat logits (never read).
    """

    mask_id, eos_id, device = 0, None, torch.device("cpu")

    def __init__(self, tables):
        self.tables, self.calls = [torch.tensor(t, dtype=torch.float32) for t in tables], 0

    def __call__(self, x, attention_mask=None):
        G = self.tables[0].shape[0]
        table = self.tables[min(self.calls, len(self.tables) - 1)]
        self.calls += 1
        logits = torch.zeros(x.shape[0], x.shape[1], table.shape[1])
        logits[:, -G:] = table.log()
        return logits

    @staticmethod
    def row(token: int, p: float, V: int = 5) -> list[float]:
        """A distribution whose argmax is `token` with probability `p` (the rest spread over the others)."""
        rest = (1 - p) / (V - 2)
        return [0.0 if v == 0 else (p if v == token else rest) for v in range(V)]


def test_threshold_commits_confident_positions_and_at_least_one_on_scripted_logits():
    R = Scripted.row
    step0 = [R(1, 0.9), R(2, 0.3), R(3, 0.6), R(4, 0.2)]
    step1 = [R(1, 0.9), R(2, 0.3), R(3, 0.6), R(4, 0.35)]  # nothing open reaches it: the best one commits
    step2 = [R(1, 0.9), R(2, 0.3), R(3, 0.6), R(4, 0.35)]
    model = Scripted([step0, step1, step2])
    conf_2 = float(torch.softmax(torch.tensor(step0[2]).log(), -1)[3])  # position 2's confidence, exactly
    cfg = SamplerConfig(gen_length=4, steps=4, block_length=4, threshold=conf_2)
    out = diffuse(model, torch.tensor([[1]]), None, cfg)
    assert out.commit_step[0].tolist() == [0, 2, 0, 1]  # step 0: 0.9 and exactly tau; then one per step
    assert out.x[0, 1:].tolist() == [1, 2, 3, 4]
    assert out.nfe == model.calls == 3


def test_threshold_never_commits_past_the_current_block():
    R = Scripted.row
    table = [R(1, 0.5), R(2, 0.4), R(3, 0.99), R(4, 0.99)]  # the confident ones are in block 1
    model = Scripted([table])
    out = diffuse(model, torch.tensor([[1]]), None, SamplerConfig(gen_length=4, steps=4, block_length=2, threshold=0.45))
    assert out.commit_step[0].tolist() == [0, 1, 2, 2]
    assert out.block_of[0].tolist() == [0, 0, 1, 1]
    assert out.nfe == 3


@pytest.mark.parametrize("threshold,nfe", [(1.0, 8), (1e-9, 2)])
def test_threshold_commits_at_least_one_token_and_finishes(m64, threshold, nfe):
    cfg = cfg_of(gen_length=8, steps=4, block_length=4, threshold=threshold)
    ids, am = canvas(m64, PROMPTS)
    out = diffuse(m64, ids, am, cfg)
    assert not bool((out.x == m64.mask_id).any())
    # (almost) nothing reaches 1.0: one token per step; everything reaches 1e-9: a block per step
    assert out.nfe == nfe
    for row in out.commit_step.tolist():
        assert set(range(nfe)) == set(row)  # every step committed >= 1 token in every row


def test_threshold_commits_exactly_the_confident_proposals(m64):
    cfg = cfg_of(gen_length=8, steps=8, block_length=8, threshold=0.02)
    ids, am = canvas(m64, PROMPTS[:1])
    out = diffuse(m64, ids, am, cfg)
    conf, steps = out.confidence[0], out.commit_step[0]
    for s in range(out.nfe):
        c = conf[steps == s]
        assert len(c) >= 1
        if len(c) > 1:
            assert bool((c >= 0.02).all())


# ----------------------------------------------------------------------------------------- block caches
def test_forward_cached_equals_the_full_forward_after_the_prefix(m64):
    ids, am = canvas(m64, PROMPTS)
    x = torch.cat([ids, torch.full((3, 8), m64.mask_id)], 1)
    am = torch.cat([am, torch.ones(3, 8, dtype=am.dtype)], 1)
    full = m64(x, attention_mask=am)
    start = ids.shape[1] + 2
    logits, cache = m64.forward_prefix(x, am, start)
    assert torch.equal(logits, full)  # bit-equal: the same full forward on the same shapes
    part = m64.forward_cached(x, am, cache, start)
    assert part.shape == (3, x.shape[1] - start, full.shape[-1])
    assert torch.allclose(part, full[:, start:], atol=1e-10, rtol=0)
    assert torch.allclose(m64.forward_cached(x, am, cache, start), part, atol=0, rtol=0)  # cache not consumed


def test_dual_cache_forward_equals_the_full_forward_on_the_block(m64):
    """Prefix and suffix cached, block recomputed: exact while the canvas is what the cache was built from,
    including left padding (the mask is reordered to the cache's key order)."""
    ids, am = canvas(m64, PROMPTS)
    P = ids.shape[1]
    x = torch.cat([ids, torch.full((3, 12), m64.mask_id)], 1)
    x[:, P:P + 3] = torch.tensor([20, 21, 22])  # a committed block before the current one
    am = torch.cat([am, torch.ones(3, 12, dtype=am.dtype)], 1)
    full = m64(x, attention_mask=am)
    start, end = P + 4, P + 8
    logits, cache = m64.forward_prefix(x, am, start, end)
    assert torch.equal(logits, full)  # bit-equal: the same full forward on the same shapes
    keys = cache[0][0]
    assert keys.shape[-2] == start + (x.shape[1] - end)  # prefix and suffix, not the block
    part = m64.forward_cached(x, am, cache, start, end)
    assert part.shape == (3, end - start, full.shape[-1])
    assert torch.allclose(part, full[:, start:end], atol=1e-10, rtol=0)
    # and the stored keys are the full forward's keys at those positions, taken at that moment
    from transformers import DynamicCache

    ref = m64.module(input_ids=x, attention_mask=am, position_ids=(am.cumsum(-1) - 1).clamp(min=0),
                     cache=DynamicCache(config=m64.module.config), use_cache=True).cache.layers[0].keys
    assert torch.equal(keys, torch.cat([ref[..., :start, :], ref[..., end:, :]], -2))  # same forward, same shapes


@pytest.mark.parametrize("cache", ["prefix", "dual"])
@pytest.mark.parametrize("kw", [dict(), dict(cfg_scale=1.0), dict(temperature=1.0, seed=2), dict(threshold=0.02)])
def test_cache_refreshed_every_step_equals_exact_mode(m64, cache, kw):
    cfg = cfg_of(gen_length=8, steps=8, block_length=4, **kw)  # 4 steps per block
    a = generate(m64, PROMPTS, cfg)
    b = generate(m64, PROMPTS, SamplerConfig(**{**cfg.to_dict(), "cache": cache, "cache_refresh": 1}))
    assert [r["output_ids"] for r in a] == [r["output_ids"] for r in b]
    assert [r["trajectory"] for r in a] == [r["trajectory"] for r in b]
    assert [(r["nfe"], r["tokens_forwarded"]) for r in a] == [(r["nfe"], r["tokens_forwarded"]) for r in b]


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cache_with_one_step_per_block_equals_uncached(m64, cache):
    cfg = cfg_of(gen_length=8, steps=4, block_length=2)  # every step starts a block: full forwards only
    a = generate(m64, PROMPTS, cfg)
    b = generate(m64, PROMPTS, SamplerConfig(**{**cfg.to_dict(), "cache": cache}))
    assert [r["output_ids"] for r in a] == [r["output_ids"] for r in b]
    assert [r["trajectory"] for r in a] == [r["trajectory"] for r in b]


@pytest.mark.parametrize("kw", [dict(), dict(cfg_scale=1.0), dict(threshold=0.02)])
def test_caches_run_and_forward_fewer_tokens(m64, kw):
    cfg = cfg_of(gen_length=12, steps=12, block_length=4, **kw)
    runs = {c: generate(m64, PROMPTS, SamplerConfig(**{**cfg.to_dict(), "cache": c})) for c in ("none", "prefix", "dual")}
    G = 12
    for i in range(len(PROMPTS)):
        none, prefix, dual = (runs[c][i] for c in ("none", "prefix", "dual"))
        for r in (prefix, dual):
            assert m64.mask_id not in r["output_ids"]
            traj = r["trajectory"]  # every position committed once, in its own block, steps in order
            assert sorted(set(traj["block"])) == [0, 1, 2] and traj["block"] == [j // 4 for j in range(G)]
            assert all(0 <= s < r["nfe"] for s in traj["commit_step"])
            assert max(traj["commit_step"][:4]) < min(traj["commit_step"][4:8])
        assert dual["tokens_forwarded"] < prefix["tokens_forwarded"] < none["tokens_forwarded"]
        if "threshold" not in kw:
            assert none["nfe"] == prefix["nfe"] == dual["nfe"] == 12


class Spy:
    """The model, with a log of which cached entry point each forward went through."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __getattr__(self, name):
        attr = getattr(self.model, name)
        if name in ("forward_prefix", "forward_cached"):
            return lambda *a, **k: (self.calls.append(name), attr(*a, **k))[1]
        return attr


def test_cache_refresh_every_n_steps_does_full_forwards_on_schedule(m64):
    ids, am = canvas(m64, PROMPTS[:1])
    spy = Spy(m64)
    diffuse(spy, ids, am, cfg_of(gen_length=8, steps=8, block_length=4, cache="dual", cache_refresh=2))
    full, part = "forward_prefix", "forward_cached"
    assert spy.calls == [full, part, full, part] * 2  # 4 steps per block, refreshed every 2


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cache_refreshes_when_a_hook_edits_cached_positions(m64, cache):
    cfg = cfg_of(gen_length=8, steps=8, block_length=4, cache=cache)
    ids, am = canvas(m64, PROMPTS[:1])
    out = diffuse(m64, ids, am, cfg, hooks=[reopen_hook(5, 1)])  # block 1 running: reopen a block-0 position
    assert not bool((out.x == m64.mask_id).any())
    assert int(out.commit_step[0, 1]) >= 6


def test_dual_cache_refreshes_when_a_hook_edits_the_suffix(m64):
    ids, am = canvas(m64, PROMPTS[:1])
    spy = Spy(m64)

    def put_token_in_block_1(st):
        if st.step == 1:
            st.x[:, st.prompt_len + 6] = 20  # a later block's position, inside the dual cache's suffix

    diffuse(spy, ids, am, cfg_of(gen_length=8, steps=8, block_length=4, cache="dual"), hooks=[put_token_in_block_1])
    # full forwards: block 0's start, the refresh after the edit (step 2), block 1's start; block 1 then
    # has 3 masks left, so 3 steps
    full, part = "forward_prefix", "forward_cached"
    assert spy.calls == [full, part, full, part] + [full, part, part]


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cache_needs_an_adapter_with_cache_support(m64, cache):
    from mdlm_probe.adapters import MaskedDiffusionModel

    plain = MaskedDiffusionModel(module=m64.module, tokenizer=m64.tokenizer, mask_id=m64.mask_id, eos_id=m64.eos_id)
    ids, am = canvas(m64, PROMPTS[:1])
    with pytest.raises(BadInput, match=f"--cache {cache} needs an adapter"):
        diffuse(plain, ids, am, cfg_of(cache=cache))
    assert diffuse(plain, ids, am, cfg_of()).nfe == 8  # the uncached path works with the bare interface


# ----------------------------------------------------------------------------------------- collapse maps
def test_collapse_maps_on_ids():
    S, E, P, M = 2, 3, 0, 1  # slack, eos, pad, mask
    ids = [10, S, 11, 11, S, 11, 12, 12, E, 13, 13]
    assert collapse_ids(ids, "surface", S, [E]) == [10, 11, 11, 11, 12, 12]
    assert collapse_ids(ids, "ctc", S, [E]) == [10, 11, 11, 12]
    assert collapse_ids([P, 10, 10, M, 10], "ctc", S, [E], drop_ids=[P, M]) == [10, 10]  # merge first, then drop
    assert collapse_ids([E, 10], "surface", S, [E]) == []
    assert collapse_ids([10, 10], "surface", None, []) == [10, 10]
    with pytest.raises(ValueError):
        collapse_ids(ids, "nope", S, [E])


def test_collapse_maps_on_text(m64):
    from mdlm_probe.core.records import decode_output

    tok = m64.tokenizer
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    slack, eos, pad = m64.slack_id, m64.eos_id, m64.pad_id
    d = decode_output(m64, enc("1") + [slack] + enc("00") + [eos] + enc("77") + [pad], None)
    assert d["text_surface"] == "100" and d["text_ctc"] == "10"  # the dropped-trailing-zero failure
    d = decode_output(m64, enc("10") + [slack] + enc("0") + [pad, pad], "ctc")
    assert d["text_surface"] == "100" and d["text_ctc"] == "100" and d["text"] == "100"
    assert "<slack>" in d["raw_text"]


# ----------------------------------------------------------------------------------------- bad settings
@pytest.mark.parametrize("kw,word", [
    (dict(gen_length=10, block_length=4), "block-length"),
    (dict(gen_length=8, block_length=4, steps=3), "steps"),
    (dict(gen_length=8, block_length=8, steps=16), "exceed"),
    (dict(remasking="nope"), "remasking"),
    (dict(temperature=-1.0), "temperature"),
    (dict(threshold=1.5), "threshold"),
    (dict(threshold=0.0), "threshold"),
    (dict(cache_refresh=-1), "cache-refresh"),
    (dict(cache="full"), "cache"),
    (dict(collapse="both"), "collapse"),
    (dict(steps=0), "positive"),
])
def test_bad_settings_raise_bad_input(kw, word):
    with pytest.raises(BadInput, match=word):
        cfg_of(**kw).validate()
    with pytest.raises(BadInput):
        resolve_sampler(kw)


def test_resolve_sampler_prefers_options_then_sidecar_then_defaults(m64):
    side = m64.sidecar["sampler"]
    cfg = resolve_sampler({"steps": 8, "block_length": None, "seed": None}, m64)  # None = option not given
    assert cfg.steps == 8 != side["steps"]
    assert (cfg.gen_length, cfg.block_length, cfg.seed) == (side["gen_length"], side["block_length"], side["seed"])
    assert cfg.threshold is None and cfg.cache == "none"
    assert resolve_sampler({}, None) == SamplerConfig()


def test_prompt_too_long_is_bad_input(m64):
    with pytest.raises(BadInput, match="max length"):
        generate(m64, ["x" * 510], cfg_of())


@pytest.mark.parametrize("args,word", [
    (["--remasking", "nope"], "remasking"),
    (["--threshold", "2"], "threshold"),
    (["--cache", "full"], "cache"),
    (["--threshold", "0"], "threshold"),
    (["--steps", "3", "--gen-length", "8", "--block-length", "4"], "steps"),
])
def test_cli_bad_sampler_settings_exit_2_with_one_line(capsys, args, word):
    from mdlm_probe.cli import main

    rc = main(["generate", "--ckpt", "tiny-random", "--prompt", "x", *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip().count("\n") == 0 and word in err and "Traceback" not in err


# ----------------------------------------------------------------------------------------- the loop's parts
from mdlm_probe.decoding import StepState, TakeForks, loop, processors, schedules  # noqa: E402
from mdlm_probe.decoding.forward import build_forward  # noqa: E402
from mdlm_probe.decoding.stages import build_pipeline  # noqa: E402
from mdlm_probe.core.records import decoded_records  # noqa: E402


@pytest.fixture
def scratch_schedule():
    """Register test schedules under unique names and take them out again afterwards."""
    added = []

    def add(name, cls):
        schedules.register_schedule(name)(cls)
        added.append(name)
        return cls

    yield add
    for name in added:
        schedules.SCHEDULES.unregister(name)


def test_schedule_registry_refuses_a_name_twice_and_config_refuses_an_unknown_one():
    with pytest.raises(ValueError, match="already registered"):
        schedules.register_schedule("llada")(type("Again", (schedules.Schedule,), {}))
    assert schedules.SCHEDULES["llada"] is schedules.LLaDASchedule
    with pytest.raises(BadInput, match="unknown schedule 'nope'"):
        cfg_of(schedule="nope").validate()


def test_llada_schedule_is_num_transfer_tokens_over_the_steps_left():
    plan = schedules.get_schedule("llada").plan(torch.tensor([10, 3]), 4, first=1)
    assert plan.tolist() == num_transfer_tokens(torch.tensor([10, 3]), 3).tolist() == [[4, 3, 3], [1, 1, 1]]


def test_the_configured_schedule_plans_each_block_and_replans_after_a_hook(m64, scratch_schedule):
    calls = []

    class AllAtOnce(schedules.Schedule):
        """Every open mask at the first step left; records how it was asked."""

        def plan(self, masks, steps, first=0):
            calls.append((masks.tolist(), steps, first))
            out = torch.zeros((masks.shape[0], steps - first), dtype=torch.long)
            out[:, 0] = masks
            return out

    scratch_schedule("test-all-at-once", AllAtOnce)
    cfg = cfg_of(gen_length=8, steps=4, block_length=4, schedule="test-all-at-once")  # 2 blocks x 2 steps
    ids, am = canvas(m64, PROMPTS[:1])
    out = diffuse(m64, ids, am, cfg)
    assert out.commit_step[0].tolist() == [0] * 4 + [1] * 4  # a block per step: a block with no masks
    assert out.nfe == 2  # open ends before its plan does
    assert calls == [([4], 2, 0), ([4], 2, 0)]
    calls.clear()
    out = diffuse(m64, ids, am, cfg, hooks=[reopen_hook(0, 1)])  # step 0 filled block 0; reopen one
    assert calls[:2] == [([4], 2, 0), ([1], 2, 1)]  # re-planned for step 1 from the one mask left
    assert int(out.commit_step[0, 1]) == 1 and not bool((out.x == m64.mask_id).any())
    # the default and an explicit "llada" are the same decode
    a = diffuse(m64, ids, am, cfg_of(gen_length=8, steps=4, block_length=4))
    b = diffuse(m64, ids, am, cfg_of(gen_length=8, steps=4, block_length=4, schedule="llada"))
    assert torch.equal(a.x, b.x) and torch.equal(a.commit_step, b.commit_step)


def test_schedule_is_left_out_of_the_settings_dict_at_its_default_only():
    assert "schedule" not in cfg_of().to_dict()  # earlier runs' configs stay equal and resumable
    assert SamplerConfig.from_dict(cfg_of().to_dict()) == cfg_of()
    schedules.SCHEDULES.register("test-other")(type("Other", (schedules.LLaDASchedule,), {}))
    try:
        d = cfg_of(schedule="test-other").to_dict()
        assert d["schedule"] == "test-other" and SamplerConfig.from_dict(d).schedule == "test-other"
        assert resolve_sampler({"schedule": "test-other"}).schedule == "test-other"
    finally:
        schedules.SCHEDULES.unregister("test-other")


def test_processors_are_pure_and_validated():
    logits = torch.zeros(2, 3, 6)
    out = processors.BanTokens((1, 4))(logits)
    assert bool((logits == 0).all())  # the input is left as it was
    assert bool(torch.isinf(out[..., [1, 4]]).all()) and bool((out[..., [0, 2, 3, 5]] == 0).all())
    for bad in [(), (-1,), (1.5,), (True,)]:
        with pytest.raises(ValueError):
            processors.BanTokens(bad)
    with pytest.raises(ValueError):
        processors.ConfidenceEosEotInf(3, 5, temperature=-1.0)
    # the reference's aliasing: EOS and EoT at T = 0, EoT alone at T > 0
    assert processors.ConfidenceEosEotInf(3, 5, 0.0).ids == (5, 3)
    assert processors.ConfidenceEosEotInf(3, 5, 0.3).ids == (5,)
    assert processors.apply([processors.LogitsEosInf(0), processors.NeverProposeMask(2)], logits)[0, 0].tolist() \
        == [float("-inf"), 0, float("-inf"), 0, 0, 0]


def test_build_processors_follows_the_settings(m64):
    def edits(cfg):  # the pipeline's: the proposer's and the selector's edits included
        prompt_index = torch.zeros((1, 4 + cfg.gen_length), dtype=torch.bool)
        return build_pipeline(m64, cfg.validate(), None, prompt_index).edits

    assert processors.build_processors(cfg_of(), m64) == ([], [])  # the default decode edits nothing
    assert edits(cfg_of()) == ([], [])
    p = edits(cfg_of(threshold=0.5, logits_eos_inf=True, confidence_eos_eot_inf=True))
    assert p.propose == [processors.NeverProposeMask(m64.mask_id), processors.LogitsEosInf(m64.eos_id)]
    assert [q.ids for q in p.confidence] == [(m64.eot_id, m64.eos_id)]
    p = processors.build_processors(cfg_of(confidence_eos_eot_inf=True, temperature=0.5), m64)
    assert [q.ids for q in p.confidence] == [(m64.eot_id,)]


def test_committed_fraction_counts_what_the_model_committed():
    st = StepState.start(torch.tensor([[5, 6]]), 4, 4, mask_id=1)
    assert st.committed_fraction().tolist() == [0.0]
    st.x[0, 2:] = torch.tensor([1, 7, 8, 1])  # a proposed [MASK] committed at 0; 8 placed by a hook
    st.commit_step[0] = torch.tensor([0, 0, -1, -1])
    assert st.committed_fraction().tolist() == [0.5]


def test_a_fork_is_an_independent_copy_and_resuming_leaves_it_reusable(m64):
    cfg = cfg_of(gen_length=8, steps=8, block_length=4, temperature=1.0, seed=3)
    ids, am = canvas(m64, PROMPTS)
    torch.manual_seed(3)
    forks = TakeForks({"s2": lambda st: torch.full((3,), st.step == 2)}, halt=True)
    assert diffuse(m64, ids, am, cfg, hooks=[forks]).halted
    fork = forks.taken["s2"]
    assert isinstance(fork, StepState) and (fork.step, fork.block, fork.i, fork.nfe) == (2, 0, 2, 3)
    before = (fork.x.clone(), fork.commit_step.clone(), fork.plan.clone())
    torch.manual_seed(3)
    whole = diffuse(m64, ids, am, cfg)
    for _ in range(2):  # the sweep resumes one fork once per intervention setting
        torch.manual_seed(99)  # the fork's own RNG state is restored
        again = diffuse(m64, ids, am, cfg, state=fork.resumed())
        assert torch.equal(again.x, whole.x) and torch.equal(again.commit_step, whole.commit_step)
        assert (again.nfe, again.tokens_forwarded) == (whole.nfe, whole.tokens_forwarded)
    assert torch.equal(fork.x, before[0]) and torch.equal(fork.commit_step, before[1])
    assert torch.equal(fork.plan, before[2])


def test_cached_forward_counts_tokens_and_keeps_the_full_logits_unedited(m64):
    ids, am = canvas(m64, PROMPTS)
    B, P = ids.shape
    x = torch.cat([ids, torch.full((B, 8), m64.mask_id)], 1)
    am = torch.cat([am, torch.ones(B, 8, dtype=am.dtype)], 1)
    prompt_index = torch.cat([ids != m64.mask_id, torch.zeros(B, 8, dtype=torch.bool)], 1)
    L = x.shape[1]
    exact = build_forward(m64, cfg_of(), am, prompt_index)
    assert exact(x, P, P + 4)[1] == B * L
    guided = build_forward(m64, cfg_of(cfg_scale=1.0), am, prompt_index)
    assert guided(x, P, P + 4)[1] == 2 * B * L  # the unconditional copy is forwarded too
    fwd = build_forward(m64, cfg_of(cache="prefix"), am, prompt_index)
    full, n = fwd(x, P, P + 4)
    assert n == B * L and torch.equal(full, exact(x, P, P + 4)[0])  # both the full forward on the same shapes
    kept = full.clone()
    processors.NeverProposeMask(m64.mask_id)(full)  # an edit on the step's logits...
    part, n = fwd(x, P, P + 4)
    assert n == B * (L - P)
    assert torch.equal(part[:, :P], kept[:, :P])  # ...never reaches the rows a later step did not run
    assert torch.allclose(part[:, P:], full[:, P:], atol=1e-10, rtol=0)  # the canvas did not change
    dual = build_forward(m64, cfg_of(cache="dual"), am, prompt_index)
    dual(x, P, P + 4)
    assert dual(x, P, P + 4)[1] == B * 4


def test_decoded_records_are_one_per_prompt_with_the_rows_hook_info(m64):
    cfg = cfg_of(gen_length=8, steps=8, block_length=8)
    ids, am = canvas(m64, PROMPTS[:2])
    out = diffuse(m64, ids, am, cfg)
    out.info["probe"] = {"b": {"seen": True}}
    prompt_ids = [m64.tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS[:2]]
    recs = decoded_records(m64, PROMPTS[:2], prompt_ids, out, cfg, ["a", "b"], 0.123456)
    assert [r["output_ids"] for r in recs] == out.x[:, ids.shape[1]:].tolist()
    assert [r["prompt"] for r in recs] == PROMPTS[:2] and recs[0]["prompt_ids"] == prompt_ids[0]
    assert "hook_info" not in recs[0] and recs[1]["hook_info"] == {"probe": {"seen": True}}
    assert recs[0]["seconds"] == 0.1235 and recs[0]["tokens_forwarded"] == out.tokens_forwarded // 2
    assert recs[0]["sampler"] == cfg.to_dict() and recs[0]["nfe"] == 8
    assert recs[0]["trajectory"]["commit_step"] == out.commit_step[0].tolist()


# ----------------------------------------------------------------------------------------- checkpoints without a sidecar
class NoSidecar:
    sidecar = None


def test_without_a_sidecar_block_length_and_steps_default_to_the_gen_length(m64):
    cfg = resolve_sampler({"gen_length": 8, "steps": 8}, NoSidecar())
    assert (cfg.gen_length, cfg.steps, cfg.block_length) == (8, 8, 8)
    cfg = resolve_sampler({"gen_length": 128}, NoSidecar())
    assert (cfg.steps, cfg.block_length) == (128, 128)
    cfg = resolve_sampler({"gen_length": 16, "block_length": 4, "steps": 8}, None)  # given values win
    assert (cfg.steps, cfg.block_length) == (8, 4)
    assert resolve_sampler({}, NoSidecar()) == SamplerConfig()
    # a sidecar's layout still applies (tiny-random's: 32 per block)
    cfg = resolve_sampler({"gen_length": 64}, m64)
    assert (cfg.block_length, cfg.steps) == (m64.sidecar["sampler"]["block_length"], m64.sidecar["sampler"]["steps"])


def test_cli_generate_on_a_checkpoint_without_sidecar_needs_no_block_length(tmp_path, capsys):
    """The docs' `generate --ckpt X --gen-length 8 --steps 8` (a BERT-style masked LM, no sidecar)."""
    import shutil

    from transformers import BertConfig, BertForMaskedLM

    from mdlm_probe.core.checkpoints import resolve
    from mdlm_probe.cli import main

    src, ckpt = resolve("tiny-random"), tmp_path / "bert"
    ckpt.mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / f, ckpt / f)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ckpt)
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=64)).save_pretrained(ckpt)
    out = tmp_path / "gen.jsonl"
    rc = main(["generate", "--ckpt", str(ckpt), "--gen-length", "8", "--steps", "8", "--prompt", "x", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    rec = json.loads(out.read_text().splitlines()[0])
    assert (rec["sampler"]["block_length"], rec["nfe"], len(rec["output_ids"])) == (8, 8, 8)


@pytest.mark.parametrize("settings", [
    dict(gen_length=16, steps=16, block_length=4),
    dict(gen_length=16, steps=8, block_length=8, threshold=0.5, cache="dual"),
    dict(gen_length=12, steps=6, block_length=6, cfg_scale=1.5, remasking="low_confidence"),
])
def test_scoring_only_the_rows_that_can_commit_changes_nothing(tiny_random, monkeypatch, settings):
    """At T = 0 a step scores rows [first mask, block end) only; scoring every row must give the same decode."""
    prompts = ["x", "Ann has 10 pens. She buys 3.", "12+30="]  # left padding: the shortest prompt starts late
    cfg = SamplerConfig(**settings, batch_size=3)
    widths = []
    scored = generate(tiny_random, prompts, cfg, hooks=[lambda st: widths.append(st.logits.shape[1])])
    full = loop.scored_rows
    monkeypatch.setattr(loop, "scored_rows", lambda m, end: slice(0, m.shape[1]))
    every = generate(tiny_random, prompts, cfg)
    monkeypatch.setattr(loop, "scored_rows", full)
    for a, b in zip(scored, every):
        assert a["raw_text"] == b["raw_text"] and a["trajectory"] == b["trajectory"] and a["nfe"] == b["nfe"]
    L = len(tiny_random.tokenizer(prompts[1], add_special_tokens=False)["input_ids"]) + settings["gen_length"]
    assert max(widths) <= settings["block_length"] * (settings["gen_length"] // settings["block_length"])
    assert max(widths) < L  # the prompt rows were skipped


def test_sampling_at_a_temperature_scores_every_row(tiny_random):
    """T > 0: the reference draws Gumbel noise over the whole canvas, so every row is scored (same draws)."""
    widths = []
    cfg = SamplerConfig(gen_length=8, steps=8, block_length=4, temperature=0.7, seed=3)
    generate(tiny_random, ["12+30="], cfg, hooks=[lambda st: widths.append(st.logits.shape[1])])
    L = len(tiny_random.tokenizer("12+30=", add_special_tokens=False)["input_ids"]) + 8
    assert set(widths) == {L}
