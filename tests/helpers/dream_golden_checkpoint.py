"""The Dream-shaped checkpoint behind tests/fixtures/dream_golden.json, built the same way by the test
(tests/decoding/test_dream_golden.py) and by the script that made the goldens (analyses/make_dream_golden.py).

The model is the project's Dream stand-in (tests/fixtures/remote_models/modeling_tiny_dream.py), loaded
through `auto_map` with `trust_remote_code=True`. It is called exactly as Dream's `diffusion_generate` calls
Dream: `model(x, "full" or a bool (B, 1, L, L) mask, position_ids).logits`, with logits[:, i] predicting
token i + 1. It is not Dream's architecture (a small bidirectional encoder with learned positions, not
Qwen2 with rotary ones), so the goldens test the sampling loop (step plan, filters, confidence rules,
padding and positions), not Dream's layers.

Every weight is drawn from one seeded `torch.Generator` in name order, so the checkpoint does not depend
on how a transformers version initialises modules.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import torch

from seeded_weights import fill_weights as seeded_fill

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "remote_models"
SPECIALS = ["<|endoftext|>", "<|im_end|>", "<|mask|>"]  # ids 0, 1, 2, as in the other Dream stand-ins
CHARS = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
SEED = 23
CONFIG = {  # what Dream's config.json has that the sampler reads: mask, pad, eos, bos; no generation settings
    "model_type": "Dream", "vocab_size": 512, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": 256, "mask_token_id": 2, "pad_token_id": 0, "eos_token_id": 0, "bos_token_id": 0,
    "architectures": ["TinyDreamModel"],
    "auto_map": {"AutoConfig": "modeling_tiny_dream.TinyDreamConfig", "AutoModel": "modeling_tiny_dream.TinyDreamModel"},
}
HEAD_SCALE = 2.0  # logits of a few units: some positions confident, and a tail that top-k filtering cuts
MASK_BIAS = -1e4  # a trained Dream never proposes <|mask|>


def fill_weights(model: torch.nn.Module, seed: int = SEED) -> None:
    """The shared seeded filler (seeded_weights.py; the stand-in's embeddings are `tok` and `pos`, its LM head
    `model.head`, scaled by HEAD_SCALE), then <|mask|> banned by the head's bias."""
    seeded_fill(model, seed, "model.head.weight", HEAD_SCALE, embeddings=(".tok.weight", ".pos.weight"))
    with torch.no_grad():
        head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        head.bias[CONFIG["mask_token_id"]] = MASK_BIAS


def vocabulary() -> list[str]:
    """The specials, printable characters, then fillers `<|f0|>`, ... up to the model's vocabulary: a
    vocabulary several times top-k's 50, so Dream's default filter changes which positions commit."""
    toks = SPECIALS + CHARS
    return toks + [f"<|f{i}|>" for i in range(CONFIG["vocab_size"] - len(toks))]


def tokenizer():
    """Character-level over `vocabulary()`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    toks = vocabulary()
    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(toks)}, unk_token=toks[0]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False, padding_side="left",
                                   eos_token="<|endoftext|>", pad_token="<|endoftext|>", mask_token="<|mask|>",
                                   additional_special_tokens=["<|im_end|>"])


def build(folder: Path) -> Path:
    """Write the checkpoint (config.json with auto_map, the stand-in's code, weights, tokenizer) to `folder`."""
    from transformers import AutoConfig, AutoModel

    folder = Path(folder)
    folder.mkdir(parents=True)
    for f in ("tiny_encoder.py", "modeling_tiny_dream.py"):
        shutil.copy(FIXTURES / f, folder / f)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    model = AutoModel.from_config(AutoConfig.from_pretrained(folder, trust_remote_code=True), trust_remote_code=True)
    fill_weights(model)
    model.save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps(CONFIG, indent=1))  # as written above, whatever save added
    tokenizer().save_pretrained(folder)
    return folder


def encode(text: str) -> list[int]:
    """Prompt text -> ids, without loading a tokenizer (the reference side runs another transformers)."""
    vocab = {t: i for i, t in enumerate(vocabulary())}
    return [vocab[c] for c in text]
