"""The training run's settings: one dataclass, saved as train_config.json beside the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


from mdlm_probe.core.checkpoints import OBJECTIVES
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks import synthetic


# LoRA target modules per adapter: every linear layer of the attention and MLP blocks. LLaDA names them
# q/k/v_proj, attn_out, ff_proj, up_proj, ff_out (its output head is also called ff_out; it is excluded by
# identity below); Dream (Qwen2) and the tiny model (Gemma3) use the Llama names.
LORA_TARGETS = {
    "llada": "q_proj,k_proj,v_proj,attn_out,ff_proj,up_proj,ff_out",
    "dream": "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    "local": "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
}
DTYPES = {"float32": "no", "bfloat16": "bf16"}  # --dtype -> accelerate's mixed precision
MERGED = "merged"  # --merge writes the merged checkpoint to OUT/merged
EVAL_N = 200  # held-out problems scored after training: CI about +-7 points; all 1000 took 6 min after a 22 s run


def _opt(default: Any, help: str) -> Any:
    """A TrainConfig field that is also a `mdlm-probe train` option (cli.config_options reads `help`)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    init: str = _opt("tiny", "tiny (fresh built-in model), a checkpoint name, folder or Hub name (LLaDA, Dream, ...).")
    data: str = _opt("synthetic", "synthetic, gsm8k, or a JSONL file: messages (chat), prompt/response or "
                                  "question/answer records.")
    chat: bool = _opt(False, "Render prompts with the checkpoint's chat template (needed for messages records).")
    objective: str = _opt("ce", f"Training objective: {' or '.join(OBJECTIVES)}.")
    collapse: str = _opt("surface", "ctc+ce only: surface (delete <slack>) or ctc (standard CTC).")
    ctc_weight: float = _opt(1.0, "lambda in CE + lambda * CTC.")
    slack_gaps: int = _opt(0, "ctc+ce only: at most this many <slack>s at random gaps of the CE canvas, the rest "
                              "after EOS (-1: all at random gaps).")
    steps: int = _opt(6000, "Optimiser steps.")
    batch_size: int = _opt(32, "Examples per optimiser step, over all processes and micro-batches.")
    grad_accum: int = _opt(1, "Micro-batches per optimiser step (gradient accumulation; divides --batch-size).")
    lr: float = _opt(2e-3, "Peak learning rate (linear warm-up, then cosine decay to 10% of it).")
    warmup: int = _opt(200, "Warm-up steps.")
    weight_decay: float = _opt(0.01, "AdamW weight decay.")
    seed: int = _opt(0, "Seed of a fresh model's weights, the batches and the masks.")
    device: str = _opt("cpu", "cpu or cuda (under accelerate launch each process takes its own GPU).")
    dtype: str = _opt("float32", "float32, or bfloat16 (mixed precision; with --lora the frozen base is stored in "
                                 "bfloat16 too).")
    grad_checkpointing: bool = _opt(False, "Recompute activations in the backward pass (less memory, one more "
                                           "forward pass per step).")
    lora: bool = _opt(False, "Train a LoRA adapter (peft) instead of every weight.")
    lora_r: int = _opt(16, "LoRA rank.")
    lora_alpha: int = _opt(32, "LoRA alpha (the update is scaled by alpha / r).")
    lora_dropout: float = _opt(0.0, "LoRA dropout.")
    lora_targets: str | None = _opt(None, "Comma-separated module names LoRA adapts (default per family: "
                                          + "; ".join(f"{k}: {v}" for k, v in LORA_TARGETS.items() if k != "local")
                                          + "; the tiny model: as dream).")
    merge: bool = _opt(False, "With --lora: also write the merged full checkpoint to OUT/merged.")
    max_length: int | None = _opt(None, "Longest prompt + response canvas in tokens (default: the model's).")
    response_length: int | None = _opt(None, "Response canvas length in tokens (default: 48 on synthetic data; on a "
                                             "data file each batch's longest response + EOS, as LLaDA's SFT pads).")
    save_every: int = _opt(250, "Steps between resumable checkpoints.")
    eval_n: int = _opt(EVAL_N, f"Held-out problems scored at the end (synthetic data; 0 = skip; "
                               f"{synthetic.HELDOUT_SIZE} = the whole split, as the shipped sidecars report).")
    name: str | None = _opt(None, "Checkpoint name for the sidecar (default: the --out folder name).")
    n_layer: int = _opt(4, "Layers of a fresh tiny model (--init tiny).")
    n_embd: int = _opt(128, "Width of a fresh tiny model (--init tiny).")
    mlp_mult: int = _opt(4, "MLP width multiple of a fresh tiny model (--init tiny).")
    # The sampler the held-out accuracy is measured with (recorded in the sidecar as its default).
    gen_length: int = _opt(synthetic.RESPONSE_LENGTH, "Held-out scoring and sidecar default: response positions.")
    sampler_steps: int = _opt(synthetic.RESPONSE_LENGTH, "Held-out scoring and sidecar default: denoising steps.")
    block_length: int = _opt(synthetic.RESPONSE_LENGTH, "Held-out scoring and sidecar default: block length.")

    def __post_init__(self) -> None:
        if self.response_length is None and self.data == "synthetic":
            self.response_length = synthetic.RESPONSE_LENGTH  # the synthetic task's fixed canvas

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise BadInput(f"unknown objective {self.objective!r}; expected one of {', '.join(OBJECTIVES)}")
        if self.collapse not in ("surface", "ctc"):
            raise BadInput(f"unknown collapse {self.collapse!r}; expected surface or ctc")
        if self.steps <= 0 or self.batch_size <= 0 or self.lr <= 0:
            raise BadInput("steps, batch-size and lr must be positive")
        if self.slack_gaps < -1:
            raise BadInput("slack-gaps must be -1 (every <slack> at a random gap) or a count >= 0")
        if self.grad_accum < 1:
            raise BadInput(f"grad-accum must be at least 1 (got {self.grad_accum})")
        if self.dtype not in DTYPES:
            raise BadInput(f"unknown dtype {self.dtype!r} for training; expected {' or '.join(DTYPES)}")
        if self.lora and (self.lora_r < 1 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1):
            raise BadInput("lora-r must be >= 1, lora-alpha > 0 and lora-dropout in [0, 1)")
        if self.lora and self.init == "tiny":
            raise BadInput("--lora adapts a trained checkpoint; --init tiny builds a fresh random model "
                           "(give a checkpoint, e.g. --init tiny-ce)")
        if self.merge and not self.lora:
            raise BadInput("--merge merges a LoRA adapter; it needs --lora")
        for k in ("max_length", "response_length"):
            v = getattr(self, k)
            if v is not None and v < 1:
                raise BadInput(f"{k.replace('_', '-')} must be positive")

    def shares(self, processes: int) -> int:
        """Examples per micro-batch of one process; the global batch must split evenly."""
        parts = processes * self.grad_accum
        if self.batch_size % parts:
            raise BadInput(f"batch-size {self.batch_size} does not split into {processes} process(es) x "
                           f"{self.grad_accum} micro-batch(es); use a multiple of {parts}")
        return self.batch_size // parts
