"""LLaDA's architecture, small: a test modeling file (not LLaDA's code) whose checkpoints LLaDA's published
modeling_llada.py loads with the same logits.

Same module tree, config field names and state-dict names as the published file:
LLaDAModelLM.model (LLaDAModel).transformer = {wte, emb_drop, ln_f, blocks[i], ff_out unless weight_tying};
each block (LLaDALlamaBlock) has attn_norm, ff_norm, q_proj, k_proj, v_proj, attn_out, ff_proj, up_proj, ff_out,
act and rotary_emb. Only what LLaDA-8B's config uses is supported (llama blocks, RMS norms, SiLU, rotary
positions, no ALiBi, no q/k norms, one block per group); other settings are refused at build time.

Arithmetic follows the published forward, because the adapter's cached forward must equal it:
- RMS norms normalise in float32 and cast back before the scale, whatever the model dtype;
- the rotary tables are float32, built once on the CPU for `max_sequence_length` positions 0..n-1 (no position
  ids: left padding does not renumber), kept outside the module's buffers so `.to(dtype)` leaves them alone;
  with `rope_full_precision` q and k are rotated in float32 and cast back;
- a (B, L) attention mask with zeros becomes an additive float32 bias (finfo(float32).min on padded keys),
  cast to the model dtype inside attention; a mask without zeros is no mask at all.

Written like the published file for transformers 4, with the three traits the adapter's compatibility layer
fixes under transformers 5: no `post_init()`, `tie_weights(self)` without arguments, and a config that takes
`use_cache` while `forward` reads `self.config.use_cache` (and refuses a cache).
"""

import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

DEFAULTS = dict(  # the fields this file reads, at LLaDA-8B's values
    d_model=4096, n_heads=32, n_kv_heads=32, n_layers=32, mlp_ratio=4, mlp_hidden_size=12288,
    activation_type="silu", block_type="llama", block_group_size=1, alibi=False, rope=True, rope_full_precision=True,
    rope_theta=500000.0, attention_layer_norm=False, layer_norm_type="rms", layer_norm_with_affine=True,
    rms_norm_eps=1e-5, include_bias=False, include_qkv_bias=False, bias_for_layer_norm=False, input_emb_norm=False,
    scale_logits=False, max_sequence_length=4096, vocab_size=126464, embedding_size=126464, weight_tying=False,
    embedding_dropout=0.0, residual_dropout=0.0, attention_dropout=0.0, init_device="meta",
)


class LLaDAOutput(NamedTuple):
    logits: torch.Tensor  # (B, L, V)
    attn_key_values: Optional[list] = None
    hidden_states: Optional[tuple] = None


class LLaDAConfig(PretrainedConfig):
    model_type = "llada"

    def __init__(self, use_cache: bool = False, **kwargs):
        merged = {**DEFAULTS, **kwargs, "use_cache": use_cache}
        merged.setdefault("architectures", ["LLaDAModelLM"])
        super().__init__(**merged)

    @property
    def num_attention_heads(self):
        return self.n_heads

    @property
    def num_hidden_layers(self):
        return self.n_layers

    @property
    def hidden_size(self):
        return self.d_model



def kv_heads(c) -> int:
    """Key/value heads (a plain function, not a config property: the config may be another file's class)."""
    return getattr(c, "n_kv_heads", None) or c.n_heads


def _check_supported(c) -> None:
    wanted = dict(block_type="llama", layer_norm_type="rms", activation_type="silu", rope=True, alibi=False,
                  attention_layer_norm=False, block_group_size=1)
    for k, v in wanted.items():
        if getattr(c, k) != v:
            raise ValueError(f"modeling_llada_arch supports {k}={v!r} only (config has {getattr(c, k)!r})")


class RMSNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.eps = c.rms_norm_eps
        self.weight = nn.Parameter(torch.ones(c.d_model)) if c.layer_norm_with_affine else None
        self.bias = None
        if c.layer_norm_with_affine and (c.bias_for_layer_norm if c.bias_for_layer_norm is not None
                                         else c.include_bias):
            self.bias = nn.Parameter(torch.zeros(c.d_model))

    def forward(self, x):
        dtype = x.dtype
        h = x.float()
        h = (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(dtype)  # normalised in float32
        if self.weight is None:
            return h
        return self.weight * h + self.bias if self.bias is not None else self.weight * h


class RotaryEmbedding(nn.Module):
    """sin/cos tables (1, 1, n, head_dim) in float32 for positions 0..n-1, shared by all blocks through `tables`."""

    def __init__(self, c, tables: dict):
        super().__init__()
        self.config, self.tables = c, tables
        self.get_rotary_embedding(c.max_sequence_length, torch.device("cpu"))  # built once, on the CPU

    def get_rotary_embedding(self, seq_len: int, device: torch.device):
        sin, cos = self.tables.get("sin"), self.tables.get("cos")
        if sin is None or sin.shape[-2] < seq_len:
            hd = self.config.d_model // self.config.n_heads
            inv_freq = 1.0 / (self.config.rope_theta ** (torch.arange(0, hd, 2, device=device, dtype=torch.float) / hd))
            pos = torch.arange(seq_len, device=device, dtype=torch.float)
            angles = torch.einsum("i,j->ij", pos, inv_freq)
            angles = torch.cat([angles, angles], dim=-1)  # (n, hd)
            sin, cos = angles.sin()[None, None], angles.cos()[None, None]
        if sin.device != device:
            sin, cos = sin.to(device), cos.to(device)
        self.tables.update(sin=sin, cos=cos)
        return sin[:, :, :seq_len], cos[:, :, :seq_len]

    @staticmethod
    def rotate(t, sin, cos):
        """t (B, H, T, hd) rotated by rows of sin/cos (…, T, hd): first half against second half."""
        half = t.shape[-1] // 2
        turned = torch.cat([-t[..., half:], t[..., :half]], dim=-1)
        return ((t * cos) + (turned * sin)).to(t.dtype)

    def forward(self, q, k):
        full = self.config.rope_full_precision
        q_, k_ = (q.float(), k.float()) if full else (q, k)
        n_q, n_k = q_.shape[-2], k_.shape[-2]
        sin, cos = self.get_rotary_embedding(n_k, q_.device)
        sin, cos = sin.type_as(q_), cos.type_as(q_)
        q_ = self.rotate(q_, sin[:, :, n_k - n_q:n_k], cos[:, :, n_k - n_q:n_k])
        k_ = self.rotate(k_, sin, cos)
        return q_.type_as(q), k_.type_as(k)


class LLaDALlamaBlock(nn.Module):
    def __init__(self, layer_id: int, c, tables: dict):
        super().__init__()
        self.layer_id, self.config = layer_id, c
        hd = c.d_model // c.n_heads
        kv = kv_heads(c) * hd
        hidden = c.mlp_hidden_size if c.mlp_hidden_size is not None else c.mlp_ratio * c.d_model
        qkv_bias = bool(c.include_bias or c.include_qkv_bias)
        self.dropout = nn.Dropout(c.residual_dropout)
        self.act = nn.SiLU()
        self.attn_out = nn.Linear(c.d_model, c.d_model, bias=c.include_bias)
        self.ff_out = nn.Linear(hidden, c.d_model, bias=c.include_bias)
        self.rotary_emb = RotaryEmbedding(c, tables)
        self.attn_norm, self.ff_norm = RMSNorm(c), RMSNorm(c)
        self.q_proj = nn.Linear(c.d_model, c.d_model, bias=qkv_bias)
        self.k_proj = nn.Linear(c.d_model, kv, bias=qkv_bias)
        self.v_proj = nn.Linear(c.d_model, kv, bias=qkv_bias)
        self.ff_proj = nn.Linear(c.d_model, hidden, bias=c.include_bias)
        self.up_proj = nn.Linear(c.d_model, hidden, bias=c.include_bias)

    def attention(self, q, k, v, attention_bias=None):
        c = self.config
        B, T, C = q.shape
        hd = C // c.n_heads
        q = q.view(B, T, c.n_heads, hd).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, T, kv_heads(c), hd).transpose(1, 2)
        v = v.view(B, T, kv_heads(c), hd).transpose(1, 2)
        q, k = self.rotary_emb(q, k)
        if attention_bias is not None:
            attention_bias = attention_bias[:, :, :T, :T]
            if attention_bias.dtype != k.dtype:
                attention_bias = attention_bias.to(k.dtype)
                attention_bias.masked_fill_(attention_bias == float("-inf"), torch.finfo(k.dtype).min)
        if c.n_heads != kv_heads(c):
            rep = c.n_heads // kv_heads(c)
            k = k.repeat_interleave(rep, dim=1, output_size=c.n_heads)
            v = v.repeat_interleave(rep, dim=1, output_size=c.n_heads)
        drop = c.attention_dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_bias, dropout_p=drop, is_causal=False)
        return self.attn_out(att.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x, attention_bias=None, layer_past=None, use_cache=False):
        if layer_past is not None or use_cache:
            raise ValueError("modeling_llada_arch keeps no KV cache")
        h = self.attn_norm(x)
        x = x + self.dropout(self.attention(self.q_proj(h), self.k_proj(h), self.v_proj(h), attention_bias))
        h = self.ff_norm(x)
        h = self.act(self.ff_proj(h)) * self.up_proj(h)
        return x + self.dropout(self.ff_out(h)), None


class LLaDAModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        _check_supported(c)
        self.config = c
        tables: dict = {}  # rotary tables: not buffers, so moving or casting the module leaves them as built
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c.embedding_size or c.vocab_size, c.d_model),
            emb_drop=nn.Dropout(c.embedding_dropout),
            ln_f=RMSNorm(c),
        ))
        self.transformer["blocks"] = nn.ModuleList(LLaDALlamaBlock(i, c, tables) for i in range(c.n_layers))
        if not c.weight_tying:
            self.transformer["ff_out"] = nn.Linear(c.d_model, c.embedding_size or c.vocab_size, bias=c.include_bias)

    def forward(self, input_ids, input_embeddings=None, attention_mask=None, attention_bias=None,
                past_key_values=None, use_cache=False, **kw):
        assert past_key_values is None and not use_cache, "masked diffusion keeps no KV cache"
        c = self.config
        x = self.transformer.wte(input_ids) if input_embeddings is None else input_embeddings  # (B, L, d)
        B, L = x.shape[:2]
        if c.input_emb_norm:
            x = x * (c.d_model ** 0.5)
        x = self.transformer.emb_drop(x)
        if attention_mask is not None and bool((attention_mask == 0).any()):
            keep = attention_mask.to(torch.float).view(B, -1)[:, None, None, :]  # (B, 1, 1, L)
            pad_bias = (1.0 - keep) * torch.finfo(torch.float).min
            bias = torch.zeros((1, 1, L, L), device=x.device, dtype=torch.float) if attention_bias is None \
                else attention_bias.to(torch.float)
            attention_bias = bias + pad_bias  # (B, 1, L, L)
            attention_bias.masked_fill_(attention_bias == float("-inf"), torch.finfo(attention_bias.dtype).min)
        for block in self.transformer.blocks:
            x, _ = block(x, attention_bias=attention_bias)
        x = self.transformer.ln_f(x)
        if c.weight_tying:
            logits = F.linear(x, self.transformer.wte.weight, None)
        else:
            logits = self.transformer.ff_out(x)  # (B, L, V)
        if c.scale_logits:
            logits = logits * (1 / math.sqrt(c.d_model))
        return LLaDAOutput(logits=logits)


class LLaDAModelLM(PreTrainedModel):
    config_class = LLaDAConfig
    base_model_prefix = "model"
    _no_split_modules = ["LLaDALlamaBlock"]

    def __init__(self, config, model=None, init_params=False):
        super().__init__(config)  # and no post_init(), as in the published file
        self.model = model or LLaDAModel(config)

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, attention_bias=None,
                past_key_values=None, use_cache=None, return_dict=None, **kw):
        if use_cache is None:
            use_cache = self.config.use_cache
        out = self.model(input_ids, input_embeddings=inputs_embeds, attention_mask=attention_mask,
                         attention_bias=attention_bias, past_key_values=past_key_values, use_cache=use_cache)
        return CausalLMOutputWithPast(logits=out.logits)

    def get_input_embeddings(self):
        return self.model.transformer.wte

    def set_input_embeddings(self, value):
        self.model.transformer.wte = value

    def get_output_embeddings(self):
        return self.model.transformer.wte if self.config.weight_tying else self.model.transformer.ff_out

    def tie_weights(self):  # the transformers 4 signature
        if self.config.weight_tying:
            self.model.transformer.ff_out = self.model.transformer.wte
