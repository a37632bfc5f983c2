"""An adaptive KV cache (`--cache adaptive`): a write-through cache of the whole canvas, refreshed when it drifts.

Elastic-Cache (Nguyen-Tri, Ranjan, Shen, "Attention Is All You Need for KV Cache in Diffusion LLMs",
arXiv 2510.14973) decides *when* to refresh a diffusion LLM's KV cache with a drift test on the most-attended
token instead of at fixed points, and *where* (from the layer where the drift starts). dKV-Cache (Ma et al.,
arXiv 2505.15781) caches a token's keys/values once it is decoded, one step late. This policy combines the
first and the second within the adapter contract (`forward_all` / `forward_through` / `cache_keys`,
docs/adapters.md):

- **write-through.** A full forward keeps every position's keys/values. A cached step runs the current block,
  and every position whose token changed since its keys/values were computed (the previous block's last
  commits after a block start, a hook's edits), and writes the keys/values it computes back into the cache.
  So a new block needs no full forward: the dual cache pays one at every block start.
- **drift test.** Every cached step also re-runs one position the decode never changes, the probe (the last
  position before the first block: the prompt's last token), and compares its keys with those of the last full
  forward: the relative change ||k - k_ref|| / ||k_ref||, maxed over layers and the batch's rows (one cache
  serves the batch). The probe's token is fixed, so its keys move only because the canvas around it did: the
  stand-in for Elastic-Cache's most-attended token (the adapters expose no attention weights). When the drift
  reaches `cache_drift_threshold`, the next step's forward is a full one. After a full forward the drift is 0,
  so a threshold of 0 refreshes at every step: exactly `--cache-refresh 1` (tests/decoding/test_adaptive_cache.py).
- **where.** Not available: a refresh recomputes every layer (the contract keeps no per-layer hidden states).

`cache_refresh` N > 0 also forces a full forward every N forwards, as in the block caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mdlm_probe.core.exceptions import BadInput

from .forward import FORWARDS, BlockCached


@dataclass
class _Canvas:
    cache: Any  # the adapter's keys/values of every position
    seen: torch.Tensor  # (B', L) the tokens those keys/values were computed from
    logits: torch.Tensor  # (B', L, V) the full forward's logits, filler for rows a cached step skips
    ref: torch.Tensor | None  # (layers, B', D) the probe's keys at the full forward (None: no probe)
    age: int
    drift: float = 0.0  # the probe's key drift at the last forward


def key_drift(keys: torch.Tensor, ref: torch.Tensor) -> float:
    """Relative change of keys (layers, B, D) from ref, maxed over layers and rows."""
    return float(((keys - ref).norm(dim=-1) / ref.norm(dim=-1).clamp_min(1e-12)).max())


@FORWARDS.register("adaptive")
class AdaptiveCache(BlockCached):
    def __init__(self, model, cfg, attention_mask):
        super().__init__(model, cfg, attention_mask)
        self.threshold = cfg.cache_drift_threshold
        self.probe: int | None = None  # set at the first call: the position before the first block
        self.full_forwards = 0  # for the benchmark: how often the cache was rebuilt

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        if not cfg.cache_drift_threshold >= 0:
            raise BadInput(f"cache-drift-threshold {cfg.cache_drift_threshold} must be >= 0 (0 = refresh every step)")

    def _due(self, s: _Canvas | None) -> bool:
        return s is None or s.drift >= self.threshold or (self.refresh > 0 and s.age >= self.refresh)

    def __call__(self, x, start, end):
        s = self.stored
        if self.probe is None:
            self.probe = start - 1 if start > 0 else -1
        if self._due(s):
            logits, cache = self.model.forward_all(x, self.attention_mask)
            ref = self.model.cache_keys(cache, self.probe).clone() if self.probe >= 0 else None
            self.stored = _Canvas(cache=cache, seen=x.clone(), logits=logits, ref=ref, age=1)
            self.full_forwards += 1
            return logits, x.numel()
        changed = (x != s.seen).any(0).nonzero().squeeze(1)  # positions whose keys/values are stale
        probe = x.new_tensor([self.probe] if self.probe >= 0 else [])
        rows = torch.unique(torch.cat([probe, changed, torch.arange(start, end, device=x.device)]))
        part = self.model.forward_through(x, self.attention_mask, s.cache, rows)  # (B', T, V)
        s.seen[:, rows] = x[:, rows]
        logits = s.logits  # filled in place, as the block caches do: rows not run are never chosen
        logits[:, rows] = part
        s.age += 1
        if s.ref is not None:
            s.drift = key_drift(self.model.cache_keys(s.cache, self.probe), s.ref)
        lookback = getattr(self.model, "cached_lookback", 0)  # Dream also runs the row before each
        ran = torch.unique(torch.cat([rows, (rows - lookback).clamp(min=0)])).numel()
        return logits, part.shape[0] * ran
