"""An adaptive block KV cache (`--cache adaptive`): refresh when the running rows' outputs have drifted.

Elastic-Cache (Nguyen-Tri, Ranjan, Shen, "Attention Is All You Need for KV Cache in Diffusion LLMs",
arXiv 2510.14973) decides *when* to refresh a diffusion LLM's KV cache with a drift test (the attention of the
most-attended token, compared between steps, against a threshold) instead of a fixed period, keeps the masks
far beyond the positions being decoded cached, and decides *where* to refresh (from the layer where the drift
starts). This policy takes the first two ideas within the adapter contract (`forward_prefix` /
`forward_cached`, docs/adapters.md), which exposes neither attention weights nor hidden states per layer and
rebuilds a cache whole:

- **window.** A full forward caches the positions before the current block and those after a window of
  `cache_window` blocks from it; the cached steps run the window. The next block inside the window needs no
  full forward (the dual cache pays one at every block start); leaving the window does.
- **drift test.** After every forward the policy measures how far the current block's predictions moved since
  the last full forward: the total-variation distance between the softmaxed logits (float32) of each of the
  block's positions, averaged over the block and maxed over the batch's rows (one cache serves the batch).
  The last layer's output is the one hidden state the contract returns, so it stands in for the
  most-attended token's attention. When it reaches `cache_drift_threshold`, the next step's forward is a full
  one (after a full forward the drift is 0, so a threshold of 0 refreshes at every step: exactly
  `--cache-refresh 1`, tests/decoding/test_adaptive_cache.py).
- **where.** Not available: the contract rebuilds every layer, so a refresh is a full forward.

An edit to a cached position (a hook) or `cache_refresh` also forces a full forward, as in the block caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mdlm_probe.core.exceptions import BadInput

from .forward import FORWARDS, BlockCached


@dataclass
class _Window:
    cache: Any  # the adapter's keys/values
    start: int  # the window's first position (the block start at the full forward)
    stop: int  # one past its last: positions from here on are cached (L: none are)
    tokens: torch.Tensor  # (B', n) the cached positions' tokens when built
    logits: torch.Tensor  # (B', L, V) the full forward's logits, filler for rows a cached step skips
    ref: torch.Tensor  # (B', stop - start, V) float32 probabilities of the window rows at the full forward
    age: int
    drift: float = 0.0  # the last forward's drift from `ref`


def block_drift(probs: torch.Tensor, ref: torch.Tensor) -> float:
    """Total variation between probs and ref (B, T, V), mean over T, max over B."""
    return float((probs - ref).abs().sum(-1).mul(0.5).mean(-1).max())


@FORWARDS.register("adaptive")
class AdaptiveCache(BlockCached):
    keeps_suffix = True

    def __init__(self, model, cfg, attention_mask):
        super().__init__(model, cfg, attention_mask)
        self.threshold, self.span = cfg.cache_drift_threshold, cfg.cache_window * cfg.block_length
        self.full_forwards = 0  # for the benchmark: how often the cache was rebuilt

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        if not cfg.cache_drift_threshold >= 0:
            raise BadInput(f"cache-drift-threshold {cfg.cache_drift_threshold} must be >= 0 (0 = refresh every step)")
        if cfg.cache_window < 1:
            raise BadInput(f"cache-window {cfg.cache_window} must be >= 1 block")

    def _cached(self, x: torch.Tensor, w: _Window) -> torch.Tensor:
        return torch.cat([x[:, :w.start], x[:, w.stop:]], 1)

    def _due(self, w: _Window | None, x: torch.Tensor, start: int, end: int) -> bool:
        return (w is None or not (w.start <= start and end <= w.stop) or w.drift >= self.threshold
                or (self.refresh > 0 and w.age >= self.refresh) or not torch.equal(w.tokens, self._cached(x, w)))

    def __call__(self, x, start, end):
        am, L, w = self.attention_mask, x.shape[1], self.stored
        if self._due(w, x, start, end):
            stop = min(L, start + max(self.span, end - start))
            cut = self.cut(start)
            logits, cache = self.model.forward_prefix(x, am, cut, stop if stop < L else None)
            ref = torch.softmax(logits[:, start:stop].float(), -1)
            self.stored = w = _Window(cache=cache, start=start, stop=stop, tokens=None, logits=logits, ref=ref, age=1)
            w.tokens = self._cached(x, w).clone()
            self.full_forwards += 1
            return logits, x.numel()
        cut = self.cut(w.start)
        part = self.model.forward_cached(x, am, w.cache, cut, w.stop if w.stop < L else None)  # (B', stop-cut, V)
        logits = w.logits  # filled in place, as the block caches do: rows not run are never chosen
        logits[:, cut:cut + part.shape[1]] = part
        w.age += 1
        probs = torch.softmax(logits[:, start:end].float(), -1)  # (B', T, V) the current block's rows
        w.drift = block_drift(probs, w.ref[:, start - w.start:end - w.start])
        rows = part.shape[1] + min(getattr(self.model, "cached_lookback", 0), cut)
        return logits, part.shape[0] * rows
