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

from __future__ import annotations

import inspect
import json
import math
import os
import random
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mdlm_probe.adapters.base import MaskedDiffusionModel, _quiet_transformers, load_model
from mdlm_probe.adapters.local import LocalModel
from mdlm_probe.adapters.slack_token import add_slack_token
from mdlm_probe.adapters.tiny_model import TinyConfig, build_tiny_model
from mdlm_probe.adapters.tokenizer import SLACK, build_char_tokenizer
from mdlm_probe.core.cards import code_version, short_sha256
from mdlm_probe.core.checkpoints import OBJECTIVES, SIDECAR, write_sidecar
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.progress import Progress
from mdlm_probe.core.records import iter_jsonl
from mdlm_probe.tasks import synthetic
from mdlm_probe.tasks.objectives import ce_canvas, ce_ctc_losses, ce_loss, mask_canvas, slack_canvas

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
    eval_n: int = _opt(synthetic.HELDOUT_SIZE, "Held-out problems scored at the end (synthetic data; 0 = skip).")
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


# ----------------------------------------------------------------------------------------- data
Pair = tuple[Any, str]  # (prompt: str, or the chat messages before the response; response text)


def load_pairs(data: str, chat: bool = False) -> list[Pair] | None:
    """(prompt, response) pairs of a data file or gsm8k; None means the synthetic stream.

    Records: `messages` (a chat: the last assistant turn is the response, the turns before it the prompt),
    `prompt`/`response`, or `question`/`answer`."""
    if data == "synthetic":
        return None
    if data == "gsm8k":
        from datasets import load_dataset  # Hub; needs network (optional dependency)

        rows = [{"question": r["question"], "answer": r["answer"]} for r in load_dataset("openai/gsm8k", "main")["train"]]
    else:
        path = Path(data)
        if not path.is_file():
            raise BadInput(f"no data file {data!r} (expected synthetic, gsm8k or a .jsonl file)")
        rows = [obj for _, obj in iter_jsonl(path, "data file")]
    pairs: list[Pair] = []
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict):
            raise BadInput(f"{data}: record {n} is not a JSON object")
        if "messages" in r:
            pairs.append(_chat_pair(r["messages"], f"{data}: record {n}", chat))
            continue
        q = r.get("question", r.get("prompt"))
        a = r.get("answer", r.get("response"))
        if not isinstance(q, str) or not q or not isinstance(a, str) or not a:
            raise BadInput(f"{data}: record {n} has no messages, question/prompt or answer/response")
        pairs.append((q if chat else synthetic.format_prompt(q), a))
    if not pairs:
        raise BadInput(f"{data}: no training examples")
    return pairs


def _chat_pair(messages: Any, where: str, chat: bool) -> Pair:
    if not chat:
        raise BadInput(f"{where}: messages records are rendered with the chat template; pass --chat")
    ok = isinstance(messages, list) and all(isinstance(m, dict) and isinstance(m.get("role"), str)
                                            and isinstance(m.get("content"), str) for m in messages)
    if not ok:
        raise BadInput(f"{where}: messages must be a list of {{role, content}} objects")
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0:
        raise BadInput(f"{where}: messages need an assistant turn after at least one other turn")
    return [dict(role=m["role"], content=m["content"]) for m in messages[:last]], messages[last]["content"]


def data_hash(data: str) -> str:
    """sha256 (16 hex digits) of a data file, or the data's name."""
    p = Path(data)
    if not p.is_file():
        return data
    return "sha256:" + short_sha256(p.read_bytes())


Example = tuple[list[int], list[int]]  # (prompt ids, target ids = response + EOS)


def encode_prompt(model, prompt: Any, chat: bool) -> list[int]:
    tok = model.tokenizer
    if chat:
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return tok(text, add_special_tokens=False)["input_ids"]
    return tok(prompt, add_special_tokens=False)["input_ids"]


def check_chat(model, cfg: TrainConfig) -> None:
    if cfg.chat and not getattr(model.tokenizer, "chat_template", None):
        raise BadInput(f"--chat: the tokenizer of {cfg.init} has no chat template")


