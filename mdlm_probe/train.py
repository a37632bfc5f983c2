"""`mdlm-probe train`: CE or CTC+CE training of any reachable mask predictor (the tiny model on CPU).

The run folder holds `train_config.json` (the single source of truth), `last.pt` (model, optimiser,
step; written atomically every `save_every` steps, so a killed run resumes where it saved), and at the
end the finished checkpoint: HF files + `mdlm_probe.json` sidecar with the held-out accuracy.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from . import synthetic
from .checkpoints import OBJECTIVES, SIDECAR, write_sidecar
from .errors import BadInput
from .objectives import ce_canvas, ce_loss, ctc_loss, mask_canvas, slack_canvas
from .progress import Progress
from .records import iter_jsonl


def _opt(default: Any, help: str) -> Any:
    """A TrainConfig field that is also a `mdlm-probe train` option (cli.config_options reads `help`)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    init: str = _opt("tiny", "tiny (fresh built-in model), a checkpoint name, folder or Hub name.")
    data: str = _opt("synthetic", "synthetic, gsm8k, or a JSONL file (question/answer or prompt/response).")
    objective: str = _opt("ce", f"Training objective: {' or '.join(OBJECTIVES)}.")
    collapse: str = _opt("surface", "ctc+ce only: surface (delete <slack>) or ctc (standard CTC).")
    ctc_weight: float = _opt(1.0, "lambda in CE + lambda * CTC.")
    slack_gaps: int = _opt(0, "ctc+ce only: at most this many <slack>s at random gaps of the CE canvas, the rest "
                              "after EOS (-1: all at random gaps).")
    steps: int = _opt(6000, "Optimiser steps.")
    batch_size: int = _opt(32, "Examples per step.")
    lr: float = _opt(2e-3, "Peak learning rate (linear warm-up, then cosine decay to 10% of it).")
    warmup: int = _opt(200, "Warm-up steps.")
    weight_decay: float = _opt(0.01, "AdamW weight decay.")
    seed: int = _opt(0, "Seed of a fresh model's weights, the batches and the masks.")
    device: str = _opt("cpu", "cpu, cuda, cuda:1 ...")
    response_length: int = _opt(synthetic.RESPONSE_LENGTH, "Response canvas length in tokens.")
    save_every: int = _opt(250, "Steps between resumable checkpoints.")
    eval_n: int = _opt(synthetic.HELDOUT_SIZE, "Held-out problems scored at the end (0 = skip).")
    name: str | None = _opt(None, "Checkpoint name for the sidecar (default: the --out folder name).")
    n_layer: int = _opt(4, "Layers of a fresh tiny model (--init tiny).")
    n_embd: int = _opt(128, "Width of a fresh tiny model (--init tiny).")
    mlp_mult: int = _opt(4, "MLP width multiple of a fresh tiny model (--init tiny).")
    # The sampler the held-out accuracy is measured with (recorded in the sidecar as its default).
    gen_length: int = _opt(synthetic.RESPONSE_LENGTH, "Held-out scoring and sidecar default: response positions.")
    sampler_steps: int = _opt(synthetic.RESPONSE_LENGTH, "Held-out scoring and sidecar default: denoising steps.")
    block_length: int = _opt(synthetic.RESPONSE_LENGTH, "Held-out scoring and sidecar default: block length.")

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise BadInput(f"unknown objective {self.objective!r}; expected one of {', '.join(OBJECTIVES)}")
        if self.collapse not in ("surface", "ctc"):
            raise BadInput(f"unknown collapse {self.collapse!r}; expected surface or ctc")
        if self.steps <= 0 or self.batch_size <= 0 or self.lr <= 0:
            raise BadInput("steps, batch-size and lr must be positive")
        if self.slack_gaps < -1:
            raise BadInput("slack-gaps must be -1 (every <slack> at a random gap) or a count >= 0")


# ----------------------------------------------------------------------------------------- data
def load_pairs(data: str) -> Callable[[random.Random], tuple[str, str]] | None:
    """A sampler of (prompt, response) pairs; None means the synthetic stream."""
    if data == "synthetic":
        return None
    if data == "gsm8k":
        from datasets import load_dataset  # Hub; needs network

        rows = [{"question": r["question"], "answer": r["answer"]} for r in load_dataset("openai/gsm8k", "main")["train"]]
    else:
        path = Path(data)
        if not path.is_file():
            raise BadInput(f"no data file {data!r} (expected synthetic, gsm8k or a .jsonl file)")
        rows = [obj for _, obj in iter_jsonl(path, "data file")]
    pairs = []
    for n, r in enumerate(rows, 1):
        q = r.get("question", r.get("prompt")) if isinstance(r, dict) else None
        a = r.get("answer", r.get("response")) if isinstance(r, dict) else None
        if not q or not a:
            raise BadInput(f"{data}: record {n} has no question/prompt or answer/response")
        pairs.append((synthetic.format_prompt(q), a))
    if not pairs:
        raise BadInput(f"{data}: no training examples")
    return lambda rng: pairs[rng.randrange(len(pairs))]


