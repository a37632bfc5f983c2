"""Layer 1: one interface over every model family (logits (B, L, V) for a canvas), and what loads a model.

`base` holds the interface (`MaskedDiffusionModel`), the registry (`register`) and `load_model`; the
families are `local` (the project's own checkpoints) and `remote` (LLaDA, Dream, MDLM, transformers masked
LMs), with the block KV cache drivers in `block_forward` and LoRA adapter folders in `peft_folder`. The
character tokenizer, the tiny model and `<slack>` handling are `tokenizer`, `tiny_model` and `slack_token`.
"""

from .base import (ADAPTERS, CheckpointInfo, MaskedDiffusionModel, adapter_names, describe_checkpoint, detect_adapter,
                   load_model, register)

__all__ = ["ADAPTERS", "CheckpointInfo", "MaskedDiffusionModel", "adapter_names", "describe_checkpoint",
           "detect_adapter", "load_model", "register"]
