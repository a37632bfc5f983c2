"""Block KV caches on the llada and dream adapters (their block drivers, in mdlm_probe/adapters/llada.py and
dream.py, on adapters/block_forward.py), on checkpoints with LLaDA's and Dream's real layouts
(tests/helpers/arch_checkpoints.py; the published modeling files load them with the same logits).

- a cached forward equals the full forward on the rows it runs (float64 within 1e-10, float32 within 1e-4),
  prefix and dual, left-padded batches, LoRA-wrapped layers, and really reuses the stored keys;
- `--cache-refresh 1` equals exact mode token for token and in NFE and tokens forwarded, both adapters, both
  step plans, greedy and Gumbel, with and without a threshold, with CFG, left-padded batches; tokens forwarded
  count exactly the rows each cached step runs;
- bfloat16 runs; the CLI decodes with `--cache dual`; checkpoints of a layout the cached forward does not
  know, and the mdlm / masked-lm adapters, are refused in one line that says why.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from arch_checkpoints import arch_model, dream_arch_checkpoint, llada_arch_checkpoint
from mdlm_probe import SamplerConfig, generate, load_model
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding import pad_left
from standins import bert_checkpoint, mdlm_checkpoint

FAMILIES = ("llada", "dream")
PROMPTS = ["Ann has 10 pens.", "7 * 8?", "x"]  # different lengths: left-padded in one batch


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("arch")
    return {"llada": llada_arch_checkpoint(root / "llada"), "dream": dream_arch_checkpoint(root / "dream")}


@pytest.fixture(scope="module")
def models(folders):
    """(family, dtype name) -> loaded model, loaded once."""
    cache = {}

    def get(family, dtype="float64"):
        if (family, dtype) not in cache:
            cache[family, dtype] = load_model(folders[family], dtype=dtype)
        return cache[family, dtype]

    return get


def canvas(m, gen=12):
    """The prompts left-padded, followed by `gen` masks with a few committed tokens: x (B, L), mask (B, L) and
    the padded prompt length P."""
    ids, am = pad_left([m.tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS], m.pad_id)
    B, P = ids.shape
    x = torch.cat([ids, torch.full((B, gen), m.mask_id)], 1)
    x[:, P:P + 3] = torch.tensor([20, 21, 22])  # a block committed before the current one
    x[:, P + 5] = 30  # and one token inside the current block
    return x, torch.cat([am, torch.ones(B, gen, dtype=am.dtype)], 1), P


# ----------------------------------------------------------------------------------------- forwards
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("dual", [False, True])
def test_cached_forward_equals_the_full_forward_on_its_rows(models, family, dtype, tol, dual):
    m = models(family, dtype)
    assert m.supports_cache and m.cache_refusal is None
    x, am, P = canvas(m)
    with torch.no_grad():
        full = m(x, attention_mask=am)  # (B, L, V)
        for start in (P + 4, P + 8, 1):  # the current block [start, start + 4); 1: a block right after a 1-token prefix
            end = start + 4
            logits, cache = m.forward_prefix(x, am, start, end if dual else None)
            # bit-equal: the full step IS the family's own forward (same kernels, same shapes, same process)
            assert torch.equal(logits, full)
            stop = end if dual else x.shape[1]
            part = m.forward_cached(x, am, cache, start, end if dual else None)
            assert part.shape == (x.shape[0], stop - start, full.shape[-1])
            assert (part - full[:, start:stop]).abs().max().item() <= tol
            # not consumed: the same call again (same kernels, same shapes) gives the same bits
            assert torch.equal(m.forward_cached(x, am, cache, start, end if dual else None), part)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dual", [False, True])
def test_cached_forward_attends_to_the_stored_keys(models, family, dual):
    """Cached positions are read from the cache, not the canvas: editing one after the full forward changes
    nothing, while an edit inside the forwarded rows does."""
    m = models(family)
    x, am, P = canvas(m)
    start, end = P + 4, P + 8
    with torch.no_grad():
        _, cache = m.forward_prefix(x, am, start, end if dual else None)
        part = m.forward_cached(x, am, cache, start, end if dual else None)
        stale = x.clone()
        stale[:, P + 1] = 40  # before the block (and, for Dream, before the row it recomputes)
        if dual:
            stale[:, end + 2] = 41  # after the block: the dual cache's suffix
        # bit-equal: the same call on the same shapes; the edited positions are never read
        assert torch.equal(m.forward_cached(stale, am, cache, start, end if dual else None), part)
        fresh = x.clone()
        fresh[:, start + 2] = 42
        assert not torch.allclose(m.forward_cached(fresh, am, cache, start, end if dual else None), part)


@pytest.mark.parametrize("family, targets", [("llada", ["q_proj", "k_proj", "v_proj", "ff_proj"]),
                                             ("dream", ["q_proj", "k_proj", "v_proj", "gate_proj"])])
def test_cached_forward_runs_peft_wrapped_layers(folders, family, targets):
    """LoRA-wrapped projections (as training leaves them) are the checkpoint's modules too: their deltas apply
    in the cached rows and in the stored keys."""
    from peft import LoraConfig, get_peft_model

    m = load_model(folders[family], dtype="float64")
    x, am, P = canvas(m)
    with torch.no_grad():
        base = m(x, attention_mask=am)
        torch.manual_seed(0)
        m.module = get_peft_model(m.module, LoraConfig(r=2, target_modules=targets, init_lora_weights=False)).eval()
        full = m(x, attention_mask=am)
        assert (full - base).abs().max().item() > 1e-3  # the LoRA weights change the model
        for suffix in (None, P + 8):
            _, cache = m.forward_prefix(x, am, P + 4, suffix)
            part = m.forward_cached(x, am, cache, P + 4, suffix)
            assert (part - full[:, P + 4:suffix]).abs().max().item() <= 1e-10


@pytest.mark.parametrize("family", FAMILIES)
def test_in_memory_models_for_the_benchmarks_have_the_cache(family):
    """arch_model (the speed benchmarks' LLaDA-8B / Dream-7B-shaped random models, built without files) gives
    an adapter whose cached forward equals its full forward."""
    m = arch_model(family, dtype=torch.float64)
    assert m.supports_cache
    x, am, P = canvas(m)
    with torch.no_grad():
        full = m(x, attention_mask=am)
        _, cache = m.forward_prefix(x, am, P + 4, P + 8)
        assert (m.forward_cached(x, am, cache, P + 4, P + 8) - full[:, P + 4:P + 8]).abs().max().item() <= 1e-10


# ----------------------------------------------------------------------------------------- decoding
def cfg_of(**kw) -> SamplerConfig:
    return SamplerConfig(**{**dict(gen_length=8, steps=8, block_length=4, batch_size=8), **kw})


# thresholds where, on these checkpoints, some steps commit several proposals and others one
SETTINGS = [dict(), dict(temperature=1.0, seed=3), dict(threshold=0.15), dict(threshold=0.05, temperature=1.0, seed=5),
            dict(cfg_scale=1.0)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("schedule", ["llada", "dream"])
@pytest.mark.parametrize("cache", ["prefix", "dual"])
@pytest.mark.parametrize("kw", SETTINGS)
def test_cache_refreshed_every_step_equals_exact_mode(models, family, schedule, cache, kw):
    m = models(family)
    extra = {"remasking": "maskgit_plus"} if schedule == "dream" else {}
    cfg = cfg_of(schedule=schedule, **extra, **kw)
    a = generate(m, PROMPTS, cfg)
    b = generate(m, PROMPTS, SamplerConfig(**{**cfg.to_dict(), "cache": cache, "cache_refresh": 1}))
    assert [r["output_ids"] for r in a] == [r["output_ids"] for r in b]
    assert [r["trajectory"] for r in a] == [r["trajectory"] for r in b]
    assert [(r["nfe"], r["tokens_forwarded"]) for r in a] == [(r["nfe"], r["tokens_forwarded"]) for r in b]
    if "threshold" in kw:  # the threshold really committed several tokens in a step
        assert min(r["nfe"] for r in b) < cfg.steps


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kw", [dict(), dict(threshold=0.2)])
def test_caches_decode_with_fewer_tokens_forwarded(models, family, kw):
    m = models(family)
    cfg = cfg_of(gen_length=12, steps=12, **kw)
    runs = {c: generate(m, PROMPTS, SamplerConfig(**{**cfg.to_dict(), "cache": c})) for c in ("none", "prefix", "dual")}
    for i in range(len(PROMPTS)):
        none, prefix, dual = (runs[c][i] for c in ("none", "prefix", "dual"))
        for r in (prefix, dual):
            assert m.mask_id not in r["output_ids"] and all(0 <= t < m.vocab_size for t in r["output_ids"])
            assert r["trajectory"]["block"] == [j // 4 for j in range(12)]
        # equal where a block finished at its first (full) step, as threshold decoding may
        assert dual["tokens_forwarded"] <= prefix["tokens_forwarded"] <= none["tokens_forwarded"]
    total = {c: sum(r["tokens_forwarded"] for r in runs[c]) for c in runs}
    assert total["dual"] < total["prefix"] < total["none"]


@pytest.mark.parametrize("family, lookback", [("llada", 0), ("dream", 1)])
@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_tokens_forwarded_count_the_rows_each_cached_step_runs(models, family, lookback, cache):
    """Two blocks of 4, two steps each: per block one full forward (the canvas) and one cached forward (the
    block, plus what follows it for prefix, plus for Dream the row before the block, whose output is the
    block's first logits)."""
    m = models(family)
    prompt = m.tokenizer("7 * 8?", add_special_tokens=False)["input_ids"]
    r = generate(m, [prompt], cfg_of(cache=cache, steps=4))[0]
    P, L = len(prompt), len(prompt) + 8
    cached = [(L if cache == "prefix" else start + 4) - start + lookback for start in (P, P + 4)]
    assert r["nfe"] == 4 and r["tokens_forwarded"] == 2 * L + sum(cached)


@pytest.mark.parametrize("family", FAMILIES)
def test_bfloat16_decodes_with_both_caches(models, family):
    m = models(family, "bfloat16")
    assert m.dtype == torch.bfloat16 and m.supports_cache
    for cache in ("prefix", "dual"):
        for r in generate(m, PROMPTS, cfg_of(cache=cache, threshold=0.15)):
            assert len(r["output_ids"]) == 8 and all(0 <= t < m.vocab_size for t in r["output_ids"])
            assert m.mask_id not in r["output_ids"]


# ----------------------------------------------------------------------------------------- command line, refusals
@pytest.mark.parametrize("family", FAMILIES)
def test_cli_generates_with_the_dual_cache(folders, cli, capsys, tmp_path, family):
    out = tmp_path / "g.jsonl"
    before = sorted(p.name for p in folders[family].iterdir())
    assert cli("generate", "--ckpt", str(folders[family]), "--prompt", "Hi", "--prompt", "What is 7 * 8?",
               "--no-chat", "--gen-length", "8", "--steps", "8", "--block-length", "4", "--cache", "dual",
               "--out", str(out)) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(r["sampler"]["cache"] == "dual" for r in rows)
    assert sorted(p.name for p in folders[family].iterdir()) == before  # nothing written into the checkpoint


def _refusal(cli, capsys, tmp_path, ckpt, *args) -> str:
    capsys.readouterr()
    assert cli("generate", "--ckpt", str(ckpt), "--prompt", "Hi", "--no-chat", "--gen-length", "4", "--steps", "4",
               "--block-length", "4", "--cache", "prefix", "--out", str(tmp_path / "g.jsonl"), *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert not (tmp_path / "g.jsonl").exists()
    return err


def test_mdlm_and_masked_lm_refuse_a_cache_saying_why(cli, capsys, tmp_path):
    err = _refusal(cli, capsys, tmp_path, mdlm_checkpoint(tmp_path / "mdlm"))
    assert "'mdlm' has none" in err and "takes no attention mask" in err
    err = _refusal(cli, capsys, tmp_path, bert_checkpoint(tmp_path / "bert", with_mask=True))
    assert "'masked-lm' has none" in err and "LLaDA's and Dream's layouts only" in err


@pytest.mark.parametrize("family, renamed", [("llada", ("up_proj", "up")), ("dream", ("o_proj", "out_proj"))])
def test_an_unknown_layout_is_refused_saying_what_is_missing(folders, cli, capsys, tmp_path, family, renamed):
    """A checkpoint of the family whose modules are named otherwise (here: one module renamed in a copy of the
    modeling file and the weights) decodes without a cache but refuses one, naming the missing module."""
    folder = tmp_path / family
    shutil.copytree(folders[family], folder)
    code = folder / f"modeling_{family}_arch.py"
    old, new = renamed
    code.write_text(code.read_text().replace(f"self.{old} ", f"self.{new} ").replace(f"self.{old}(", f"self.{new}(")
                    .replace(f"b.{old}(", f"b.{new}(").replace(f"a.{old}(", f"a.{new}("))
    from safetensors.torch import load_file, save_file

    w = load_file(folder / "model.safetensors")
    save_file({k.replace(f".{old}.", f".{new}."): v for k, v in w.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    m = load_model(folder, dtype="float64")
    assert not m.supports_cache and old in m.cache_refusal
    with pytest.raises(BadInput, match=f"has no `.*{old}`"):
        m.forward_prefix(torch.zeros((1, 4), dtype=torch.long), None, 2)
    err = _refusal(cli, capsys, tmp_path, folder)
    assert f"'{family}' has none" in err and old in err
