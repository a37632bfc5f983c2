"""The built-in tiny mask predictor: a transformers Gemma3 text model with bidirectional attention.

Being a stock transformers class, a checkpoint loads with `AutoModelForCausalLM.from_pretrained` and no
remote code; RoPE matches LLaDA, and the class accepts a KV cache (used by the prefix-cache sampler).
Despite the class name nothing is causal: `use_bidirectional_attention=True` lets every position see
every other, and training makes logits[:, i] predict token i (not i+1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class TinyConfig:
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    mlp_mult: int = 4
    max_length: int = 512  # a GSM8K question with its answer fits
    rope_theta: float = 10000.0


def build_tiny_model(vocab_size: int, pad_id: int, eos_id: int, cfg: TinyConfig | None = None, seed: int = 0):
    """A freshly initialised tiny model (deterministic given `seed`)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    cfg = cfg or TinyConfig()
    hf_cfg = Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.n_embd,
        intermediate_size=cfg.mlp_mult * cfg.n_embd,
        num_hidden_layers=cfg.n_layer,
        num_attention_heads=cfg.n_head,
        num_key_value_heads=cfg.n_head,
        head_dim=cfg.n_embd // cfg.n_head,
        query_pre_attn_scalar=cfg.n_embd // cfg.n_head,
        max_position_embeddings=cfg.max_length,
        layer_types=["full_attention"] * cfg.n_layer,
        sliding_window=cfg.max_length,
        use_bidirectional_attention=True,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=None,
        tie_word_embeddings=True,
        attention_dropout=0.0,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
    )
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(hf_cfg)
    model.config.mdlm_tiny = asdict(cfg)
    return model