def encode_pairs(model, cfg: TrainConfig, pairs: list[Pair]) -> tuple[list[Example], dict[str, int]]:
    """Token ids of every pair, checked against the canvas: a prompt that leaves no room for a response is bad
    input; a response past the room left is cut (counted); with a fixed --response-length, longer ones are
    left out (counted)."""
    check_chat(model, cfg)
    max_len = cfg.max_length or model.max_length
    out, cut, dropped = [], 0, 0
    for n, (prompt, response) in enumerate(pairs, 1):
        p = encode_prompt(model, prompt, cfg.chat)
        t = model.tokenizer(response, add_special_tokens=False)["input_ids"] + [model.eos_id]
        if len(p) >= max_len:
            raise BadInput(f"max-length {max_len} is shorter than prompt {n} of {cfg.data} ({len(p)} tokens "
                           f"+ at least one response token)")
        if cfg.response_length is not None and len(t) > cfg.response_length:
            dropped += 1
            continue
        if len(p) + len(t) > max_len:
            t, cut = t[: max_len - len(p)], cut + 1
        out.append((p, t))
    if not out:
        raise BadInput(f"{cfg.data}: no response fits --response-length {cfg.response_length}")
    return out, {"examples": len(out), "responses_cut": cut, "responses_left_out": dropped}


def make_batch(model, cfg: TrainConfig, step: int, examples: list[Example] | None) -> dict[str, Any]:
    """The global batch of `step`, seeded by (seed, step), so a resumed run sees exactly the batches it would
    have, and so does every process (each takes its slice). Prompts are left-padded to the longest (P); the
    response canvas (R) starts at P for every row: the fixed --response-length, or the batch's longest target
    within max-length; CE pads each target with EOS to R (LLaDA's SFT), CTC+CE with `<slack>`."""
    rng = random.Random(cfg.seed * 1_000_003 + step)
    tok = model.tokenizer
    prompts, targets = [], []
    while len(prompts) < cfg.batch_size:
        if examples is None:
            p = synthetic.sample_train(rng)
            t = tok(p.solution, add_special_tokens=False)["input_ids"] + [model.eos_id]
            if len(t) > cfg.response_length:
                continue  # too long for the canvas
            q = p.question if cfg.chat else synthetic.format_prompt(p.question)
            prompts.append(encode_prompt(model, q, cfg.chat))
            targets.append(t)
        else:
            p, t = examples[rng.randrange(len(examples))]
            prompts.append(p)
            targets.append(t)
    P = max(map(len, prompts))
    R = cfg.response_length or min(max(map(len, targets)), (cfg.max_length or model.max_length) - P)
    targets = [t[:R] for t in targets]  # a long prompt and a long response from different rows (rare)
    B, L = cfg.batch_size, P + R
    pad = model.pad_id if model.pad_id is not None else model.eos_id
    canvas = torch.full((B, L), pad, dtype=torch.long)
    attn = torch.zeros((B, L), dtype=torch.long)
    for i, (p, t) in enumerate(zip(prompts, targets)):
        canvas[i, P - len(p):P] = torch.tensor(p)
        attn[i, P - len(p):] = 1
        if cfg.objective == "ce":
            resp = ce_canvas(t, R, model.eos_id)
        else:
            resp = slack_canvas(t, R, model.slack_id, cfg.collapse, rng, cfg.slack_gaps)
        canvas[i, P:] = torch.tensor(resp)
    response = torch.zeros((B, L), dtype=torch.bool)
    response[:, P:] = True
    U = max(map(len, targets))
    tgt = torch.zeros((B, U), dtype=torch.long)
    for i, t in enumerate(targets):
        tgt[i, : len(t)] = torch.tensor(t)
    return {"canvas": canvas, "attn": attn, "response": response, "P": P, "R": R, "targets": tgt,
            "target_lengths": torch.tensor([len(t) for t in targets])}