def make_batch(model, cfg: TrainConfig, step: int, sample_pair) -> dict[str, torch.Tensor]:
    """Batch for `step`: seeded by (seed, step), so a resumed run sees exactly the batches it would have."""
    rng = random.Random(cfg.seed * 1_000_003 + step)
    tok, R = model.tokenizer, cfg.response_length
    prompts, targets = [], []
    while len(prompts) < cfg.batch_size:
        if sample_pair is None:
            p = synthetic.sample_train(rng)
            prompt, response = synthetic.format_prompt(p.question), p.solution
        else:
            prompt, response = sample_pair(rng)
        t = tok(response, add_special_tokens=False)["input_ids"] + [model.eos_id]
        if len(t) > R:
            continue  # too long for the canvas; file data may hold a few
        prompts.append(tok(prompt, add_special_tokens=False)["input_ids"])
        targets.append(t)
    P = max(map(len, prompts))
    B, L = cfg.batch_size, P + R
    canvas = torch.full((B, L), model.pad_id, dtype=torch.long)
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
    return {"canvas": canvas, "attn": attn, "response": response, "P": P, "targets": tgt,
            "target_lengths": torch.tensor([len(t) for t in targets])}


# ----------------------------------------------------------------------------------------- model
def init_model(cfg: TrainConfig):
    """The model to train: a fresh tiny model, or any loadable checkpoint (its module must be reachable)."""
    from .adapters import MaskedDiffusionModel, load_model

    if cfg.init == "tiny":
        from .adapters.local import LocalModel
        from .tiny_model import TinyConfig, build_tiny_model
        from .tokenizer import SLACK, build_char_tokenizer

        tok = build_char_tokenizer()
        size = TinyConfig(n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=4, mlp_mult=cfg.mlp_mult)
        module = build_tiny_model(len(tok), tok.pad_token_id, tok.eos_token_id, size, seed=cfg.seed)
        return LocalModel(module=module, tokenizer=tok, mask_id=tok.mask_token_id, eos_id=tok.eos_token_id,
                          slack_id=tok.convert_tokens_to_ids(SLACK), pad_id=tok.pad_token_id, max_length=512,
                          name="tiny", sidecar={})
    m: MaskedDiffusionModel = load_model(cfg.init)
    if cfg.objective == "ctc+ce" and m.slack_id is None:
        # Give the tokenizer a <slack> token and the model a row for it.
        tok = m.tokenizer
        try:
            tok.add_special_tokens({"additional_special_tokens": ["<slack>"]})
            m.module.resize_token_embeddings(len(tok))
        except Exception as e:  # noqa: BLE001
            raise BadInput(f"cannot add a <slack> token to {cfg.init}: {e}") from None
        m.slack_id = tok.convert_tokens_to_ids("<slack>")
    if m.pad_id is None:
        m.pad_id = m.eos_id
    return m


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def code_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


