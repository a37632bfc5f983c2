"""The Dream family (Dream-v0 Base/Instruct): its adapter and its block driver."""

from __future__ import annotations

from typing import Any

import torch

from .base import register
from .block_forward import BlockForward, LayoutError, need
from .hf import HFModel, _pick, _vocab_id


class DreamBlockDriver(BlockForward):
    """Dream-v0's (Qwen2) layout: model {embed_tokens, layers[i] {input_layernorm, self_attn {q,k,v,o}_proj,
    post_attention_layernorm, mlp}, norm, rotary_emb}, lm_head. Positions count real tokens (left padding
    renumbered, padding at 1) exactly as DreamModel.forward gives them to Dream's own forward."""

    family = "Dream"

    def __init__(self, module):
        super().__init__(module)
        what = f"{type(self.core).__name__} (Dream layout)"
        base = need(self.core, "model", what)
        for name in ("embed_tokens", "layers", "norm", "rotary_emb"):
            need(base, name, what + ".model")
        need(self.core, "lm_head", what)
        self.base, self.layers = base, list(base.layers)
        cfg = self.core.config
        if getattr(cfg, "is_causal", False):
            raise LayoutError(f"{what}: config is_causal=True, the cached forward is bidirectional")
        for i, layer in enumerate(self.layers):
            for p in ("input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                      "self_attn.o_proj", "post_attention_layernorm", "mlp"):
                need(layer, p, f"{what} layer {i}")
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)

    def kv_modules(self, layer):
        return layer.self_attn.k_proj, layer.self_attn.v_proj

    def canvas(self, ids, attention_mask, dtype):
        B, L = ids.shape
        am = None
        if attention_mask is not None and bool((attention_mask == 0).any()):
            am = attention_mask.bool()  # (B, L)
            pos = (am.long().cumsum(-1) - 1).masked_fill(~am, 1)  # as DreamModel.forward numbers them
        else:
            pos = torch.arange(L, device=ids.device)[None]  # as Dream's forward does without position ids
        # cos/sin over the whole canvas, with the call Dream's forward makes: the same tables, whatever rows run.
        ref = torch.empty(0, dtype=dtype, device=ids.device)  # Dream's rotary reads only its dtype and device
        cos, sin = self.base.rotary_emb(ref, pos)  # (1 or B, L, hd) in the activations' dtype
        return {"L": L, "cos": cos, "sin": sin, "am": am}

    def rotate(self, t, rows, cv):
        cos, sin = cv["cos"][:, rows][:, None], cv["sin"][:, rows][:, None]  # (1 or B, 1, T, hd)
        half = t.shape[-1] // 2
        turned = torch.cat([-t[..., half:], t[..., :half]], dim=-1)
        return (t * cos) + (turned * sin)

    def mask(self, rows, key_rows, cv):
        am = cv["am"]
        if am is None:
            return None
        return am[:, rows][:, None, :, None] & am[:, key_rows][:, None, None, :]  # (B, 1, T, K)

    def embed(self, ids):
        return self.base.embed_tokens(ids)

    def layer(self, layer, x, attend):
        a = layer.self_attn
        h = layer.input_layernorm(x)
        x = x + a.o_proj(attend(a.q_proj(h), a.k_proj(h), a.v_proj(h)))
        return x + layer.mlp(layer.post_attention_layernorm(x))

    def head(self, x):
        return self.core.lm_head(self.base.norm(x))  # raw: row i predicts token i + 1


