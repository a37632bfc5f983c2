"""Layer 1: one interface over every model family (logits (B, L, V) for a canvas), and what loads a model.

`base` holds the interface (`MaskedDiffusionModel`), the registry (`ADAPTERS`, `register`) and `load_model`.
One module per family: `local` (the project's own checkpoints), and on the Hugging Face loading of `hf`
(with the transformers-version shims of `compat`) `llada` and `dream` (each with its block KV cache driver,
on the generic `block_forward`), `mdlm` and `masked_lm`. LoRA adapter folders are `peft_folder`; the
character tokenizer, the tiny model and `<slack>` handling are `tokenizer`, `tiny_model` and `slack_token`.
"""

from .base import (ADAPTERS, CheckpointInfo, MaskedDiffusionModel, adapter_names, describe_checkpoint, detect_adapter,
                   load_model, register)

__all__ = ["ADAPTERS", "CheckpointInfo", "MaskedDiffusionModel", "adapter_names", "describe_checkpoint",
           "detect_adapter", "load_model", "register"]
