"""The LLaDA family (LLaDA-8B Base/Instruct, LLaDA-1.5, LLaDA-MoE): its adapter and its block driver."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import register
from .block_forward import BlockForward, LayoutError, need
from .hf import HFModel, _pick, _vocab_id


class LLaDABlockDriver(BlockForward):
    """LLaDA-8B / LLaDA-1.5's layout: model.transformer {wte, emb_drop, ln_f, blocks[i], ff_out | tied}, llama
    blocks {attn_norm, q_proj, k_proj, v_proj, attn_out, ff_norm, ff_proj, up_proj, act, ff_out, rotary_emb}.
    Positions are 0..L-1 on the canvas (LLaDA takes no position ids, so left padding is not renumbered)."""

    family = "LLaDA"
    PARTS = ("attn_norm", "q_proj", "k_proj", "v_proj", "attn_out", "ff_norm", "ff_proj", "up_proj", "act",
             "ff_out", "rotary_emb")

    def __init__(self, module):
        super().__init__(module)
        what = f"{type(self.core).__name__} (LLaDA layout)"
        tr = need(self.core, "model.transformer", what)
        if "blocks" not in tr:
            raise LayoutError(f"{what} has no `model.transformer.blocks` (grouped blocks are not supported)")
        for name in ("wte", "ln_f", "emb_drop"):
            need(tr, name, what + ".model.transformer")
        self.tr, self.layers = tr, list(tr["blocks"])
        self.cfg = mc = need(self.core, "model.config", what)
        for name, want in (("rope", True), ("alibi", False), ("block_type", "llama")):
            if str(getattr(mc, name, want)) != str(want):
                raise LayoutError(f"{what}: config {name}={getattr(mc, name)!r}, the cached forward knows {want!r}")
        for i, b in enumerate(self.layers):
            for p in self.PARTS:
                need(b, p, f"{what} block {i}")
            if getattr(b, "q_norm", None) is not None or getattr(b, "k_norm", None) is not None:
                raise LayoutError(f"{what} block {i} normalises queries/keys (attention_layer_norm), not supported")
        if not callable(getattr(self.layers[0].rotary_emb, "get_rotary_embedding", None)):
            raise LayoutError(f"{what}: rotary_emb has no get_rotary_embedding(seq_len, device)")
        if not getattr(mc, "weight_tying", False) and "ff_out" not in tr:
            raise LayoutError(f"{what} has no output layer `model.transformer.ff_out`")
        self.n_heads = int(mc.n_heads)
        self.n_kv = int(getattr(mc, "effective_n_kv_heads", None) or getattr(mc, "n_kv_heads", None) or mc.n_heads)
        self.full_precision = bool(getattr(mc, "rope_full_precision", True))

    def kv_modules(self, layer):
        return layer.k_proj, layer.v_proj

    def canvas(self, ids, attention_mask, dtype):
        L = ids.shape[1]
        # The model's own table (built once for max_sequence_length, or for L when longer), as its forward reads it.
        sin, cos = self.layers[0].rotary_emb.get_rotary_embedding(L, ids.device)  # (1, 1, >= L, hd) float32
        bias = None
        if attention_mask is not None and bool((attention_mask == 0).any()):
            keep = attention_mask.to(torch.float).view(ids.shape[0], -1)
            bias = (1.0 - keep) * torch.finfo(torch.float).min  # (B, L): the published forward's padding bias
        return {"L": L, "sin": sin, "cos": cos, "bias": bias, "dtype": dtype}

    def rotate(self, t, rows, cv):
        t_ = t.float() if self.full_precision else t
        sin, cos = cv["sin"].type_as(t_)[:, :, rows], cv["cos"].type_as(t_)[:, :, rows]  # (1, 1, T, hd)
        half = t_.shape[-1] // 2
        turned = torch.cat([-t_[..., half:], t_[..., :half]], dim=-1)
        return ((t_ * cos) + (turned * sin)).to(t_.dtype).type_as(t)

    def mask(self, rows, key_rows, cv):
        if cv["bias"] is None:
            return None
        dtype = cv["dtype"]  # cast as the published attention casts its bias: to the keys' dtype
        bias = cv["bias"][:, key_rows][:, None, None, :].to(dtype)  # (B, 1, 1, K)
        return bias.masked_fill(bias == float("-inf"), torch.finfo(dtype).min)

    def embed(self, ids):
        x = self.tr.wte(ids)
        if getattr(self.cfg, "input_emb_norm", False):
            x = x * (self.cfg.d_model ** 0.5)
        return self.tr.emb_drop(x)

    def layer(self, b, x, attend):
        h = b.attn_norm(x)
        x = x + b.dropout(b.attn_out(attend(b.q_proj(h), b.k_proj(h), b.v_proj(h))))
        h = b.ff_norm(x)
        return x + b.dropout(b.ff_out(b.act(b.ff_proj(h)) * b.up_proj(h)))

    def head(self, x):
        x = self.tr.ln_f(x)
        logits = F.linear(x, self.tr.wte.weight, None) if self.cfg.weight_tying else self.tr.ff_out(x)
        if getattr(self.cfg, "scale_logits", False):
            logits = logits * (1 / self.cfg.d_model ** 0.5)
        return logits



@register("llada")
class LLaDAModel(HFModel):
    """LLaDA-8B (Base/Instruct), LLaDA-1.5, LLaDA-MoE: `AutoModel`, `model(x, attention_mask=...).logits`.

    The 2-D attention mask goes in as is and positions are not renumbered: that is what LLaDA's own
    `generate()` does with left padding, and with rotary positions a shift of every real token changes
    nothing. LLaDA's first published modeling file ignores the mask (padding is attended); the load-time
    padding check says so for such a checkpoint. Loads through the transformers-4 shims (compat.py).
    Block KV caches (`--cache prefix|dual`) drive the checkpoint's own modules (LLaDABlockDriver above).
    """

    markers = ("llada",)
    block_driver = LLaDABlockDriver
    MASK, EOS, EOT = 126336, 126081, 126348
    ILLADA_MASK = 5

    @classmethod
    def resolve_ids(cls, config, tok, vocab, name):
        family_mask = cls.ILLADA_MASK if "illada" in name.lower() else cls.MASK
        return {
            "mask_id": _pick(vocab, config.get("mask_token_id"), getattr(tok, "mask_token_id", None),
                                    _vocab_id(tok, "<|mdm_mask|>"), family_mask),
            "eos_id": _pick(vocab, config.get("eos_token_id"), getattr(tok, "eos_token_id", None),
                                   _vocab_id(tok, "<|endoftext|>"), cls.EOS),
            "eot_id": _pick(vocab, config.get("eot_token_id"), _vocab_id(tok, "<|eot_id|>"), cls.EOT),
            "pad_id": _pick(vocab, getattr(tok, "pad_token_id", None), config.get("pad_token_id")),
        }

    def forward(self, ids, attention_mask=None):
        return self.module(ids, attention_mask=attention_mask).logits  # (B, L, V)

    def _cache_mask(self, attention_mask):
        # LLaDA's first published file ignores the mask (the load-time padding check then fails): so do the
        # cached rows, or they would not match its full forward.
        return attention_mask if self.extra.get("batch_invariant", True) else None

