"""The finished checkpoint: weights (or a peft adapter, optionally merged), tokenizer, sidecar, held-out accuracy."""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from mdlm_probe.core.cards import code_version
from mdlm_probe.core.checkpoints import write_sidecar
from mdlm_probe.decoding import SamplerConfig
from mdlm_probe.tasks import synthetic
from .config import MERGED, TrainConfig
from .data import data_hash


def finish(model, cfg: TrainConfig, out: Path, train_seconds: float, run: dict[str, Any] | None = None,
           state_dict: dict[str, torch.Tensor] | None = None, progress: str = "off") -> dict[str, Any]:
    """Save the checkpoint (HF files, or a peft adapter folder and with --merge OUT/merged) + sidecar, then
    measure held-out accuracy (synthetic data) and record it."""
    run = run or {}
    module = model.module.eval()
    base_path = model.path if cfg.init != "tiny" else None
    side = sidecar(model, cfg, out, train_seconds, run)
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
        from mdlm_probe.runs.evaluate import heldout_accuracy  # evaluate imports the sampler stack; only needed here

        target = out / MERGED if cfg.merge else out
        acc = heldout_accuracy(target, n=cfg.eval_n, sampler=side.get("sampler"), progress=progress)
        side["heldout"] = {"benchmark": "synthetic", "n": cfg.eval_n, "accuracy": acc, "sampler": side.get("sampler")}
        write_sidecar(out, side)
    (out / "last.pt").unlink(missing_ok=True)
    shutil.rmtree(out / "last_state", ignore_errors=True)
    return side


def sidecar(model, cfg: TrainConfig, out: Path, train_seconds: float, run: dict[str, Any]) -> dict[str, Any]:
    """The trained checkpoint's mdlm_probe.json (docs/conventions.md), its held-out result still to come."""
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
        # every prompt it trained on was laid out so (load_pairs); `generate` applies it to a bare prompt
        "prompt_format": None if cfg.chat else synthetic.PROMPT_FORMAT,
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
