"""The training recipe: accelerate's engine, the loss of a batch, the learning-rate schedule, resumable saves and the loop."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mdlm_probe.adapters.base import _quiet_transformers
from mdlm_probe.core.checkpoints import SIDECAR
from mdlm_probe.core.devices import check_device
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.progress import Progress
from mdlm_probe.core.rundir import check_folder, make_folder
from mdlm_probe.tasks.objectives import ce_ctc_losses, ce_loss, mask_canvas
from .config import DTYPES, TrainConfig
from .data import check_chat, encode_pairs, load_pairs, make_batch
from .export import finish
from .model import apply_lora, enable_grad_checkpointing, init_model


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



def fsdp_requested() -> bool:
    """Whether `accelerate launch` was given an FSDP config (it says so in the environment)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def make_accelerator(cfg: TrainConfig):
    """The Accelerator for this run: CPU processes talk over gloo, GPUs over NCCL; mixed precision from --dtype."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    check_device(cfg.device)
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
@dataclass
class Session:
    """What a run holds while it trains: the engine, the model and optimiser (prepared), the data, where it is."""

    acc: Any
    model: Any
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    examples: list | None
    micro: int  # examples per micro-batch of one process
    start: int  # the step to go on from (0, or where last.pt left off)
    elapsed: float  # training seconds before this process started
    run: dict[str, Any] = field(default_factory=dict)  # what the sidecar's `training` records


def train(cfg: TrainConfig, out: Path | str, progress: bool | str = True, stop_after: int | None = None) -> dict[str, Any]:
    """Train and write the checkpoint to `out`. Returns the sidecar. `stop_after` ends early (tests)."""
    _quiet_transformers()
    cfg.validate()
    out = check_folder(out)
    finished = _finished(cfg, out)
    if finished is not None:
        return finished  # rerunning a finished run's command is a no-op
    s = setup(cfg, out)
    mode = {True: "auto", False: "off"}.get(progress, progress) if s.acc.is_main_process else "off"
    t0 = time.perf_counter()
    end = cfg.steps if stop_after is None else min(cfg.steps, s.start + stop_after)
    history = run_steps(s, cfg, out, end, mode)
    if end < cfg.steps:
        return {"step": end, "history": history}
    return export(s, cfg, out, s.elapsed + time.perf_counter() - t0, mode)


def _finished(cfg: TrainConfig, out: Path) -> dict[str, Any] | None:
    """The sidecar of a finished run of this config in `out`; a run of another config there is refused."""
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
            return side
    return None


def setup(cfg: TrainConfig, out: Path) -> Session:
    """Engine, data, model (with <slack>, LoRA, checkpointing), optimiser; last.pt's state if the run resumes."""
    acc = make_accelerator(cfg)
    micro = cfg.shares(acc.num_processes)
    pairs = load_pairs(cfg.data, cfg.chat)
    torch.manual_seed(cfg.seed)
    # FSDP: load on CPU (rank 0 only, with the config's cpu_ram_efficient_loading) and let prepare shard it
    model = init_model(cfg, device=None if fsdp_requested() else acc.device)
    if cfg.objective == "ctc+ce" and model.slack_id is None:
        raise BadInput("ctc+ce needs a <slack> token and the tokenizer cannot take one")
    check_chat(model, cfg)
    examples, data_info = encode_pairs(model, cfg, pairs) if pairs is not None else (None, {})
    lora = apply_lora(model, cfg) if cfg.lora else None
    checkpointing = enable_grad_checkpointing(model.module) if cfg.grad_checkpointing else None
    if acc.is_main_process:  # every setting checked: the folder becomes this run's
        make_folder(out)
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
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
    run = {"lora": lora, "grad_checkpointing": checkpointing, "num_processes": acc.num_processes,
           "micro_batch": micro, **data_info}
    return Session(acc=acc, model=model, module=module, opt=opt, examples=examples, micro=micro, start=start,
                   elapsed=elapsed, run=run)


def train_step(s: Session, cfg: TrainConfig, step: int, gen: torch.Generator) -> tuple[dict[str, float], int]:
    """One optimiser step on the global batch of `step` (this process's slice, in micro-batches) -> the loss
    terms averaged over processes, and the canvas positions the batch holds."""
    acc, micro, rank = s.acc, s.micro, s.acc.process_index
    batch = make_batch(s.model, cfg, step, s.examples)
    gen.manual_seed(cfg.seed * 7_919 + step)
    noisy, masked, t = mask_canvas(batch["canvas"], batch["response"], s.model.mask_id, gen)
    for g in s.opt.param_groups:
        g["lr"] = lr_at(step, cfg)
    sums: dict[str, torch.Tensor] = {}
    for k in range(cfg.grad_accum):
        first = (k * acc.num_processes + rank) * micro
        torch.manual_seed(cfg.seed * 7_919 + step * 1_009 + first)  # dropout: same on a resumed run
        with acc.accumulate(s.module):
            loss, terms = batch_loss(s.model, cfg, batch, noisy, masked, t, slice(first, first + micro))
            acc.backward(loss)
            if acc.sync_gradients:
                acc.clip_grad_norm_(s.module.parameters(), 1.0)
            s.opt.step()
            s.opt.zero_grad(set_to_none=True)
        for name, v in terms.items():
            sums[name] = sums.get(name, 0) + v.float() / cfg.grad_accum
    return {name: acc.reduce(v, reduction="mean").item() for name, v in sums.items()}, batch["canvas"].numel()


def run_steps(s: Session, cfg: TrainConfig, out: Path, end: int, mode: str) -> list[dict[str, float]]:
    """Steps `s.start` .. `end - 1`, saving last.pt and the log every `save_every` steps and at the last one.
    Returns the log lines not yet written."""
    gen = torch.Generator()
    history: list[dict[str, float]] = []
    t0, tokens = time.perf_counter(), 0
    with Progress("train", cfg.steps, s.start, mode=mode, unit="steps") as bar:
        for step in range(s.start, end):
            terms, n = train_step(s, cfg, step, gen)
            tokens += n
            history.append({"step": step, **terms})
            secs = time.perf_counter() - t0
            bar.update(step + 1, " ".join(f"{k} {v:.3f}" for k, v in terms.items())
                       + f" · {tokens / max(secs, 1e-9):,.0f} tok/s")
            if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps:
                _save_resumable(s.acc, s.module, s.opt, cfg, out, {"step": step + 1, "elapsed": s.elapsed + secs})
                if s.acc.is_main_process:
                    with open(out / "train_log.jsonl", "a") as fh:
                        for h in history:
                            fh.write(json.dumps(h) + "\n")
                history = []
                s.acc.wait_for_everyone()
    return history


def export(s: Session, cfg: TrainConfig, out: Path, train_seconds: float, mode: str) -> dict[str, Any]:
    """The finished checkpoint, written by the main process (FSDP gathers the full weights first)."""
    acc = s.acc
    full_state = acc.get_state_dict(s.module) if fsdp_requested() else None  # a collective: every rank takes part
    s.model.module = acc.unwrap_model(s.module)
    side: dict[str, Any] = {}
    if acc.is_main_process:
        side = finish(s.model, cfg, out, train_seconds, s.run, state_dict=full_state, progress=mode)
    acc.wait_for_everyone()
    return side if acc.is_main_process else json.loads((out / SIDECAR).read_text())
