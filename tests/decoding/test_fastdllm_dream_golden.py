"""Fast-dLLM's Dream decoders, reproduced token for token by the stages in mdlm_probe/decoding/fastdllm_dream.py.

The goldens (tests/fixtures/fastdllm_dream_golden.json, made by analyses/make_fastdllm_dream_golden.py) come from
NVlabs/Fast-dLLM at commit 24cc59e75f20a6384bae8c905965bb090b96388e, folder dream/: `diffusion_generate` of
model/generation_utils.py (no cache) and of model/generation_utils_block.py (prefix and dual cache), with
Fast-dLLM's own modeling_dream.py, called as dream/eval.py calls them (temperature 0, no top-p/top-k, alg entropy
or confidence_threshold), run under transformers 4.49.0 outside the repository, in float64, on the
Dream-architecture checkpoint the fixture's "checkpoint" entry describes (rebuilt here with the same builder).

Modes and the mdlm-probe settings that reproduce them (MODES below):
    none              cache none, Dream's plan (selector plan), remasking entropy
    none_threshold    cache none, selector threshold-budget, remasking maskgit_plus (max probability)
    prefix / dual     cache prefix-frozen / dual-frozen, selector fastdllm-dream-block, remasking entropy
    *_threshold       the same caches, selector fastdllm-dream-block-threshold, remasking maskgit_plus
Each prompt alone: output ids, NFE and the tokens committed at every forward (Fast-dLLM's zero-commit forwards
included) all equal. Batches: Fast-dLLM's code decodes only `none` batches and `prefix` batches without padding
(the fixture records the error or the stall of every other: its cached forwards slice the padded mask on one
axis, its dual cache writes all rows' block columns through one index, its threshold paths commit row 0 only and
its no-cache threshold asserts a batch of one). Where it decodes, our batch equals its output; elsewhere each row
of our batch equals that prompt's single-prompt golden.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from arch_checkpoints import dream_arch_checkpoint
from mdlm_probe.adapters import load_model
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding import SamplerConfig, diffuse, generate
from mdlm_probe.tasks.presets import get_preset, preset_names

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "fastdllm_dream_golden.json").read_text())
CASES = {c["name"]: c for c in FIXTURE["cases"]}
PROMPTS = FIXTURE["prompts"]["prompt_ids"]
BATCHES = {b["name"]: b for b in FIXTURE["batches"]}
MODES = {  # fixture mode: (cache, selector)
    "none": ("none", None),
    "none_threshold": ("none", "threshold-budget"),
    "prefix": ("prefix-frozen", "fastdllm-dream-block"),
    "dual": ("dual-frozen", "fastdllm-dream-block"),
    "prefix_threshold": ("prefix-frozen", "fastdllm-dream-block-threshold"),
    "dual_threshold": ("dual-frozen", "fastdllm-dream-block-threshold"),
}


@pytest.fixture(scope="module")
def dream(tmp_path_factory):
    size = FIXTURE["checkpoint"]["size"]
    return load_model(dream_arch_checkpoint(tmp_path_factory.mktemp("fdd") / "dream-arch-golden", **size),
                      dtype=torch.float64)


def config(case: dict, batch: int) -> SamplerConfig:
    st = case["settings"]
    cache, selector = MODES[case["mode"]]
    return SamplerConfig(gen_length=st["gen_length"], steps=st["steps"],
                         block_length=st["block_length"] or st["gen_length"],  # no cache: one block, as Fast-dLLM
                         schedule="dream", remasking="entropy" if st["alg"] == "entropy" else "maskgit_plus",
                         threshold=st["threshold"], cache=cache, selector=selector, temperature=0.0, top_k=0,
                         top_p=1.0, batch_size=batch)


def commits_per_step(record: dict) -> list[int]:
    steps = [s for s in record["trajectory"]["commit_step"] if s >= 0]
    return torch.bincount(torch.tensor(steps, dtype=torch.long), minlength=record["nfe"]).tolist()


def forwarded_as_fast_dllm(case: dict, prompt_len: int, commits: list[int]) -> int:
    """Positions Fast-dLLM's Dream decoders forward for one prompt: the whole canvas at every step without cache;
    with one, a full forward at each block's start, then the block and everything after it (prefix) or the block
    alone (dual), the row before the block never (it stays frozen). Blocks are read off the commits: an entropy
    block takes `steps per block` forwards (two with one step per block), a threshold block ends when full."""
    st = case["settings"]
    L = prompt_len + st["gen_length"]
    if st["block_length"] is None:
        return L * len(commits)
    b, spb = st["block_length"], st["steps"] // (st["gen_length"] // st["block_length"])
    total, block, filled, step_in_block = 0, 0, 0, 0
    for n in commits:
        start = prompt_len + block * b
        total += L if step_in_block == 0 else (b if st["dual_cache"] else L - start)
        filled, step_in_block = filled + n, step_in_block + 1
        done = filled == b if st["threshold"] is not None else step_in_block == max(spb, 2)
        if done:
            block, filled, step_in_block = block + 1, 0, 0
    return total


def test_the_goldens_come_from_the_pinned_release_and_cover_every_mode():
    assert FIXTURE["source"]["repository"] == "NVlabs/Fast-dLLM"
    assert FIXTURE["source"]["commit"] == "24cc59e75f20a6384bae8c905965bb090b96388e"
    assert FIXTURE["checkpoint"]["builder"].endswith("arch_checkpoints.py::dream_arch_checkpoint")
    by_mode: dict[str, int] = {}
    for c in CASES.values():
        by_mode[c["mode"]] = by_mode.get(c["mode"], 0) + 1
        assert len(c["rows"]) == len(PROMPTS) and c["settings"]["temperature"] == 0
    assert by_mode == {"none": 4, "none_threshold": 8, "prefix": 5, "dual": 5, "prefix_threshold": 8,
                       "dual_threshold": 8}
    for mode in ("none_threshold", "prefix_threshold", "dual_threshold"):  # the threshold fires
        assert sum(c["multi_commit_steps"] for c in CASES.values() if c["mode"] == mode) >= 40, mode
    # no decision rests on rounding: float64 logits of the two modeling files differ by ~1e-13
    margins = [r["margins"] for c in CASES.values() for r in c["rows"]]
    gaps = [v for m in margins for k, v in m.items() if k in ("argmax_gap", "entropy_gap", "threshold_gap")
            and v is not None]
    assert min(gaps) > 1e-6
    # <|mask|> is in Fast-dLLM's softmax: its share is tiny and removing it flips no threshold decision
    assert max(m["mask_prob_max"] for m in margins) < 1e-8
    assert all(not m.get("mask_share_flips") for m in margins)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_prompt_decodes_as_fast_dllms_dream_code(dream, name):
    case = CASES[name]
    for ids, want in zip(PROMPTS, case["rows"]):
        rec = generate(dream, [ids], config(case, 1))[0]
        assert rec["output_ids"] == want["output_ids"]
        assert rec["nfe"] == want["nfe"]
        assert commits_per_step(rec) == want["commits_per_step"]
        assert rec["tokens_forwarded"] == forwarded_as_fast_dllm(case, len(ids), want["commits_per_step"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_batches_decode_as_fast_dllm_where_it_can_and_as_each_prompt_alone(dream, name):
    case = CASES[name]
    alone = {i: r["output_ids"] for i, r in enumerate(case["rows"])}
    for got_batch in case["batches"]:
        batch = BATCHES[got_batch["name"]]
        recs = generate(dream, batch["prompt_ids"], config(case, len(batch["prompt_ids"])))
        got = [r["output_ids"] for r in recs]
        if "error" in got_batch:  # Fast-dLLM's code cannot decode this batch: each row as its prompt alone
            assert case["mode"] != "none"
            assert got == [alone[i] for i in batch["prompts"]], got_batch["name"]
        else:
            assert case["mode"] == "none" or (case["mode"] == "prefix" and got_batch["name"] == "equal2")
            assert got == got_batch["output_ids"], got_batch["name"]
            assert got == [alone[i] for i in batch["prompts"]]
            assert all(r["nfe"] == got_batch["nfe"] for r in recs)
            assert [commits_per_step(r) for r in recs] == got_batch["commits_per_step"]


def test_dreams_own_prefix_cache_differs_from_fast_dllms_block_decoder(dream):
    case = CASES["prefix_g16_s8_b8"]
    own = SamplerConfig(**{**config(case, 1).__dict__, "cache": "prefix", "selector": None})
    differ = sum(generate(dream, [ids], own)[0]["output_ids"] != r["output_ids"]
                 for ids, r in zip(PROMPTS, case["rows"]))
    assert differ >= 4  # (A) and (B) change the output on this checkpoint


class Bf16Logits:
    """A 'model' with fixed bfloat16 logits: vocabulary 0 = <|mask|>, 1..3; response position 0 is sure of token 1;
    position 1 picks token 2 with a bfloat16 probability of 0.8984375 (0.8987 in float64), which bfloat16 compares
    as equal to 0.9 (0.9 has no bfloat16 value nearer)."""

    mask_id, eos_id, device = 0, None, torch.device("cpu")

    def __init__(self):
        self.calls = 0

    def __call__(self, x, attention_mask=None):
        self.calls += 1
        logits = torch.zeros(x.shape[0], x.shape[1], 4, dtype=torch.bfloat16)
        logits[:, -2, 1] = 9.0
        logits[:, -1, 2] = 3.28125
        return logits


def test_the_threshold_is_compared_in_the_confidence_dtype_as_fast_dllms_dream_code():
    probe = torch.softmax(torch.tensor([0.0, 0.0, 3.28125, 0.0], dtype=torch.float64), -1)[2]
    assert float(probe) < 0.9  # in float64 the second proposal misses the threshold ...
    probe = torch.softmax(torch.tensor([0.0, 0.0, 3.28125, 0.0], dtype=torch.bfloat16), -1)[2]
    assert float(probe) == 0.8984375 and bool(probe >= 0.9)  # ... in bf16 it clears it: 0.9 reads 0.8984375
    model = Bf16Logits()
    cfg = SamplerConfig(gen_length=2, steps=1, block_length=2, schedule="dream", threshold=0.9,
                        remasking="maskgit_plus", selector="threshold-budget", top_k=0)
    out = diffuse(model, torch.tensor([[1]]), None, cfg)
    assert out.x[0, 1:].tolist() == [1, 2]
    assert out.nfe == model.calls == 1  # both at the first step: Fast-dLLM's comparison lets 0.8984375 in


@pytest.mark.parametrize("settings,msg", [
    ({"selector": "threshold-budget"}, "threshold None is not in"),
    ({"selector": "threshold-budget", "threshold": 0.9, "gen_length": 12, "block_length": 12, "steps": 8},
     "not a multiple of its 8 steps"),
    ({"selector": "fastdllm-dream-block", "schedule": "llada"}, "needs --schedule dream"),
    ({"selector": "fastdllm-dream-block-threshold", "schedule": "dream"}, "threshold None"),
])
def test_the_fast_dllm_dream_selectors_refuse_what_they_cannot_do(settings, msg):
    with pytest.raises(BadInput, match=msg):
        SamplerConfig(**{"gen_length": 16, "steps": 8, "block_length": 8, **settings}).validate()


def test_the_fast_dllm_dream_presets_use_the_golden_modes():
    """Each preset of Fast-dLLM's Dream scripts decodes with the settings the goldens check (mode by mode)."""
    names = [n for n in preset_names() if n.startswith("fast-dllm-dream-")]
    assert len(names) == 10
    seen = set()
    for name in names:
        s = get_preset(name).sampler
        assert s["schedule"] == "dream" and s["top_k"] == 0 and s["top_p"] == 1.0 and s["temperature"] == 0.0
        cache, selector = s.get("cache", "none"), s.get("selector")
        mode = next(m for m, v in MODES.items() if v == (cache, selector))
        seen.add(mode)
        assert s["remasking"] == ("maskgit_plus" if "threshold" in mode else "entropy")
        assert s["block_length"] == (256 if cache == "none" else 32)  # eval.py never passes block_length
        assert ("threshold" in mode) == (s.get("threshold") == 0.9)
    assert seen == {"none", "none_threshold", "prefix", "prefix_threshold", "dual_threshold"}