# ----------------------------------------------------------------------------------------- the loop
def train(cfg: TrainConfig, out: Path | str, progress: bool | str = True, stop_after: int | None = None) -> dict[str, Any]:
    """Train and write the checkpoint to `out`. Returns the sidecar. `stop_after` ends early (tests)."""
    from .adapters import _quiet_transformers

    _quiet_transformers()
    cfg.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / "train_config.json"
    if cfg_file.is_file() and json.loads(cfg_file.read_text()) != asdict(cfg):
        raise BadInput(f"{out} holds a training run with a different config; use another --out")
    cfg_file.write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    if (out / SIDECAR).is_file() and not (out / "last.pt").is_file():
        side = json.loads((out / SIDECAR).read_text())
        if side.get("heldout") or cfg.eval_n == 0 or cfg.data != "synthetic":
            return side  # finished already: rerunning the same command is a no-op
    sample_pair = load_pairs(cfg.data)
    torch.manual_seed(cfg.seed)
    model = init_model(cfg)
    if cfg.objective == "ctc+ce" and model.slack_id is None:
        raise BadInput("ctc+ce needs a <slack> token and the tokenizer cannot take one")
    module = model.module.to(cfg.device).train()
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    start, elapsed = 0, 0.0
    ckpt = out / "last.pt"
    if ckpt.is_file():
        state = torch.load(ckpt, map_location=cfg.device, weights_only=False)
        module.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, elapsed = state["step"], state["elapsed"]
    gen = torch.Generator()
    history: list[dict[str, float]] = []
    t0, tokens = time.perf_counter(), 0
    mode = {True: "auto", False: "off"}.get(progress, progress)  # a bar on a terminal, else a line every few s
    with Progress("train", cfg.steps, start, mode=mode, unit="steps") as bar:
        for step in range(start, cfg.steps):
            if stop_after is not None and step >= start + stop_after:
                break
            batch = make_batch(model, cfg, step, sample_pair)
            gen.manual_seed(cfg.seed * 7_919 + step)
            noisy, masked, t = mask_canvas(batch["canvas"], batch["response"], model.mask_id, gen)
            dev = cfg.device
            logits = model.forward(noisy.to(dev), attention_mask=batch["attn"].to(dev))  # (B, L, V)
            R = cfg.response_length
            loss_ce = ce_loss(logits, batch["canvas"].to(dev), masked.to(dev), t.to(dev), R)
            loss, terms = loss_ce, {"ce": loss_ce.item()}
            if cfg.objective == "ctc+ce":
                loss_ctc = ctc_loss(logits, slice(batch["P"], None), batch["targets"].to(dev),
                                    batch["target_lengths"].to(dev), model.slack_id, cfg.collapse)
                loss = loss_ce + cfg.ctc_weight * loss_ctc
                terms["ctc"] = loss_ctc.item()
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            opt.step()
            tokens += batch["canvas"].numel()
            history.append({"step": step, **terms})
            secs = time.perf_counter() - t0
            bar.update(step + 1, " ".join(f"{k} {v:.3f}" for k, v in terms.items())
                       + f" · {tokens / max(secs, 1e-9):,.0f} tok/s")
            if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps:
                _atomic_save({"model": module.state_dict(), "opt": opt.state_dict(), "step": step + 1,
                              "elapsed": elapsed + secs}, ckpt)
                with open(out / "train_log.jsonl", "a") as fh:
                    for h in history:
                        fh.write(json.dumps(h) + "\n")
                history = []
    elapsed += time.perf_counter() - t0
    done = stop_after is None or start + stop_after >= cfg.steps
    if not done:
        return {"step": min(cfg.steps, start + (stop_after or 0)), "history": history}
    return finish(model, cfg, out, elapsed)


def finish(model, cfg: TrainConfig, out: Path, train_seconds: float) -> dict[str, Any]:
    """Save the HF checkpoint + sidecar, then measure held-out accuracy and record it."""
    from .sampler import SamplerConfig

    module = model.module.eval()
    module.save_pretrained(out, safe_serialization=True)
    model.tokenizer.save_pretrained(out)
    sampler = SamplerConfig(gen_length=cfg.gen_length, steps=cfg.sampler_steps, block_length=cfg.block_length,
                            batch_size=64).to_dict()
    sampler.pop("collapse", None)
    prev = model.sidecar or {}
    side = {
        "name": cfg.name or out.name,
        "adapter": "local",
        "mask_id": model.mask_id,
        "slack_id": model.slack_id,
        "eos_id": model.eos_id,
        "objective": cfg.objective,
        "collapse": cfg.collapse if cfg.objective == "ctc+ce" else "surface",
        "ctc_weight": cfg.ctc_weight if cfg.objective == "ctc+ce" else None,
        "slack_gaps": cfg.slack_gaps if cfg.objective == "ctc+ce" else None,
        "init": cfg.init if cfg.init == "tiny" else (prev.get("name") or cfg.init),
        "data": cfg.data,
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "seed": cfg.seed,
        "train_seconds": round(train_seconds, 1),
        "device": _device_name(cfg.device),
        "code_commit": code_commit(),
        "max_length": model.max_length,
        "default_fewshot": 0,
        "sampler": sampler,
        "heldout": None,
        "response_length": cfg.response_length,
        "warmup": cfg.warmup,
        "weight_decay": cfg.weight_decay,
    }
    write_sidecar(out, side)
    if cfg.eval_n > 0 and cfg.data == "synthetic":
        from .evaluate import heldout_accuracy

        acc = heldout_accuracy(out, n=cfg.eval_n, sampler=sampler)
        side["heldout"] = {"benchmark": "synthetic", "n": cfg.eval_n, "accuracy": acc, "sampler": sampler}
        write_sidecar(out, side)
    (out / "last.pt").unlink(missing_ok=True)
    return side


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(0)})"
    import os
    return f"cpu ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"
