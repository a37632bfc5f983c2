"""Block KV caches for LLaDA's and Dream's layouts, by driving the checkpoint's own submodules.

The sampler's prefix and dual caches (kv_cache.CachedForward) need two things from a model: a full forward
that also returns the keys/values of some positions, and a forward of a few rows that attends to stored keys.
LLaDA's and Dream's published modeling files offer neither in a usable form (LLaDA asserts that no cache is
used; both number a cache's positions by "past length", which a dual cache's suffix does not fit), so this
module does it from outside, with the checkpoint's own modules:

- `prefix(...)`: the family's ordinary forward (so its logits are exact mode's, bit for bit), with hooks on
  each layer's key and value projections; the kept rows' keys are then rotated with the positions the forward
  used. Nothing else is computed twice.
- `cached(...)`: the layer loop re-run for the given rows: the checkpoint's embedding, norms, projections,
  MLP and output head (peft-wrapped Linear layers included), with attention and rotary positions done here
  (explicit positions per row), over the stored keys followed by the rows' own.

The arithmetic copies each published forward where it matters for equality (LLaDA: float32 rotary tables
from the model's own table, q/k rotated in float32 when `rope_full_precision`, an additive float32 padding bias
cast to the model dtype; Dream: cos/sin from the model's rotary module over the whole canvas's positions, in
the activations' dtype, a bool mask), so a cached forward on an unchanged canvas equals the full forward on
its rows (float64: to rounding). A module whose layout is not the one known here is refused by `find_layout`
with the reason.
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


def _need(obj, path: str, what: str):
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
    """A recognised layout: `prefix` and `cached`, shared; the family's parts in subclasses."""

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

    def cached(self, ids: torch.Tensor, attention_mask: torch.Tensor | None, cache: BlockCache,
               rows: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) of canvas positions `rows` (T of them), attending to the cache's keys then their own."""
        x = self.embed(ids[:, rows])  # (B, T, d)
        same = cache.canvas is not None and cache.mask_ref is attention_mask and cache.canvas["L"] == ids.shape[1]
        cv = cache.canvas if same else self.canvas(ids, attention_mask, x.dtype)  # one mask per decode: reused
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


class LLaDABlocks(BlockForward):
    """LLaDA-8B / LLaDA-1.5's layout: model.transformer {wte, emb_drop, ln_f, blocks[i], ff_out | tied}, llama
    blocks {attn_norm, q_proj, k_proj, v_proj, attn_out, ff_norm, ff_proj, up_proj, act, ff_out, rotary_emb}.
    Positions are 0..L-1 on the canvas (LLaDA takes no position ids, so left padding is not renumbered)."""

    family = "LLaDA"
    PARTS = ("attn_norm", "q_proj", "k_proj", "v_proj", "attn_out", "ff_norm", "ff_proj", "up_proj", "act",
             "ff_out", "rotary_emb")

    def __init__(self, module):
        super().__init__(module)
        what = f"{type(self.core).__name__} (LLaDA layout)"
        tr = _need(self.core, "model.transformer", what)
        if "blocks" not in tr:
            raise LayoutError(f"{what} has no `model.transformer.blocks` (grouped blocks are not supported)")
        for name in ("wte", "ln_f", "emb_drop"):
            _need(tr, name, what + ".model.transformer")
        self.tr, self.layers = tr, list(tr["blocks"])
        self.cfg = mc = _need(self.core, "model.config", what)
        for name, want in (("rope", True), ("alibi", False), ("block_type", "llama")):
            if str(getattr(mc, name, want)) != str(want):
                raise LayoutError(f"{what}: config {name}={getattr(mc, name)!r}, the cached forward knows {want!r}")
        for i, b in enumerate(self.layers):
            for p in self.PARTS:
                _need(b, p, f"{what} block {i}")
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


class DreamLayers(BlockForward):
    """Dream-v0's (Qwen2) layout: model {embed_tokens, layers[i] {input_layernorm, self_attn {q,k,v,o}_proj,
    post_attention_layernorm, mlp}, norm, rotary_emb}, lm_head. Positions count real tokens (left padding
    renumbered, padding at 1) exactly as DreamModel.forward gives them to Dream's own forward."""

    family = "Dream"

    def __init__(self, module):
        super().__init__(module)
        what = f"{type(self.core).__name__} (Dream layout)"
        base = _need(self.core, "model", what)
        for name in ("embed_tokens", "layers", "norm", "rotary_emb"):
            _need(base, name, what + ".model")
        _need(self.core, "lm_head", what)
        self.base, self.layers = base, list(base.layers)
        cfg = self.core.config
        if getattr(cfg, "is_causal", False):
            raise LayoutError(f"{what}: config is_causal=True, the cached forward is bidirectional")
        for i, layer in enumerate(self.layers):
            for p in ("input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                      "self_attn.o_proj", "post_attention_layernorm", "mlp"):
                _need(layer, p, f"{what} layer {i}")
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


def find_layout(family: str, module: torch.nn.Module) -> BlockForward:
    """The cached forward for `module` of `family` ("llada" | "dream"); LayoutError says why not."""
    cls = {"llada": LLaDABlocks, "dream": DreamLayers}[family]
    return cls(module)