@register("dream")
class DreamModel(HFModel):
    """Dream-v0 (Base/Instruct): `model(x, attention_mask, position_ids).logits`, trained AR-style.

    Dream's logits[:, i] predict token i + 1, so they are shifted right by one (position 0 keeps its
    own) and the rest of the toolkit never needs to know. With left padding, the mask becomes Dream's
    bool (B, 1, L, L) form and positions count real tokens only, as Dream's `diffusion_generate` does.
    Block KV caches drive the checkpoint's own modules (DreamBlockDriver above) with the same positions.
    """

    markers = ("dream",)
    block_driver = DreamBlockDriver
    # Position p's logits are row p - 1's output, which must see the current block: that row is recomputed
    # every cached step (the cache holds the prefix up to it).
    cached_lookback = 1
    MASK, PAD = 151666, 151643
    # What Dream's `diffusion_generate` uses when the caller does not say: `DreamGenerationConfig.
    # from_model_config(model.config)`, i.e. config.json (not generation_config.json) over the defaults of
    # transformers 4.46's PretrainedConfig, which Dream documents: top_k 50 and top_p 1.0 (no filter), eps 1e-3.
    GENERATION_DEFAULTS = {"top_k": 50, "top_p": 1.0, "eps": 1e-3}
    ALGS = ("maskgit_plus", "topk_margin", "entropy", "origin")

    @classmethod
    def sampler_defaults(cls, config: dict) -> dict[str, Any]:
        """Dream's plan and its generation settings from config.json, as mdlm-probe sampler settings.

        A setting config.json gives (even null: Dream then has no filter) is taken as Dream would take it;
        otherwise the transformers 4.46 default. Dream's own fallbacks for temperature (1.0 from
        PretrainedConfig) and alg ('origin') are not taken unless config.json sets them: mdlm-probe decodes
        greedily (T = 0) by default, and Dream's examples always pass both; its confidence rule by default.
        """
        out: dict[str, Any] = {"schedule": "dream", "remasking": "maskgit_plus"}
        for key, default in cls.GENERATION_DEFAULTS.items():
            out[key] = config[key] if key in config else default
        out["eps"] = out["eps"] or cls.GENERATION_DEFAULTS["eps"]  # eps null: DreamGenerationConfig's 1e-3
        if out["top_k"] is None:
            out["top_k"] = 0  # no filter
        for key in ("temperature", "alg_temp"):
            if config.get(key) is not None:
                out[key] = config[key]
        if config.get("alg") in cls.ALGS:
            out["remasking"] = config["alg"]
        return out

    @classmethod
    def resolve_ids(cls, config, tok, vocab, name):
        eos = _pick(vocab, config.get("eos_token_id"), getattr(tok, "eos_token_id", None),
                           _vocab_id(tok, "<|endoftext|>"), cls.PAD)
        eos_list = config.get("eos_token_id") if isinstance(config.get("eos_token_id"), list) else []
        return {
            "mask_id": _pick(vocab, config.get("mask_token_id"), getattr(tok, "mask_token_id", None),
                                    _vocab_id(tok, "<|mask|>"), cls.MASK),
            "eos_id": eos,
            # Instruct turns end with <|im_end|>; it stops a response like EOS does.
            "eot_id": _pick(vocab, *(eos_list[1:2] or [None]), _vocab_id(tok, "<|im_end|>")),
            "pad_id": _pick(vocab, config.get("pad_token_id"), getattr(tok, "pad_token_id", None), cls.PAD),
        }

    def forward(self, ids, attention_mask=None):
        position_ids, mask = None, "full"
        if attention_mask is not None and bool((attention_mask == 0).any()):
            am = attention_mask.bool()  # (B, L)
            position_ids = (am.long().cumsum(-1) - 1).masked_fill(~am, 1)
            mask = am[:, None, :, None] & am[:, None, None, :]  # (B, 1, L, L)
        raw = self.module(ids, mask, position_ids).logits  # (B, L, V), raw[:, i] predicts token i + 1
        return torch.cat([raw[:, :1], raw[:, :-1]], dim=1)

    def _cached_logits(self, raw, prefix_len):
        # raw rows [p - 1, end) -> positions [p, end), shifted as `forward` shifts (position 0 keeps its own)
        return torch.cat([raw[:, :1], raw[:, :-1]], dim=1) if prefix_len == 0 else raw[:, :-1]
