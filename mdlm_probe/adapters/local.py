"""`local`: the project's own checkpoints (a sidecar is present), e.g. the shipped tiny models."""

from __future__ import annotations

from pathlib import Path

import torch

from mdlm_probe.core.exceptions import BadInput
from .base import MaskedDiffusionModel, check_missing_weights, register, seeded_init


@register("local")
class LocalModel(MaskedDiffusionModel):
    @classmethod
    def detect(cls, config: dict, sidecar: dict | None) -> bool:
        return sidecar is not None

    @classmethod
    def load(cls, path: Path | str, sidecar: dict | None, device=None, dtype=None, allow_missing_weights=False,
             **kw) -> "LocalModel":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if sidecar is None:
            raise BadInput(f"{path} has no mdlm_probe.json sidecar; the 'local' adapter needs one")
        tok = AutoTokenizer.from_pretrained(path)
        with seeded_init(None):
            module, info = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32,
                                                                output_loading_info=True)
        recorded = check_missing_weights(path, "local", sorted(info.get("missing_keys") or []), allow_missing_weights)
        if device:
            module.to(device)
        m = cls(module=module, tokenizer=tok, mask_id=sidecar.get("mask_id", tok.mask_token_id),
                eos_id=sidecar.get("eos_id", tok.eos_token_id), slack_id=sidecar.get("slack_id"),
                pad_id=tok.pad_token_id, max_length=int(sidecar.get("max_length") or 512))
        m.extra.update(recorded, batch_invariant=True)  # positions count real tokens; padding is masked
        return m

    def forward(self, ids, attention_mask=None):
        # Positions count real tokens only, so left padding does not move RoPE phases.
        pos = None
        if attention_mask is not None:
            pos = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return self.module(input_ids=ids, attention_mask=attention_mask, position_ids=pos).logits

    # ---- block KV caches (sampler cache="prefix" | "dual") ----------------------------------------------
    @property
    def supports_cache(self) -> bool:
        """Exact for the built-in Gemma3 layout: bidirectional, every layer full attention over the canvas."""
        c = self.module.config
        sliding_ok = all(t == "full_attention" for t in (getattr(c, "layer_types", None) or ["full_attention"]))
        return bool(getattr(c, "use_bidirectional_attention", False)) and sliding_ok and hasattr(c, "layer_types")

    def _check_cache(self) -> None:
        if not self.supports_cache:
            raise BadInput(f"checkpoint {self.name or self.path} ({type(self.module).__name__}) has no bidirectional "
                           f"KV cache support; use --cache none")

    @staticmethod
    def _positions(attention_mask, B, L, device):
        if attention_mask is None:
            return torch.arange(L, device=device)[None].expand(B, L)
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    @staticmethod
    def _layer_masks(key_mask, rows: int) -> dict:
        """The layers' masks for `rows` query rows over keys padded where key_mask (B, K) is 0, built here: the
        model's own mask functions cost more than a small model's cached step. None: nothing to mask."""
        m = None
        if key_mask is not None and not bool(key_mask.all()):
            m = key_mask.bool()[:, None, None, :].expand(-1, 1, rows, -1)  # (B, 1, rows, K)
        return {"full_attention": m, "sliding_attention": m}  # supports_cache: every layer is full attention

    def forward_prefix(self, ids, attention_mask, prefix_len, suffix_start=None):
        from transformers import DynamicCache

        self._check_cache()
        B, L = ids.shape
        pos = self._positions(attention_mask, B, L, ids.device)
        out = self.module(input_ids=ids, attention_mask=attention_mask, position_ids=pos,
                          cache=DynamicCache(config=self.module.config), use_cache=True)
        # Keep the prefix's keys/values (and the suffix's, for the dual cache), per layer: (B, heads, n, head_dim).
        # Keys carry RoPE already, and bidirectional attention ignores key order, so prefix and suffix can be
        # stored side by side and the block appended after them.
        def keep(t):
            if suffix_start is None:
                return t[..., :prefix_len, :]
            return torch.cat([t[..., :prefix_len, :], t[..., suffix_start:, :]], dim=-2)

        kv = [(keep(layer.keys), keep(layer.values)) for layer in out.cache.layers]
        return out.logits, kv

    def forward_cached(self, ids, attention_mask, cache, prefix_len, suffix_start=None):
        from transformers import DynamicCache

        self._check_cache()
        B, L = ids.shape
        end = L if suffix_start is None else suffix_start
        pos = self._positions(attention_mask, B, L, ids.device)[:, prefix_len:end]
        am = attention_mask
        if am is not None and suffix_start is not None:  # the mask in the cache's key order: prefix, suffix, block
            am = torch.cat([am[:, :prefix_len], am[:, suffix_start:], am[:, prefix_len:suffix_start]], dim=-1)
        # A fresh cache object per call (filled with the stored keys) so the forward's appends never leak.
        # The mask spans cache + new positions; bidirectional attention lets the new ones see all of it.
        out = self.module(input_ids=ids[:, prefix_len:end], attention_mask=self._layer_masks(am, end - prefix_len),
                          position_ids=pos, cache=DynamicCache(ddp_cache_data=cache), use_cache=True)
        return out.logits

    def forward_all(self, ids, attention_mask):
        return self.forward_prefix(ids, attention_mask, ids.shape[1])

    def forward_through(self, ids, attention_mask, cache, rows):
        from transformers import DynamicCache

        self._check_cache()
        B, L = ids.shape
        others = torch.ones(L, dtype=torch.bool, device=ids.device)
        others[rows] = False
        others = others.nonzero().squeeze(1)  # the positions whose stored keys the rows attend to
        pos = self._positions(attention_mask, B, L, ids.device)[:, rows]
        am = attention_mask
        if am is not None:  # in the key order of the call: stored positions, then the rows
            am = torch.cat([am[:, others], am[:, rows]], dim=-1)
        kv = [(k[..., others, :], v[..., others, :]) for k, v in cache]
        out = self.module(input_ids=ids[:, rows], attention_mask=self._layer_masks(am, rows.numel()),
                          position_ids=pos, cache=DynamicCache(ddp_cache_data=kv), use_cache=True)
        n = others.numel()
        for (k, v), layer in zip(cache, out.cache.layers):  # the rows' new keys/values replace the stored ones
            k[..., rows, :], v[..., rows, :] = layer.keys[..., n:, :], layer.values[..., n:, :]
        return out.logits

    def cache_keys(self, cache, row):
        return torch.stack([k[:, :, row].flatten(1) for k, _ in cache])
