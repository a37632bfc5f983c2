"""Block KV caches by driving a checkpoint's own submodules: the generic part (`BlockForward`).

The sampler's prefix and dual caches (decoding/forward.py) need two things from a model: a full forward that
also returns the keys/values of some positions, and a forward of a few rows that attends to stored keys.
LLaDA's and Dream's published modeling files offer neither in a usable form (LLaDA asserts that no cache is
used; both number a cache's positions by "past length", which a dual cache's suffix does not fit), so this
is done from outside, with the checkpoint's own modules:

- `prefix(...)`: the family's ordinary forward (so its logits are exact mode's, bit for bit), with hooks on
  each layer's key and value projections; the kept rows' keys are then rotated with the positions the forward
  used. Nothing else is computed twice.
- `cached(...)`: the layer loop re-run for the given rows: the checkpoint's embedding, norms, projections,
  MLP and output head (peft-wrapped Linear layers included), with attention and rotary positions done here
  (explicit positions per row), over the stored keys followed by the rows' own.

A family's layout is a `BlockForward` subclass (its block driver) in the family's module, named by the
adapter class (`block_driver = LLaDABlockDriver` in llada.py, `DreamBlockDriver` in dream.py). Each copies its
published forward where it matters for equality (LLaDA: float32 rotary tables from the model's own table, q/k
rotated in float32 when `rope_full_precision`, an additive float32 padding bias cast to the model dtype; Dream:
cos/sin from the model's rotary module over the whole canvas's positions, in the activations' dtype, a bool
mask), so a cached forward on an unchanged canvas equals the full forward on its rows (float64: to rounding).
A driver refuses a module whose layout is not the one it knows by raising `LayoutError` with the reason.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F


class LayoutError(Exception):
    """The module is not laid out as this module expects (the message says what is missing)."""


@dataclass
class BlockCache:
    """Stored keys/values: per layer (k, v), each (B, kv_heads, n + spare, head_dim), keys rotated; `rows` (n,)
    are the canvas positions of the first n, in key order. The `spare` rows after them are scratch space where a
    cached step writes its own keys, so that a step does not copy the whole cache to append them."""

    kv: list[tuple[torch.Tensor, torch.Tensor]]
    rows: torch.Tensor
    canvas: dict | None = None  # the canvas-level tables (positions, rotary, mask) it was built with ...
    mask_ref: torch.Tensor | None = None  # ... for this attention mask object: reused while the caller's is the same


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The model inside a peft wrapper (its Linear layers stay wrapped: LoRA deltas apply)."""
    get = getattr(module, "get_base_model", None)
    return get() if callable(get) else module


def need(obj, path: str, what: str):
    """obj.<path> (dotted), or LayoutError naming what lacks it (drivers check a layout with it)."""
    cur = obj
    for part in path.split("."):
        if not hasattr(cur, part):
            raise LayoutError(f"{what} has no `{path}`")
        cur = getattr(cur, part)
    return cur


def _heads(t: torch.Tensor, n: int) -> torch.Tensor:
    """(B, T, n * hd) -> (B, n, T, hd)."""
    B, T, C = t.shape
    return t.view(B, T, n, C // n).transpose(1, 2)


def _with_spare(t: torch.Tensor, spare: int) -> torch.Tensor:
    """t (B, H, n, hd) -> (B, H, n + spare, hd) with t first (the rest uninitialised scratch)."""
    if not spare:
        return t
    out = t.new_empty(*t.shape[:-2], t.shape[-2] + spare, t.shape[-1])
    out[..., :t.shape[-2], :] = t
    return out


def _attend(q, k, v, mask) -> torch.Tensor:
    """Bidirectional attention of q (B, H, T, hd) over k, v (B, H_kv, K, hd); kv head h // (H / H_kv) serves
    query head h. -> (B, T, H * hd)."""
    H, Hkv = q.shape[1], k.shape[1]
    # Grouped keys are not copied out per head (7x the cache for Dream-7B): SDPA pairs the heads itself.
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False,
                                         enable_gqa=H != Hkv)
    B, _, T, hd = out.shape
    return out.transpose(1, 2).contiguous().view(B, T, H * hd)