def batch_loss(model, cfg: TrainConfig, batch: dict[str, Any], noisy: torch.Tensor, masked: torch.Tensor,
               t: torch.Tensor, rows: slice) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of `rows` of a masked batch: CE (masked positions, 1/t, / R, mean over rows) [+ lambda * CTC].
    The logits come through the adapter's forward, so Dream's next-token shift never reaches the loss."""
    dev = model.device
    logits = model.forward(noisy[rows].to(dev), attention_mask=batch["attn"][rows].to(dev))  # (b, L, V)
    ce_args = (logits, batch["canvas"][rows].to(dev), masked[rows].to(dev), t[rows].to(dev), batch["R"])
    if cfg.objective == "ce":
        loss = ce_loss(*ce_args)
        return loss, {"ce": loss.detach()}
    # both terms from one pass over the vocabulary (one (b, L, V) gradient, not two)
    ce, ctc = ce_ctc_losses(*ce_args, slice(batch["P"], None), batch["targets"][rows].to(dev),
                            batch["target_lengths"][rows].to(dev), model.slack_id, cfg.collapse)
    return ce + cfg.ctc_weight * ctc, {"ce": ce.detach(), "ctc": ctc.detach()}


# ----------------------------------------------------------------------------------------- model
def init_model(cfg: TrainConfig, device: str | torch.device | None = None) -> MaskedDiffusionModel:
    """The model to train: a fresh tiny model, or any loadable checkpoint (its module must be reachable),
    given a `<slack>` token when ctc+ce needs one. With --lora --dtype bfloat16 the frozen base loads in bf16."""
    if cfg.init == "tiny":
        tok = build_char_tokenizer()
        size = TinyConfig(n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=4, mlp_mult=cfg.mlp_mult)
        module = build_tiny_model(len(tok), tok.pad_token_id, tok.eos_token_id, size, seed=cfg.seed)
        m = LocalModel(module=module, tokenizer=tok, mask_id=tok.mask_token_id, eos_id=tok.eos_token_id,
                       slack_id=tok.convert_tokens_to_ids(SLACK), pad_id=tok.pad_token_id, max_length=512,
                       name="tiny", sidecar={})
        return m.to(device) if device is not None else m
    dtype = "bfloat16" if cfg.lora and cfg.dtype == "bfloat16" else "float32"
    m = load_model(cfg.init, device=str(device) if device is not None else None, dtype=dtype)
    if cfg.objective == "ctc+ce" and m.slack_id is None:
        m.slack_id = add_slack_token(m.module, m.tokenizer)
        if "vocab_size" in m.extra:  # the remote adapters read V from here
            m.extra["vocab_size"] = int(m.module.get_input_embeddings().weight.shape[0])
    if m.pad_id is None:
        m.pad_id = m.eos_id
    return m


def lora_targets(model: MaskedDiffusionModel, cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """(target module names, modules to exclude): the family's defaults or --lora-targets; a name that matches
    no linear layer is bad input. The output head is never adapted (LLaDA calls it ff_out, like its MLP out)."""
    family = model.adapter_name
    spec = cfg.lora_targets or LORA_TARGETS.get(family)
    if not spec:
        raise BadInput(f"no default LoRA targets for adapter {family!r}; pass --lora-targets NAME,NAME")
    names = [n.strip() for n in spec.split(",") if n.strip()]
    linear = {n.rsplit(".", 1)[-1] for n, m in model.module.named_modules() if isinstance(m, torch.nn.Linear)}
    missing = [n for n in names if n not in linear]
    if missing:
        raise BadInput(f"--lora-targets: {', '.join(missing)} name no linear layer of {cfg.init} "
                       f"(its linear layers: {', '.join(sorted(linear))})")
    head = model.module.get_output_embeddings()
    exclude = [n for n, m in model.module.named_modules() if m is head and n.rsplit(".", 1)[-1] in names]
    return names, exclude


def apply_lora(model: MaskedDiffusionModel, cfg: TrainConfig) -> dict[str, Any]:
    """Wrap model.module in a peft LoRA model (only the adapter trains). Returns the settings the sidecar keeps."""
    from peft import LoraConfig, get_peft_model  # optional until --lora (peft is a dependency, but heavy)

    targets, exclude = lora_targets(model, cfg)
    rows = slack_rows(model) if cfg.objective == "ctc+ce" else None
    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=targets, exclude_modules=exclude or None, bias="none",
                        trainable_token_indices=rows)
    with warnings.catch_warnings():  # peft asks transformers 5 a deprecated question; not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        model.module = get_peft_model(model.module, config)
    return {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout, "target_modules": targets,
            "trainable_tokens": rows}


def slack_rows(model: MaskedDiffusionModel) -> dict[str, list[int]]:
    """`<slack>`'s rows that a LoRA run trains too (peft's trainable tokens): a new token has nothing else to
    learn its input and output vectors from. The output row trains unless the head is tied (then it is the input
    row) or has a bias (peft's token layer would drop the bias); then it keeps its initialisation."""
    emb, head = model.module.get_input_embeddings(), model.module.get_output_embeddings()
    names = {id(m): n for n, m in model.module.named_modules()}
    rows = {names[id(emb)]: [model.slack_id]}
    if head is not None and head.weight is not emb.weight and getattr(head, "bias", None) is None:
        rows[names[id(head)]] = [model.slack_id]
    return rows


def enable_grad_checkpointing(module: torch.nn.Module) -> str:
    """transformers' gradient checkpointing where the module supports it; else each block of its layer list
    recomputed in the backward pass (remote code such as LLaDA's). Returns which was used."""
    base = module.get_base_model() if hasattr(module, "get_base_model") else module
    if getattr(base, "supports_gradient_checkpointing", False):
        try:
            if hasattr(base, "activation_checkpointing_enable"):  # transformers 5's name (the old one warns)
                base.activation_checkpointing_enable({"use_reentrant": False})
            else:
                base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if any(getattr(m, a, False) is True for m in base.modules()
                   for a in ("gradient_checkpointing", "activation_checkpointing")):
                return "transformers"
        except (ValueError, AttributeError, NotImplementedError):
            pass
    lists = [m for m in base.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0
             and len({type(b) for b in m}) == 1 and any(True for _ in m[0].parameters())]
    if not lists:
        raise BadInput(f"--grad-checkpointing: {type(base).__name__} supports no gradient checkpointing and has "
                       f"no list of blocks to recompute")
    for block in max(lists, key=lambda m: sum(p.numel() for p in m.parameters())):
        _checkpoint_block(block)
    return "blocks"


def _checkpoint_block(block: torch.nn.Module) -> None:
    forward = block.forward

    def run(*args, **kwargs):
        if not block.training or not torch.is_grad_enabled():
            return forward(*args, **kwargs)
        return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)

    block.forward = run


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


