"""Any transformers masked LM (BERT, RoBERTa, ModernBERT, ...) as a mask predictor: its adapter."""

from __future__ import annotations

import inspect

import torch

from .base import register
from .hf import NEG_INF, HFModel, _pick


@register("masked-lm")
class MaskedLMModel(HFModel):
    """Any `AutoModelForMaskedLM` (BERT, RoBERTa, ModernBERT, ...) as a mask predictor with its own [MASK].

    The mask token itself is never proposed (its logit is -inf): a committed [MASK] would stay a mask.
    EOS is the tokenizer's EOS, else its [SEP]. With left padding, positions count real tokens only (BERT's
    absolute positions would otherwise shift with the padding); models whose position embedding reserves a
    padding index (RoBERTa, XLM-R) number real tokens from padding_idx + 1, as they do themselves.
    """

    markers = ("formaskedlm",)
    auto_class = "AutoModelForMaskedLM"
    no_cache_reason = ("masked LMs of other families (BERT, RoBERTa, ModernBERT, ...) each lay out attention "
                       "their own way; the cached forward knows LLaDA's and Dream's layouts only")

    @classmethod
    def resolve_ids(cls, config, tok, vocab, name):
        return {
            "mask_id": _pick(vocab, getattr(tok, "mask_token_id", None), config.get("mask_token_id")),
            "eos_id": _pick(vocab, getattr(tok, "eos_token_id", None), getattr(tok, "sep_token_id", None),
                                   config.get("eos_token_id"), config.get("sep_token_id")),
            "pad_id": _pick(vocab, getattr(tok, "pad_token_id", None), config.get("pad_token_id")),
        }

    @classmethod
    def max_length_of(cls, config, tok) -> int:
        n = super().max_length_of(config, tok)
        return min(n, int(getattr(tok, "model_max_length", n) or n))

    def _position_offset(self) -> int | None:
        """None if the module takes no position ids, else where real tokens' positions start."""
        if "position_offset" not in self.extra:
            offset = None
            if "position_ids" in inspect.signature(self.module.forward).parameters:
                base = getattr(self.module, "base_model", self.module)
                pe = getattr(getattr(base, "embeddings", None), "position_embeddings", None)
                pad_idx = getattr(pe, "padding_idx", None)
                offset = 0 if pad_idx is None else pad_idx + 1
            self.extra["position_offset"] = offset
        return self.extra["position_offset"]

    def forward(self, ids, attention_mask=None):
        kwargs = {}
        offset = self._position_offset() if attention_mask is not None else None
        if offset is not None:
            am = attention_mask.long()
            # real tokens 0, 1, ... (from padding_idx + 1 where reserved); padding at the first position
            kwargs["position_ids"] = ((am.cumsum(-1) - 1).clamp(min=0) + offset) * am + max(offset - 1, 0) * (1 - am)
        logits = self.module(input_ids=ids, attention_mask=attention_mask, **kwargs).logits  # (B, L, V)
        if self.mask_id is not None:
            logits = logits.index_fill(-1, torch.tensor([self.mask_id], device=logits.device), NEG_INF)
        return logits