class BlockForward:
    """A recognised layout: `prefix` and `cached`, shared; the family's parts in subclasses (block drivers)."""

    family = ""

    def __init__(self, module: torch.nn.Module):
        self.core = _unwrap(module)
        self.layers: list = []
        self.n_heads = self.n_kv = 0

    # ---- per family ----------------------------------------------------------------------------
    def kv_modules(self, layer) -> tuple[torch.nn.Module, torch.nn.Module]:
        raise NotImplementedError

    def canvas(self, ids: torch.Tensor, attention_mask: torch.Tensor | None, dtype: torch.dtype) -> dict:
        """What every row's forward needs from the whole canvas (positions, rotary tables, mask); `dtype` is the
        activations' (read off the layers' outputs, not off weights a wrapper may hide)."""
        raise NotImplementedError

    def rotate(self, t: torch.Tensor, rows: torch.Tensor, cv: dict) -> torch.Tensor:
        """q or k (B, H, T, hd) of canvas positions `rows` -> rotated."""
        raise NotImplementedError

    def mask(self, rows: torch.Tensor, key_rows: torch.Tensor, cv: dict):
        raise NotImplementedError

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def layer(self, layer, x: torch.Tensor, attend) -> torch.Tensor:
        """One layer on x (B, T, d); `attend(q, k, v)` takes the layer's projections (B, T, .) and returns the
        attention output (B, T, d) before the output projection."""
        raise NotImplementedError

    def head(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---- shared ---------------------------------------------------------------------------------
    @contextmanager
    def _capture(self, store: list):
        """Collect every layer's key and value projection outputs (B, L, kv_heads * hd) during a forward."""
        handles = []
        for i, layer in enumerate(self.layers):
            store.append([None, None])
            for j, mod in enumerate(self.kv_modules(layer)):
                def hook(_m, _inp, out, i=i, j=j):
                    store[i][j] = out
                handles.append(mod.register_forward_hook(hook))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def prefix(self, full_forward, ids: torch.Tensor, attention_mask: torch.Tensor | None,
               cache_mask: torch.Tensor | None, keep: torch.Tensor, spare: int = 0):
        """`full_forward(ids, attention_mask)` -> (its logits, BlockCache of the canvas positions `keep`, with
        room for `spare` more rows: the number a cached step will run). `cache_mask` is the mask the stored keys
        are rotated and later attended with (the forward's own)."""
        store: list = []
        with self._capture(store):
            logits = full_forward(ids, attention_mask)
        cv = self.canvas(ids, cache_mask, store[0][0].dtype if store and store[0][0] is not None else torch.float32)
        kv = []
        for i, (k, v) in enumerate(store):
            if k is None or v is None:
                raise LayoutError(f"{self.family}: a layer's key/value projection did not run in the forward")
            store[i] = None  # each layer's whole-canvas projections go as soon as its kept rows are copied
            kv.append(tuple(_with_spare(t, spare) for t in (self.rotate(_heads(k[:, keep], self.n_kv), keep, cv),
                                                            _heads(v[:, keep], self.n_kv))))
        return logits, BlockCache(kv=kv, rows=keep, canvas=cv, mask_ref=cache_mask)

    def _canvas_of(self, cache: BlockCache, ids: torch.Tensor, attention_mask: torch.Tensor | None,
                   dtype: torch.dtype) -> dict:
        """The canvas tables the cache was built with while the caller's mask is the same object (one mask per
        decode: reused), else built for this call."""
        same = cache.canvas is not None and cache.mask_ref is attention_mask and cache.canvas["L"] == ids.shape[1]
        return cache.canvas if same else self.canvas(ids, attention_mask, dtype)

    def cached(self, ids: torch.Tensor, attention_mask: torch.Tensor | None, cache: BlockCache,
               rows: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) of canvas positions `rows` (T of them), attending to the cache's keys then their own."""
        x = self.embed(ids[:, rows])  # (B, T, d)
        cv = self._canvas_of(cache, ids, attention_mask, x.dtype)
        key_rows = torch.cat([cache.rows, rows])
        mask = self.mask(rows, key_rows, cv)
        n = cache.rows.numel()
        for layer, (k_all, v_all) in zip(self.layers, cache.kv):
            def attend(q, k, v, k_all=k_all, v_all=v_all):
                q = self.rotate(_heads(q, self.n_heads), rows, cv)
                k, v = self.rotate(_heads(k, self.n_kv), rows, cv), _heads(v, self.n_kv)
                if k_all.shape[-2] == n + k.shape[-2]:  # the spare rows fit: write there, the stored n stay as built
                    k_all[..., n:, :], v_all[..., n:, :] = k, v
                    return _attend(q, k_all, v_all, mask)
                return _attend(q, torch.cat([k_all[..., :n, :], k], -2), torch.cat([v_all[..., :n, :], v], -2), mask)
            x = self.layer(layer, x, attend)
        return self.head(x)

    def through(self, ids: torch.Tensor, attention_mask: torch.Tensor | None, cache: BlockCache,
                rows: torch.Tensor) -> torch.Tensor:
        """Raw logits (B, T, V) of canvas positions `rows` over a whole-canvas cache (`rows` arange(L)), whose
        keys/values at those positions each layer replaces in place with the ones it computes."""
        x = self.embed(ids[:, rows])  # (B, T, d)
        cv = self._canvas_of(cache, ids, attention_mask, x.dtype)
        mask = self.mask(rows, cache.rows, cv)
        for layer, (k_all, v_all) in zip(self.layers, cache.kv):
            def attend(q, k, v, k_all=k_all, v_all=v_all):
                q = self.rotate(_heads(q, self.n_heads), rows, cv)
                k_all[..., rows, :] = self.rotate(_heads(k, self.n_kv), rows, cv)
                v_all[..., rows, :] = _heads(v, self.n_kv)
                return _attend(q, k_all, v_all, mask)
            x = self.layer(layer, x, attend)
        return self.head(x)
