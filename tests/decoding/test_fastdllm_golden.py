"""`--cache prefix|dual` (refreshed at block starts) and `--threshold 0.9` decode as Fast-dLLM's released code.

The goldens (tests/fixtures/fastdllm_golden.json, made by analyses/make_fastdllm_golden.py) come from NVlabs/Fast-dLLM
at commit 24cc59e75f20a6384bae8c905965bb090b96388e: `generate`, `generate_with_prefix_cache` and
`generate_with_dual_cache` of llada/generate.py with Fast-dLLM's own LLaDA modeling file (llada/model/), run
under transformers 4.49.0 (the version Fast-dLLM pins) outside the repository, in float64, at temperature 0 with
`low_confidence` remasking, with and without threshold 0.9, each prompt alone, for (gen length, block length,
steps) = (32, 8, 16), (24, 8, 24) and (32, 16, 8), on the LLaDA-architecture checkpoint `build_checkpoint` makes
(the project's builder, tests/helpers/arch_checkpoints.py; the test builds the same one).

What is compared, per case:
- each prompt alone: output ids; the tokens committed at each step (Fast-dLLM's, traced, against our
  trajectories); NFE. Fast-dLLM always runs one cached forward after a block's first (full) forward, even when
  that first step already committed the whole block (it commits nothing then); we end the block at once. So
  our NFE is Fast-dLLM's minus those empty steps, and our commits per step are Fast-dLLM's without them; the
  positions forwarded show the cache reused as Fast-dLLM reuses it (a full forward only at each block's start);
- the prompts as one left-padded batch (Fast-dLLM supports neither batches nor padding): each row's output ids
  equal that prompt's golden ids.
Fast-dLLM takes the confidence's softmax in float64; in float64 that is the logits' dtype, so the default
`confidence_dtype` and "float64" decode alike here (both are run; a scripted float32 case below tells them apart).
The generator recorded the margins the identity rests on (smallest top-1 minus top-2 logit among masked
positions, |confidence - 0.9|, gap at the step plan's top-k boundary): all above 1e-5, where the two modeling
files' float64 logits differ by rounding only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from arch_checkpoints import llada_arch_checkpoint
from mdlm_probe.adapters import load_model
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding import SamplerConfig, diffuse, generate

FIXTURE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "fastdllm_golden.json"
# The checkpoint: the project's LLaDA-architecture builder, its output layer scaled up so that some proposals
# clear 0.9 (random weights are otherwise too unsure for the threshold to fire), [MASK]'s output row zero.
# "builder" names the file as it was when the golden was made (now tests/helpers/arch_checkpoints.py).
CHECKPOINT = {"builder": "tests/arch_checkpoints.py::llada_arch_checkpoint", "dtype": "float64",
              "size": {"seed": 2, "head_scale": 12.0, "d_model": 64, "n_layers": 3, "mlp_hidden_size": 160}}
PROMPTS = [[39, 26, 26, 97, 20, 13, 31, 97, 4, 3, 97, 28, 17, 26, 31, 78], [4, 5, 84, 6, 7, 93], [60, 24, 27]]


def build_checkpoint(folder: Path) -> Path:
    return llada_arch_checkpoint(folder, **CHECKPOINT["size"])


FIXTURE = json.loads(FIXTURE_PATH.read_text())
CASES = {c["name"]: c for c in FIXTURE["cases"]}


@pytest.fixture(scope="module")
def llada(tmp_path_factory):
    return load_model(build_checkpoint(tmp_path_factory.mktemp("fastdllm") / "llada-arch-golden"), dtype=torch.float64)


def config(case: dict, batch: int, confidence_dtype: str = "logits") -> SamplerConfig:
    st = case["settings"]
    return SamplerConfig(gen_length=st["gen_length"], block_length=st["block_length"], steps=st["steps"],
                         threshold=st["threshold"], cache=st["cache"], cache_refresh=0, temperature=0.0,
                         remasking="low_confidence", confidence_dtype=confidence_dtype, batch_size=batch)


def commits_per_step(record: dict) -> list[int]:
    steps = [s for s in record["trajectory"]["commit_step"] if s >= 0]
    return torch.bincount(torch.tensor(steps), minlength=record["nfe"]).tolist()


def forwarded_as_fast_dllm(case: dict, prompt_len: int, commits: list[int]) -> int:
    """Positions Fast-dLLM's decoder forwards for one prompt, read from its commits per step, without its empty
    forwards: a block starts with a full forward (the whole canvas), then each cached step forwards the block and
    all after it (prefix) or the block alone (dual); a block ends once its positions are all committed."""
    st = case["settings"]
    L, b = prompt_len + st["gen_length"], st["block_length"]
    total, block, filled = 0, 0, 0
    for n in (n for n in commits if n):
        start = prompt_len + block * b
        cached = filled > 0 and st["cache"] != "none"
        total += (L - start if st["cache"] == "prefix" else b) if cached else L
        filled += n
        if filled == b:
            block, filled = block + 1, 0
    return total


def test_the_goldens_come_from_the_pinned_release_and_cover_the_grid():
    assert FIXTURE["source"]["repository"] == "NVlabs/Fast-dLLM"
    assert FIXTURE["source"]["commit"] == "24cc59e75f20a6384bae8c905965bb090b96388e"
    assert FIXTURE["checkpoint"] == CHECKPOINT and FIXTURE["cases"][0]["prompt_ids"] == PROMPTS
    by = {(c["settings"]["cache"], c["settings"]["threshold"]) for c in CASES.values()}
    assert by == {(cache, t) for cache in ("none", "prefix", "dual") for t in (None, 0.9)}
    for cache in ("none", "prefix", "dual"):  # the threshold fires: steps that commit several tokens at once
        counts = [n for c in CASES.values() if c["settings"]["cache"] == cache and c["settings"]["threshold"]
                  for r in c["rows"] for n in r["commits_per_step"]]
        assert sum(n > 1 for n in counts) >= 10 and max(counts) >= 8
    margins = [v for c in CASES.values() for r in c["rows"] for v in r["margins"].values() if v is not None]
    assert min(margins) > 1e-5  # no decision hinges on rounding
    # the caches matter on this checkpoint: their ids differ from exact decoding for most rows
    for cache in ("prefix", "dual"):
        differ = [r["output_ids"] != CASES[n.replace(cache, "none", 1)]["rows"][i]["output_ids"]
                  for n, c in CASES.items() if c["settings"]["cache"] == cache for i, r in enumerate(c["rows"])]
        assert sum(differ) > len(differ) // 2


@pytest.mark.parametrize("confidence_dtype", ["logits", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_prompt_decodes_as_fast_dllm(llada, name, confidence_dtype):
    case = CASES[name]
    for ids, want in zip(case["prompt_ids"], case["rows"]):
        rec = generate(llada, [ids], config(case, 1, confidence_dtype))[0]
        assert rec["output_ids"] == want["output_ids"]
        assert commits_per_step(rec) == [n for n in want["commits_per_step"] if n]
        empty = sum(n == 0 for n in want["commits_per_step"])  # Fast-dLLM's forwards after a finished block
        assert rec["nfe"] == want["nfe"] - empty
        # the cache is reused as Fast-dLLM reuses it: full forwards only at block starts
        assert rec["tokens_forwarded"] == forwarded_as_fast_dllm(case, len(ids), want["commits_per_step"])
        if case["settings"]["threshold"] is None:
            assert empty == 0 and rec["nfe"] == case["settings"]["steps"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_left_padded_batch_decodes_each_row_as_fast_dllm_alone(llada, name):
    case = CASES[name]
    assert len({len(p) for p in case["prompt_ids"]}) > 1  # unequal lengths: left padding
    got = [r["output_ids"] for r in generate(llada, case["prompt_ids"], config(case, len(case["prompt_ids"])))]
    assert got == [r["output_ids"] for r in case["rows"]]


class Float32Logits:
    """A 'model' with fixed float32 logits: vocabulary 0 = [MASK], 1..3; response position 0 is sure of token 1,
    position 1 picks token 2 with probability 0.9000000037 in float64, which a float32 softmax rounds down to
    0.8999999762 (float32's nearest to 0.9). The threshold is compared exactly (in float64), so only the float64
    confidence clears it at the first step."""

    mask_id, eos_id, device = 0, None, torch.device("cpu")

    def __init__(self):
        self.calls = 0

    def __call__(self, x, attention_mask=None):
        self.calls += 1
        logits = torch.zeros(x.shape[0], x.shape[1], 4, dtype=torch.float32)
        logits[:, -2, 1] = 9.0
        logits[:, -1, 2] = 2.890371799468994  # a float32 value
        return logits


@pytest.mark.parametrize("confidence_dtype,nfe", [("logits", 2), ("float64", 1)])
def test_confidence_dtype_float64_takes_the_softmax_as_fast_dllm_does(confidence_dtype, nfe):
    model = Float32Logits()
    cfg = SamplerConfig(gen_length=2, steps=2, block_length=2, threshold=0.9, confidence_dtype=confidence_dtype)
    out = diffuse(model, torch.tensor([[1]]), None, cfg)
    assert out.x[0, 1:].tolist() == [1, 2]
    assert out.nfe == model.calls == nfe  # float64: both clear 0.9 at once; float32: 0.8999999762 waits a step
    assert out.confidence.dtype == torch.float32  # the trajectory keeps float32 either way


def test_confidence_dtype_is_validated_and_recorded_only_when_set():
    with pytest.raises(BadInput, match="unknown confidence dtype 'float16'"):
        SamplerConfig(confidence_dtype="float16").validate()
    assert "confidence_dtype" not in SamplerConfig().to_dict()  # earlier run directories stay comparable
    assert SamplerConfig(confidence_dtype="float64").to_dict()["confidence_dtype"] == "float64"


def test_the_threshold_is_compared_exactly_not_in_the_confidence_dtype():
    """bfloat16 has no 0.9: a bf16 comparison would read the threshold as 0.8984375 and let that confidence in."""
    class Bf16Logits(Float32Logits):
        def __call__(self, x, attention_mask=None):
            self.calls += 1
            logits = torch.zeros(x.shape[0], x.shape[1], 4, dtype=torch.bfloat16)
            logits[:, -2, 1] = 9.0
            logits[:, -1, 2] = 2.875  # bf16 softmax (mask banned): 0.8984375 < 0.9
            return logits

    model = Bf16Logits()
    probe = torch.softmax(torch.tensor([float("-inf"), 0.0, 2.875, 0.0], dtype=torch.bfloat16), -1)[2]
    assert float(probe) == 0.8984375 and bool(probe >= 0.9)  # what a bf16 comparison would have let through
    cfg = SamplerConfig(gen_length=2, steps=2, block_length=2, threshold=0.9)
    out = diffuse(model, torch.tensor([[1]]), None, cfg)
    assert out.x[0, 1:].tolist() == [1, 2] and out.nfe == model.calls == 2