# ----------------------------------------------------------------------------------------- engine
def fsdp_requested() -> bool:
    """Whether `accelerate launch` was given an FSDP config (it says so in the environment)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def make_accelerator(cfg: TrainConfig):
    """The Accelerator for this run: CPU processes talk over gloo, GPUs over NCCL; mixed precision from --dtype."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    on_cpu = cfg.device == "cpu"
    if fsdp_requested() and (on_cpu or not torch.cuda.is_available()):
        raise BadInput("an FSDP accelerate config needs GPUs (--device cuda); on CPU launch plain data parallel "
                       "(analyses/accelerate/cpu_2proc.yaml)")
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        AcceleratorState._reset_state(True)  # one process: a fresh state per call (library use, tests)
        GradientState._reset_state()
        if on_cpu:
            os.environ.pop("ACCELERATE_TORCH_DEVICE", None)
        else:
            os.environ["ACCELERATE_TORCH_DEVICE"] = cfg.device  # `--device cuda:1` on one process
    return Accelerator(cpu=on_cpu, mixed_precision=DTYPES[cfg.dtype], gradient_accumulation_steps=cfg.grad_accum)


def _trainable_state(module: torch.nn.Module, lora: bool) -> dict[str, torch.Tensor]:
    """What last.pt keeps of the model: everything, or with LoRA the adapter weights only."""
    state = module.state_dict()
    if not lora:
        return state
    names = {n for n, p in module.named_parameters() if p.requires_grad}
    return {k: v for k, v in state.items() if k in names}


