"""Small checkpoints with LLaDA's and Dream's real architectures (random, seeded weights), for the cache tests,
the Fast-dLLM goldens and the speed benchmarks.

`llada_arch_checkpoint(folder, **size)` and `dream_arch_checkpoint(folder, **size)` write a checkpoint folder:
config.json (the published config's field names, small sizes, `auto_map` to the test modeling file so
`trust_remote_code=True` loads it), the modeling file (tests/fixtures/remote_models/modeling_llada_arch.py or
modeling_dream_arch.py), model.safetensors and a character-level tokenizer. LLaDA's and Dream's published
modeling files load the same weights (same state-dict names) with the same logits; see docs/adapters.md.

`size` overrides any config field (LLaDA: d_model, n_heads, n_kv_heads, n_layers, mlp_hidden_size, vocab_size,
max_sequence_length, weight_tying, ...; Dream: hidden_size, num_attention_heads, num_key_value_heads,
num_hidden_layers, intermediate_size, vocab_size, max_position_embeddings, ...), plus `seed` (weights) and
`head_scale` (larger: more confident predictions). Every weight is drawn from one seeded torch.Generator in
name order, so a checkpoint does not depend on how a transformers version initialises modules. The mask
token's output row is zero (logit 0): a trained model seldom proposes it, and random logits of a few units
rarely leave 0 on top.

`arch_model(family, device, dtype, **size)` builds the llada or dream adapter around an in-memory random module
instead (no files: for speed benchmarks at LLaDA-8B / Dream-7B sizes).

Usable outside the tests: `sys.path.insert(0, "<repo>/tests/helpers"); from arch_checkpoints import llada_arch_checkpoint`.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import torch

from seeded_weights import fill_weights as seeded_fill
from standins import DREAM_SPECIALS, LLADA_SPECIALS, char_tokenizer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "remote_models"

# LLaDA-8B's config.json fields (GSAI-ML/LLaDA-8B-Instruct), sizes made small; mask/eos/pad are the tokenizer's.
LLADA_CONFIG = {
    "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
    "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
    "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": 32,
    "embedding_dropout": 0.0, "embedding_size": 128, "eos_token_id": 0, "flash_attention": False,
    "include_bias": False, "include_qkv_bias": False, "init_cutoff_factor": None, "init_device": "meta",
    "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False, "layer_norm_type": "rms",
    "layer_norm_with_affine": True, "mask_token_id": 2, "max_sequence_length": 256, "mlp_hidden_size": 96,
    "mlp_ratio": 4, "model_type": "llada", "multi_query_attention": None, "n_heads": 4, "n_kv_heads": 4,
    "n_layers": 2, "pad_token_id": 0, "precision": "amp_bf16", "residual_dropout": 0.0, "rms_norm_eps": 1e-05,
    "rope": True, "rope_full_precision": True, "rope_theta": 500000.0, "scale_logits": False, "use_cache": False,
    "vocab_size": 128, "weight_tying": False,
    "auto_map": {"AutoConfig": "modeling_llada_arch.LLaDAConfig", "AutoModel": "modeling_llada_arch.LLaDAModelLM",
                 "AutoModelForCausalLM": "modeling_llada_arch.LLaDAModelLM"},
}
# Dream-v0's config.json fields (Dream-org/Dream-v0-Instruct-7B), sizes made small; grouped keys as in Dream-7B.
DREAM_CONFIG = {
    "architectures": ["DreamModel"], "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 0,
    "hidden_act": "silu", "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 64,
    "mask_token_id": 2, "max_position_embeddings": 256, "max_window_layers": 28, "model_type": "Dream",
    "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pad_token_id": 0,
    "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": None,
    "tie_word_embeddings": False, "torch_dtype": "float32", "use_cache": False, "use_sliding_window": False,
    "vocab_size": 128,
    "auto_map": {"AutoConfig": "modeling_dream_arch.DreamConfig", "AutoModel": "modeling_dream_arch.DreamModel"},
}
SEED = 24
HEAD_SCALE = 2.0


def _module(name: str):
    """The test modeling file, imported from its path (no package, no transformers dynamic-module cache)."""
    spec = importlib.util.spec_from_file_location(f"_arch_{name}", FIXTURES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fill_weights(model: torch.nn.Module, head: str, mask_id: int, seed: int = SEED,
                 head_scale: float = HEAD_SCALE) -> None:
    """The shared seeded filler (seeded_weights.py), then the mask token's row of the output matrix `head` zero."""
    seeded_fill(model, seed, head, head_scale, embeddings=("wte.weight", "embed_tokens.weight"))
    with torch.no_grad():
        dict(model.named_parameters())[head][mask_id] = 0.0


