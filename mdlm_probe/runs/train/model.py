"""The model to train: a fresh tiny model or a checkpoint, with <slack> for CTC+CE, LoRA through peft, gradient checkpointing."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from mdlm_probe.adapters.base import MaskedDiffusionModel, load_model
from mdlm_probe.adapters.local import LocalModel
from mdlm_probe.adapters.slack_token import add_slack_token
from mdlm_probe.adapters.tiny_model import TinyConfig, build_tiny_model
from mdlm_probe.adapters.tokenizer import SLACK, build_char_tokenizer
from mdlm_probe.core.exceptions import BadInput
from .config import LORA_TARGETS, TrainConfig


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