def _save_resumable(acc, module, opt, cfg: TrainConfig, out: Path, info: dict[str, Any]) -> None:
    """last.pt: trainable weights + optimiser + step, written atomically by the main process. Under FSDP the
    sharded weights and optimiser go through accelerate's save_state (a folder) and last.pt points at it."""
    ckpt = out / "last.pt"
    if fsdp_requested():
        tmp = out / "last_state.tmp"
        acc.save_state(str(tmp))
        acc.wait_for_everyone()
        if acc.is_main_process:
            shutil.rmtree(out / "last_state", ignore_errors=True)
            tmp.replace(out / "last_state")
            _atomic_save({**info, "state_dir": "last_state"}, ckpt)
        return
    state = _trainable_state(acc.unwrap_model(module), cfg.lora)
    if acc.is_main_process:
        _atomic_save({**info, "model": state, "opt": opt.state_dict()}, ckpt)


# ----------------------------------------------------------------------------------------- the loop
def train(cfg: TrainConfig, out: Path | str, progress: bool | str = True, stop_after: int | None = None) -> dict[str, Any]:
    """Train and write the checkpoint to `out`. Returns the sidecar. `stop_after` ends early (tests)."""
    _quiet_transformers()
    cfg.validate()
    acc = make_accelerator(cfg)
    micro = cfg.shares(acc.num_processes)
    out = Path(out)
    cfg_file = out / "train_config.json"
    if cfg_file.is_file():
        # A run saved before a field existed had that field at its default.
        saved, now = {**asdict(TrainConfig()), **json.loads(cfg_file.read_text())}, asdict(cfg)
        if saved != now:
            differ = ", ".join(k for k in now if saved.get(k) != now[k])
            raise BadInput(f"{out} holds a training run with a different config ({differ}); use another --out")
    if (out / SIDECAR).is_file() and not (out / "last.pt").is_file():
        side = json.loads((out / SIDECAR).read_text())
        if side.get("heldout") or cfg.eval_n == 0 or cfg.data != "synthetic":
            return side  # finished already: rerunning the same command is a no-op
    pairs = load_pairs(cfg.data, cfg.chat)
    torch.manual_seed(cfg.seed)
    fsdp = fsdp_requested()
    # FSDP: load on CPU (rank 0 only, with the config's cpu_ram_efficient_loading) and let prepare shard it
    model = init_model(cfg, device=None if fsdp else acc.device)
    if cfg.objective == "ctc+ce" and model.slack_id is None:
        raise BadInput("ctc+ce needs a <slack> token and the tokenizer cannot take one")
    check_chat(model, cfg)
    examples, data_info = encode_pairs(model, cfg, pairs) if pairs is not None else (None, {})
    lora = apply_lora(model, cfg) if cfg.lora else None
    checkpointing = enable_grad_checkpointing(model.module) if cfg.grad_checkpointing else None
    if acc.is_main_process:  # every setting checked: the folder becomes this run's
        out.mkdir(parents=True, exist_ok=True)
        cfg_file.write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    acc.wait_for_everyone()
    module = model.module.train()
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    ckpt = out / "last.pt"
    state = torch.load(ckpt, map_location=acc.device, weights_only=False) if ckpt.is_file() else None
    if state is not None and "model" in state:
        module.load_state_dict(state["model"], strict=not cfg.lora)
        opt.load_state_dict(state["opt"])
    module, opt = acc.prepare(module, opt)  # one call: under FSDP accelerate re-points the optimiser at the shards
    model.module = module
    if state is not None and "state_dir" in state:  # FSDP: sharded weights and optimiser, accelerate's format
        acc.load_state(str(out / state["state_dir"]))
    start, elapsed = (state["step"], state["elapsed"]) if state is not None else (0, 0.0)
    gen = torch.Generator()
    history: list[dict[str, float]] = []
    t0, tokens = time.perf_counter(), 0
    mode = {True: "auto", False: "off"}.get(progress, progress) if acc.is_main_process else "off"
    rank = acc.process_index
    with Progress("train", cfg.steps, start, mode=mode, unit="steps") as bar:
        for step in range(start, cfg.steps):
            if stop_after is not None and step >= start + stop_after:
                break
            batch = make_batch(model, cfg, step, examples)
            gen.manual_seed(cfg.seed * 7_919 + step)
            noisy, masked, t = mask_canvas(batch["canvas"], batch["response"], model.mask_id, gen)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            sums: dict[str, torch.Tensor] = {}
            for k in range(cfg.grad_accum):
                first = (k * acc.num_processes + rank) * micro
                torch.manual_seed(cfg.seed * 7_919 + step * 1_009 + first)  # dropout: same on a resumed run
                with acc.accumulate(module):
                    loss, terms = batch_loss(model, cfg, batch, noisy, masked, t, slice(first, first + micro))
                    acc.backward(loss)
                    if acc.sync_gradients:
                        acc.clip_grad_norm_(module.parameters(), 1.0)
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                for name, v in terms.items():
                    sums[name] = sums.get(name, 0) + v.float() / cfg.grad_accum
            terms = {name: acc.reduce(v, reduction="mean").item() for name, v in sums.items()}
            tokens += batch["canvas"].numel()
            history.append({"step": step, **terms})
            secs = time.perf_counter() - t0
            bar.update(step + 1, " ".join(f"{k} {v:.3f}" for k, v in terms.items())
                       + f" · {tokens / max(secs, 1e-9):,.0f} tok/s")
            if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps:
                _save_resumable(acc, module, opt, cfg, out, {"step": step + 1, "elapsed": elapsed + secs})
                if acc.is_main_process:
                    with open(out / "train_log.jsonl", "a") as fh:
                        for h in history:
                            fh.write(json.dumps(h) + "\n")
                history = []
                acc.wait_for_everyone()
    elapsed += time.perf_counter() - t0
    done = stop_after is None or start + stop_after >= cfg.steps
    if not done:
        return {"step": min(cfg.steps, start + (stop_after or 0)), "history": history}
    run = {"lora": lora, "grad_checkpointing": checkpointing, "num_processes": acc.num_processes,
           "micro_batch": micro, **data_info}
    full_state = acc.get_state_dict(module) if fsdp else None  # a collective: every rank takes part
    model.module = acc.unwrap_model(module)
    side: dict[str, Any] = {}
    if acc.is_main_process:
        side = finish(model, cfg, out, elapsed, run, state_dict=full_state)
    acc.wait_for_everyone()
    return side if acc.is_main_process else json.loads((out / SIDECAR).read_text())


