"""`mdlm-probe train`: CE or CTC+CE training of any reachable mask predictor: the tiny model, LLaDA, Dream.

The loop runs through accelerate's `Accelerator`, so one command serves one CPU, one GPU and
`accelerate launch` (data parallel on several processes, FSDP for full fine-tuning of an 8B model; configs in
analyses/accelerate/). Each optimiser step draws one global batch seeded by (seed, step); a process takes its
slice of it and gradient accumulation splits the slice again, so the step does not depend on how many
processes or micro-batches share it. LoRA goes through peft.

The run folder holds `train_config.json` (the single source of truth), `last.pt` (trainable weights,
optimiser, step; written atomically every `save_every` steps, so a killed run resumes where it saved), and at
the end the finished checkpoint: HF files (or, with --lora, a peft adapter folder; with --merge also a merged
checkpoint in OUT/merged) + the `mdlm_probe.json` sidecar.
"""

from .config import DTYPES, EVAL_N, MERGED, TrainConfig
from .data import Pair, check_chat, data_hash, encode_pairs, encode_prompt, load_pairs, make_batch
from .export import finish
from .model import LORA_TARGETS, apply_lora, enable_grad_checkpointing, init_model, lora_targets, slack_rows
from .recipe import batch_loss, fsdp_requested, lr_at, make_accelerator, train


__all__ = ["TrainConfig", "DTYPES", "EVAL_N", "MERGED", "LORA_TARGETS", "Pair", "load_pairs", "data_hash",
           "encode_prompt", "check_chat", "encode_pairs", "make_batch", "init_model", "lora_targets", "apply_lora",
           "slack_rows", "enable_grad_checkpointing", "batch_loss", "lr_at", "fsdp_requested", "make_accelerator",
           "train", "finish"]