def _write(folder: Path, modeling: str, config: dict, model: torch.nn.Module, tok) -> Path:
    from safetensors.torch import save_file

    shutil.copy(FIXTURES / f"{modeling}.py", folder / f"{modeling}.py")
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tok.save_pretrained(folder)
    return folder


def llada_arch_checkpoint(folder, seed: int = SEED, head_scale: float = HEAD_SCALE, **size) -> Path:
    """A LLaDA-architecture checkpoint in `folder` (created; must not exist). Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    config = {**LLADA_CONFIG, **size}
    if "vocab_size" in size and "embedding_size" not in size:
        config["embedding_size"] = size["vocab_size"]
    mod = _module("modeling_llada_arch")
    model = mod.LLaDAModelLM(mod.LLaDAConfig(**config))
    head = "model.transformer.wte.weight" if config["weight_tying"] else "model.transformer.ff_out.weight"
    fill_weights(model, head, config["mask_token_id"], seed, head_scale)
    # The tokenizer names no mask role; the adapter finds <|mdm_mask|> (id 2), as in LLaDA's tokenizer.
    tok = char_tokenizer(LLADA_SPECIALS, eos_token="<|endoftext|>")
    return _write(folder, "modeling_llada_arch", config, model, tok)


def dream_arch_checkpoint(folder, seed: int = SEED, head_scale: float = HEAD_SCALE, **size) -> Path:
    """A Dream-architecture checkpoint in `folder` (created; must not exist). Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    config = {**DREAM_CONFIG, **size}
    mod = _module("modeling_dream_arch")
    model = mod.DreamModel(mod.DreamConfig(**config))
    fill_weights(model, "lm_head.weight", config["mask_token_id"], seed, head_scale)
    tok = char_tokenizer(DREAM_SPECIALS, eos_token="<|endoftext|>", pad_token="<|endoftext|>", mask_token="<|mask|>")
    return _write(folder, "modeling_dream_arch", config, model, tok)


def arch_model(family: str, device: str | None = None, dtype: torch.dtype = torch.float32, seed: int = SEED,
               **size):
    """The llada or dream adapter around an in-memory random module of the architecture (nothing written to
    disk: for speed benchmarks at LLaDA-8B / Dream-7B sizes). Weights N(0, 1/fan_in) (embeddings N(0, 1)),
    norms 1, drawn on `device` from `seed`; not the same weights as the checkpoint builders write."""
    from mdlm_probe.adapters.dream import DreamModel
    from mdlm_probe.adapters.llada import LLaDAModel

    base = LLADA_CONFIG if family == "llada" else DREAM_CONFIG
    config = {**base, **size}
    if family == "llada" and "vocab_size" in size and "embedding_size" not in size:
        config["embedding_size"] = size["vocab_size"]
    mod = _module("modeling_llada_arch" if family == "llada" else "modeling_dream_arch")
    cfg = mod.LLaDAConfig(**config) if family == "llada" else mod.DreamConfig(**config)
    if not hasattr(cfg, "use_cache"):  # transformers 5 drops it; the loader's compatibility layer puts it back
        cfg.use_cache = False
    with torch.device("meta"):
        module = (mod.LLaDAModelLM if family == "llada" else mod.DreamModel)(cfg)
    module.to(dtype=dtype).to_empty(device=device or "cpu")  # materialised in its dtype: no float32 copy of 8B
    g = torch.Generator(device=device or "cpu").manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if p.dim() == 2:
                scale = 1.0 if name.endswith(("wte.weight", "embed_tokens.weight")) else p.shape[1] ** -0.5
                p.normal_(0.0, scale, generator=g)
            elif name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()
        for sub in module.modules():  # non-persistent buffers (Dream's inv_freq) were left empty by to_empty
            if getattr(sub, "_non_persistent_buffers_set", None) and callable(getattr(sub, "reset_parameters", None)):
                sub.reset_parameters()
    module.eval()
    specials = LLADA_SPECIALS if family == "llada" else DREAM_SPECIALS
    tok = char_tokenizer(specials, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    cls = LLaDAModel if family == "llada" else DreamModel
    m = cls(module=module, tokenizer=tok, mask_id=config["mask_token_id"], eos_id=0, pad_id=0,
            name=f"{family}-arch-random", max_length=int(config.get("max_sequence_length")
                                                          or config.get("max_position_embeddings")))
    m.extra.update(vocab_size=int(config["vocab_size"]), batch_invariant=True,
                   sampler_defaults=cls.sampler_defaults(config))
    return m
