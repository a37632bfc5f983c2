"""The MDLM family (kuleshov-group's mdlm-owt): its adapter."""

from __future__ import annotations

import torch

from mdlm_probe.core.exceptions import BadInput, first_line
from .base import register
from .hf import NEG_INF, HFModel, _pick


@register("mdlm")
class MDLMModel(HFModel):
    """kuleshov-group MDLM: `AutoModelForMaskedLM`, called as `backbone(x, sigma)` with sigma = 0.

    mdlm-owt is not time-conditioned, so sigma only has to have shape (B,). Its GPT-2 vocabulary gets one
    extra id, 50257, for the mask; MDLM's SUBS parameterisation never predicts the mask, so its logit is
    -inf. The backbone takes no attention mask: in a left-padded batch the padding (EOS) is attended.
    """

    markers = ("mdlm",)
    auto_class = "AutoModelForMaskedLM"
    padding_attended = "MDLM's backbone takes no attention mask (padding is attended)"
    no_cache_reason = ("MDLM's backbone (a DiT) is called whole and takes no attention mask, "
                       "so there are no per-layer keys/values to keep or padding to mask")
    MASK, EOS = 50257, 50256

    @classmethod
    def _load_tokenizer(cls, path):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        except Exception:  # noqa: BLE001 - mdlm-owt ships no tokenizer: it is GPT-2's (needs network once)
            try:
                return AutoTokenizer.from_pretrained("gpt2")
            except Exception as e:  # noqa: BLE001
                raise BadInput(f"{path} has no tokenizer and GPT-2's could not be loaded: {first_line(e, with_type=True)}") from None

    @classmethod
    def resolve_ids(cls, config, tok, vocab, name):
        return {
            "mask_id": _pick(vocab, config.get("mask_token_id"), config.get("mask_index"),
                                    getattr(tok, "mask_token_id", None), cls.MASK),
            "eos_id": _pick(vocab, getattr(tok, "eos_token_id", None), config.get("eos_token_id"), cls.EOS),
            "pad_id": None,  # falls back to EOS, which MDLM saw between packed documents
        }

    def finish_tokenizer(self) -> None:
        # GPT-2 has 50257 tokens; naming id 50257 lets raw text show a left-over mask instead of nothing.
        if self.mask_id is not None and len(self.tokenizer) == self.mask_id and self.tokenizer.mask_token is None:
            self.tokenizer.add_special_tokens({"mask_token": "<|mask|>"})

    def forward(self, ids, attention_mask=None):
        sigma = torch.zeros(ids.shape[0], device=ids.device)  # (B,)
        out = self.module.backbone(ids, sigma)
        logits = out[0] if isinstance(out, (tuple, list)) else out  # (B, L, V)
        if self.mask_id is not None:
            logits = logits.index_fill(-1, torch.tensor([self.mask_id], device=logits.device), NEG_INF)
        return logits
