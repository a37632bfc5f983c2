"""`--adapter dream` decodes token for token as Dream's own `diffusion_generate`.

The goldens (tests/fixtures/dream_golden.json, made by analyses/make_dream_golden.py) come from Dream's first
released generation_utils.py (`DreamGenerationMixin._sample`; public copy siyue-zhang/DiffEmbed, commit
3a49bbc998579fa8c838fbb1fc39211fb6e8469a, blob dream/generation_utils.py) run under transformers 4.46.2 on
the checkpoint tests/helpers/dream_golden_checkpoint.py builds (the project's Dream stand-in, seeded weights; the test
builds the same one). Dream's defaults for what a case does not set: top_k 50 and top_p 1.0 inherited from
transformers 4.46's PretrainedConfig, eps 1e-3. Cases: alg maskgit_plus, topk_margin and entropy at
temperature 0, gen lengths 16, 32 and 64 with steps below and equal to the gen length, one prompt and a
left-padded batch of three; top-p, no top-k, top-k 3 and eps 0.05; and single prompts with random draws
(temperature > 0, alg_temp > 0, alg origin), seeded right before the call. Batches follow the per-row reading
(each row as Dream decodes it alone with its left padding), not the first release's batch-coupled counts.

Each case goes through the adapter's defaults (`resolve_sampler` with only what the case sets).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dream_golden_checkpoint import build
from mdlm_probe.adapters import load_model
from mdlm_probe.decoding import generate, resolve_sampler

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "dream_golden.json").read_text())
CASES = {c["name"]: c for c in FIXTURE["cases"]}


@pytest.fixture(scope="module")
def dream(tmp_path_factory):
    return load_model(build(tmp_path_factory.mktemp("dream") / "tiny-dream-golden"))


def overrides(case: dict) -> dict:
    """The case's diffusion_generate settings as sampler options; the rest is left to the adapter."""
    st, rows = case["settings"], case["prompt_ids"]
    out = {"gen_length": st["max_new_tokens"], "steps": st["steps"], "block_length": st["max_new_tokens"],
           "temperature": st["temperature"], "remasking": st["alg"], "batch_size": len(rows)}
    for key in ("top_p", "eps", "alg_temp", "seed"):
        if key in st:
            out[key] = st[key]
    if "top_k" in st:
        out["top_k"] = st["top_k"] or 0  # None in Dream: no filter
    return out


def test_the_adapter_takes_dreams_generation_defaults(dream):
    got = dream.extra["sampler_defaults"]
    want = FIXTURE["released_defaults"]
    assert got["schedule"] == "dream"
    assert (got["top_k"], got["top_p"], got["eps"]) == (want["top_k"], want["top_p"], want["eps"]) == (50, 1.0, 1e-3)
    assert dream.mask_id == want["mask_token_id"] and dream.pad_id == want["pad_token_id"]


def test_the_goldens_cover_the_acceptance_grid():
    t0 = [c for c in CASES.values() if c["settings"]["temperature"] == 0 and "seed" not in c["settings"]]
    assert {c["settings"]["alg"] for c in t0} == {"maskgit_plus", "topk_margin", "entropy"}
    assert {c["settings"]["max_new_tokens"] for c in t0} == {16, 32, 64}
    assert any(c["settings"]["steps"] < c["settings"]["max_new_tokens"] for c in t0)
    assert any(c["settings"]["steps"] == c["settings"]["max_new_tokens"] for c in t0)
    padded = [c for c in t0 if len({len(r) for r in c["prompt_ids"]}) > 1]
    assert padded and all(len(c["output_ids"]) == len(c["prompt_ids"]) for c in CASES.values())


@pytest.mark.parametrize("name", sorted(CASES))
def test_token_identical_to_dreams_diffusion_generate(dream, name):
    case = CASES[name]
    cfg = resolve_sampler(overrides(case), dream)
    assert cfg.schedule == "dream"
    got = [r["output_ids"] for r in generate(dream, case["prompt_ids"], cfg)]
    assert got == case["output_ids"]

