"""`local`: the project's own checkpoints (a sidecar is present), e.g. the shipped tiny models."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import BadInput
from . import MaskedDiffusionModel, register


@register("local")
class LocalModel(MaskedDiffusionModel):
    @classmethod
    def detect(cls, config: dict, sidecar: dict | None) -> bool:
        return sidecar is not None

    @classmethod
    def load(cls, path: Path | str, sidecar: dict | None, device=None, dtype=None, **kw) -> "LocalModel":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if sidecar is None:
            raise BadInput(f"{path} has no mdlm_probe.json sidecar; the 'local' adapter needs one")
        tok = AutoTokenizer.from_pretrained(path)
        module = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32)
        if device:
            module.to(device)
        return cls(module=module, tokenizer=tok, mask_id=sidecar.get("mask_id", tok.mask_token_id),
                   eos_id=sidecar.get("eos_id", tok.eos_token_id), slack_id=sidecar.get("slack_id"),
                   pad_id=tok.pad_token_id, max_length=int(sidecar.get("max_length") or 512))

    def forward(self, ids, attention_mask=None):
        # Positions count real tokens only, so left padding does not move RoPE phases.
        pos = None
        if attention_mask is not None:
            pos = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return self.module(input_ids=ids, attention_mask=attention_mask, position_ids=pos).logits
