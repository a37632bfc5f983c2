"""The sampler's forward pass: exact, or with a block KV cache (Fast-dLLM's prefix and dual caches).

`CachedForward(model, cfg, attention_mask, prompt_index)(x, start, end)` runs one step's forward for the
block [start, end) of the canvas x (B, L) and returns (logits (B, L, V), tokens forwarded). It also owns
classifier-free guidance, because the cache must hold the unconditional copy's keys as well.

With a cache, the block's first step is a full forward that keeps the keys/values of every position
before the block (`prefix`) and, for `dual`, after it; later steps run the model on the block and what
follows it (prefix) or on the block alone (dual), attending to the stored keys. The cache goes through
the adapter interface (`supports_cache`, `forward_prefix`, `forward_cached`); what it holds is opaque.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .errors import BadInput


@dataclass
class _Stored:
    cache: Any  # the adapter's keys/values
    start: int  # the block they were built for
    tokens: torch.Tensor  # (B', n) the cached positions' tokens when built: an edit there makes them stale
    logits: torch.Tensor  # (B', L, V) the full forward's logits, for the rows a partial forward skips
    age: int  # forwards served since the full one (the full one counts)


class CachedForward:
    """One forward per sampler step, counting the positions it runs (`tokens`)."""

    def __init__(self, model, cfg, attention_mask: torch.Tensor | None, prompt_index: torch.Tensor):
        self.model, self.mask_id = model, model.mask_id
        self.mode, self.refresh, self.cfg_scale = cfg.cache, cfg.cache_refresh, cfg.cfg_scale
        if self.mode != "none" and not getattr(model, "supports_cache", False):
            why = getattr(model, "cache_refusal", None)  # the adapter's one-line reason, where it gives one
            raise BadInput(f"--cache {self.mode} needs an adapter with KV cache support; "
                           f"{getattr(model, 'adapter_name', type(model).__name__)!r} has none"
                           f"{': ' + why if why else ''} (use --cache none)")
        self.prompt_index = prompt_index  # (B, L) positions masked out of the unconditional copy
        self.attention_mask = attention_mask  # (B, L) or None
        if cfg.cfg_scale > 0 and attention_mask is not None:
            self.attention_mask = torch.cat([attention_mask, attention_mask], 0)
        self.stored: _Stored | None = None

    def __call__(self, x: torch.Tensor, start: int, end: int) -> tuple[torch.Tensor, int]:
        """x (B, L), the block [start, end) -> logits (B, L, V), tokens forwarded."""
        xx = x
        if self.cfg_scale > 0:
            un_x = x.clone()
            un_x[self.prompt_index] = self.mask_id
            xx = torch.cat([x, un_x], 0)  # (2B, L): conditional and unconditional copies
        both, tokens = self._forward(xx, start, end)
        if self.cfg_scale > 0:
            cond, un = torch.chunk(both, 2, dim=0)
            return un + (self.cfg_scale + 1) * (cond - un), tokens
        return both, tokens

    def _forward(self, xx: torch.Tensor, start: int, end: int) -> tuple[torch.Tensor, int]:
        am = self.attention_mask
        if self.mode == "none":
            return self.model(xx, attention_mask=am), xx.numel()
        dual = self.mode == "dual"
        suffix = end if dual else None
        cached = torch.cat([xx[:, :start], xx[:, end:]], 1) if dual else xx[:, :start]
        kv = self.stored
        if (kv is None or kv.start != start or not torch.equal(kv.tokens, cached)
                or (self.refresh > 0 and kv.age >= self.refresh)):
            # A new block, a refresh due, or a hook edited cached positions: full forward, new cache.
            logits, cache = self.model.forward_prefix(xx, am, start, suffix)
            self.stored = _Stored(cache=cache, start=start, tokens=cached.clone(), logits=logits, age=1)
            return logits, xx.numel()
        part = self.model.forward_cached(xx, am, kv.cache, start, suffix)  # (B', (end or L) - start, V)
        # Rows not run keep the full forward's logits: committed or in later blocks, so never chosen. Written in
        # place: the stored logits serve only as that filler (processors are pure, forks clone), so a cached step
        # costs no (B, L, V) copy (1.5 GB for LLaDA-8B at batch 8 and 768 positions in bf16).
        logits = kv.logits
        logits[:, start:start + part.shape[1]] = part
        kv.age += 1
        rows = part.shape[1] + min(getattr(self.model, "cached_lookback", 0), start)  # Dream: one row before too
        return logits, part.shape[0] * rows