def finish(model, cfg: TrainConfig, out: Path, train_seconds: float, run: dict[str, Any] | None = None,
           state_dict: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Save the checkpoint (HF files, or a peft adapter folder and with --merge OUT/merged) + sidecar, then
    measure held-out accuracy (synthetic data) and record it."""
    from mdlm_probe.decoding import SamplerConfig

    run = run or {}
    module = model.module.eval()
    family = model.adapter_name if model.adapter_name != "base" else "local"
    base_path = model.path if cfg.init != "tiny" else None
    prev = model.sidecar or {}
    side = {
        "name": cfg.name or out.name,
        "adapter": family,
        "mask_id": model.mask_id,
        "slack_id": model.slack_id,
        "eos_id": model.eos_id,
        "objective": cfg.objective,
        "collapse": cfg.collapse if cfg.objective == "ctc+ce" else "surface",
        "ctc_weight": cfg.ctc_weight if cfg.objective == "ctc+ce" else None,
        "slack_gaps": cfg.slack_gaps if cfg.objective == "ctc+ce" else None,
        "init": cfg.init if cfg.init == "tiny" else (prev.get("name") or cfg.init),
        "base_checkpoint": None if base_path is None else str(base_path),
        "data": cfg.data,
        "data_hash": data_hash(cfg.data),
        "chat": cfg.chat,
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "grad_accum": cfg.grad_accum,
        "lr": cfg.lr,
        "seed": cfg.seed,
        "dtype": cfg.dtype,
        "train_seconds": round(train_seconds, 1),
        "device": _device_name(cfg.device),
        "code_commit": code_version()[0],
        "max_length": model.max_length,
        "vocab_size": int(_base(module).get_input_embeddings().weight.shape[0]),
        "lora": run.get("lora"),
        "merged": False,
        "training": {k: v for k, v in run.items() if k != "lora"},
        "default_fewshot": 0,
        "heldout": None,
        "response_length": cfg.response_length,
        "warmup": cfg.warmup,
        "weight_decay": cfg.weight_decay,
    }
    if family == "local":  # the tiny family's decode defaults; real families keep their own (Dream's plan)
        sampler = SamplerConfig(gen_length=cfg.gen_length, steps=cfg.sampler_steps, block_length=cfg.block_length,
                                batch_size=64).to_dict()
        sampler.pop("collapse", None)
        side["sampler"] = sampler
    elif prev.get("sampler"):
        side["sampler"] = prev["sampler"]
    if cfg.lora:  # the adapter; the base's rows (and <slack>'s, by its rule) come from the base
        module.save_pretrained(out, save_embedding_layers=False, state_dict=state_dict)
    else:
        module.save_pretrained(out, safe_serialization=True, state_dict=state_dict)
        _copy_remote_code(module, base_path, out)
    model.tokenizer.save_pretrained(out)
    write_sidecar(out, side)
    if cfg.merge:
        merged_dir = out / MERGED
        merged = module.merge_and_unload()
        merged.save_pretrained(merged_dir, safe_serialization=True)
        model.tokenizer.save_pretrained(merged_dir)
        _copy_remote_code(merged, base_path, merged_dir)
        write_sidecar(merged_dir, {**side, "name": f"{side['name']}-merged", "merged": True})
        model.module = merged
    if cfg.eval_n > 0 and cfg.data == "synthetic":
        from .evaluate import heldout_accuracy  # evaluate imports the sampler stack; only needed here

        target = out / MERGED if cfg.merge else out
        acc = heldout_accuracy(target, n=cfg.eval_n, sampler=side.get("sampler"))
        side["heldout"] = {"benchmark": "synthetic", "n": cfg.eval_n, "accuracy": acc, "sampler": side.get("sampler")}
        write_sidecar(out, side)
    (out / "last.pt").unlink(missing_ok=True)
    shutil.rmtree(out / "last_state", ignore_errors=True)
    return side


def _base(module: torch.nn.Module) -> torch.nn.Module:
    return module.get_base_model() if hasattr(module, "get_base_model") else module


def _copy_remote_code(module: torch.nn.Module, base_path, folder: Path) -> None:
    """Remote-code models: the base's .py files beside the saved weights, so `trust_remote_code` finds the
    classes config.json's auto_map names (save_pretrained does not copy them for a class loaded by hand)."""
    auto_map = getattr(getattr(module, "config", None), "auto_map", None)
    if not auto_map:
        return
    if isinstance(base_path, Path) and base_path.is_dir():
        src = base_path
    else:  # a Hub checkpoint: the files transformers fetched into its dynamic-module cache
        remote = next((c for c in type(_base(module)).__mro__ if c.__module__.startswith("transformers_modules")), None)
        if remote is None:
            return
        src = Path(inspect.getfile(remote)).parent
    for f in src.glob("*.py"):
        if f.name != "__init__.py" and not (folder / f.name).exists():
            shutil.copy(f, folder / f.name)


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(0)})"
    return f"cpu ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"
