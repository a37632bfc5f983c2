"""Forward policies: how a step gets its logits. `SamplerConfig.cache` names one.

A policy is built once per decode, `Policy(model, cfg, attention_mask)`, and called once per step:
`policy(x (B, L), start, end) -> (logits (B, L, V), positions forwarded)` for the block [start, end).

    none    the model on the whole canvas (LLaDA's `generate()`)
    prefix  Fast-dLLM's prefix cache: at a block's first step a full forward keeps the keys/values before the
            block; later steps run the block and everything after it over them
    dual    Fast-dLLM's dual cache: the same, keeping the positions after the block too; later steps run the
            block alone
    prefix-frozen, dual-frozen
            Fast-dLLM's Dream block decoder's caches (fastdllm_dream.py): as prefix/dual, but the row before
            the block keeps the block-start keys/values too (Dream's adapter otherwise re-runs it every step)
    adaptive
            (adaptive_cache.py) a write-through cache of the whole canvas: cached steps run the block and the
            positions whose tokens changed and store their keys; a full forward when a probe position's keys
            drift past `cache_drift_threshold` (after Elastic-Cache and dKV-Cache)

Classifier-free guidance wraps any policy (`Guided`): the conditional and unconditional copies go through it
as one batch of 2B rows, so a cache holds both copies' keys. Add a policy with `@FORWARDS.register("name")`
on a `ForwardPolicy` subclass; the adapter contract the caches use is `forward_prefix`/`forward_cached`
(docs/adapters.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.registry import Registry

from .compaction import Compactor

FORWARDS = Registry("cache policy")


class ForwardPolicy:
    """One forward per sampler step over the canvas."""

    resumable = True  # a decode can continue from a fork of its state (nothing is kept outside the state)

    def __init__(self, model, cfg, attention_mask: torch.Tensor | None):
        self.model, self.attention_mask = model, attention_mask

    @classmethod
    def check(cls, cfg) -> None:
        """Refuse settings this policy cannot honour (one line each)."""
        if cfg.cache_refresh < 0:
            raise BadInput(f"cache-refresh {cfg.cache_refresh} is negative (0 = refresh at block starts only)")

    def __call__(self, x: torch.Tensor, start: int, end: int) -> tuple[torch.Tensor, int]:
        raise NotImplementedError


@FORWARDS.register("none")
class Exact(ForwardPolicy):
    """The model on the whole canvas at every step (`compact`: on the rows that may still commit only)."""

    def __init__(self, model, cfg, attention_mask):
        super().__init__(model, cfg, attention_mask)
        self.compactor = Compactor(model.mask_id) if getattr(cfg, "compact", False) else None

    def __call__(self, x, start, end):
        if self.compactor is not None:
            return self.compactor(self.model, x, self.attention_mask, end)
        return self.model(x, attention_mask=self.attention_mask), x.numel()


@dataclass
class _Stored:
    cache: Any  # the adapter's keys/values
    start: int  # the block they were built for
    tokens: torch.Tensor  # (B', n) the cached positions' tokens when built: an edit there makes them stale
    logits: torch.Tensor  # (B', L, V) the full forward's logits, for the rows a partial forward skips
    age: int  # forwards served since the full one (the full one counts)


class BlockCached(ForwardPolicy):
    """A full forward at a block's first step keeps the keys/values outside the running rows; later steps of the
    block run those rows only. `keeps_suffix`: the positions after the block are cached too (dual)."""

    keeps_suffix = False
    resumable = False  # the stored keys are not part of a fork

    def __init__(self, model, cfg, attention_mask):
        super().__init__(model, cfg, attention_mask)
        if not getattr(model, "supports_cache", False):
            why = getattr(model, "cache_refusal", None)  # the adapter's one-line reason, where it gives one
            raise BadInput(f"--cache {cfg.cache} needs an adapter with KV cache support; "
                           f"{getattr(model, 'adapter_name', type(model).__name__)!r} has none"
                           f"{': ' + why if why else ''} (use --cache none)")
        self.refresh = cfg.cache_refresh
        self.stored: _Stored | None = None

    def stale(self, kv: _Stored | None, start: int, cached: torch.Tensor) -> bool:
        """A new block, a refresh due, or a hook edited cached positions: the next forward is a full one."""
        return (kv is None or kv.start != start or not torch.equal(kv.tokens, cached)
                or (self.refresh > 0 and kv.age >= self.refresh))

    def cut(self, start: int) -> int:
        """Where the running rows' logits start for the block at `start` (the adapter's `prefix_len`)."""
        return start

    def __call__(self, x, start, end):
        am, suffix = self.attention_mask, (end if self.keeps_suffix else None)
        cached = torch.cat([x[:, :start], x[:, end:]], 1) if self.keeps_suffix else x[:, :start]
        kv, cut = self.stored, self.cut(start)
        if self.stale(kv, start, cached):
            logits, cache = self.model.forward_prefix(x, am, cut, suffix)
            self.stored = _Stored(cache=cache, start=start, tokens=cached.clone(), logits=logits, age=1)
            return logits, x.numel()
        part = self.model.forward_cached(x, am, kv.cache, cut, suffix)  # (B', (end or L) - cut, V)
        # Rows not run keep the full forward's logits: committed or in later blocks, so never chosen. Written in
        # place: the stored logits serve only as that filler (processors are pure, forks clone), so a cached step
        # costs no (B, L, V) copy (1.5 GB for LLaDA-8B at batch 8 and 768 positions in bf16).
        logits = kv.logits
        logits[:, cut:cut + part.shape[1]] = part
        kv.age += 1
        rows = part.shape[1] + min(getattr(self.model, "cached_lookback", 0), cut)  # Dream: one row before too
        return logits, part.shape[0] * rows


@FORWARDS.register("prefix")
class PrefixCache(BlockCached):
    keeps_suffix = False


@FORWARDS.register("dual")
class DualCache(BlockCached):
    keeps_suffix = True


class Guided:
    """Classifier-free guidance around a policy: logits = un + (s + 1)(cond - un), the unconditional copy with
    the prompt masked (padding counts as prompt, as in LLaDA)."""

    def __init__(self, inner_cls: type[ForwardPolicy], model, cfg, attention_mask, prompt_index: torch.Tensor):
        if attention_mask is not None:
            attention_mask = torch.cat([attention_mask, attention_mask], 0)
        self.inner = inner_cls(model, cfg, attention_mask)
        self.resumable = self.inner.resumable
        self.scale, self.prompt_index, self.mask_id = cfg.cfg_scale, prompt_index, model.mask_id

    def __call__(self, x, start, end):
        un_x = x.clone()
        un_x[self.prompt_index] = self.mask_id
        both, tokens = self.inner(torch.cat([x, un_x], 0), start, end)  # (2B, L, V)
        cond, un = torch.chunk(both, 2, dim=0)
        return un + (self.scale + 1) * (cond - un), tokens


def build_forward(model, cfg, attention_mask: torch.Tensor | None, prompt_index: torch.Tensor):
    """The policy `cfg.cache` names, wrapped for guidance when `cfg.cfg_scale > 0`."""
    cls = FORWARDS.get(cfg.cache)
    if cfg.cfg_scale > 0:
        return Guided(cls, model, cfg, attention_mask, prompt_index)
    return cls(model, cfg, attention_mask)
