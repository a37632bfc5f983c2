"""A few LoRA training steps of LLaDA-8B's shape on a GPU: tokens/s and peak memory beside the estimate.

    python analyses/train_gpu_lora.py                                   # llada-8b, cuda, bf16, grad checkpointing
    python analyses/train_gpu_lora.py --shape llada-small --device cpu  # the same code path on a CPU (a check)

Random weights of the real architecture (tests/helpers/arch_checkpoints.py's `arch_model`, built in memory: no 16 GB
folder), wrapped by train.py's own `apply_lora` and `enable_grad_checkpointing`, and trained with its
`batch_loss` (CE, or CTC+CE with `--objective ctc+ce`) on random token canvases: half prompt, half response,
`--length` tokens. Speed and memory do not depend on what the tokens say. The first step is a warm-up and is
not timed. The estimate printed beside the measurement is analyses/train_memory.py's row for one GPU (LLaDA-8B
only). Fits a 10-minute GPU window: loading is about a minute, each step a few seconds at batch 4 x 512.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from mdlm_probe.tasks.objectives import mask_canvas
from mdlm_probe.runs.train import TrainConfig, apply_lora, batch_loss, enable_grad_checkpointing

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))  # arch_checkpoints: the shape builders
sys.path.insert(0, str(HERE))  # bench_sampler's shapes, train_memory's estimate
from arch_checkpoints import arch_model  # noqa: E402
from bench_sampler import SHAPES  # noqa: E402
import train_memory  # noqa: E402


def random_batch(vocab: int, specials: set[int], B: int, L: int, slack_id: int | None, gen: torch.Generator):
    """Canvas (B, L) of ordinary tokens: prompt = first half, response = second half (its last quarter EOS-like
    padding for CTC targets). What batch_loss reads."""
    ordinary = torch.tensor([i for i in range(min(vocab, 4096)) if i not in specials])
    canvas = ordinary[torch.randint(len(ordinary), (B, L), generator=gen)]
    P = L // 2
    response = torch.zeros(B, L, dtype=torch.bool)
    response[:, P:] = True
    U = (L - P) * 3 // 4  # CTC target: the response's first three quarters, the rest <slack>
    if slack_id is not None:
        canvas[:, P + U:] = slack_id
    return {"canvas": canvas, "attn": torch.ones(B, L, dtype=torch.long), "response": response, "P": P, "R": L - P,
            "targets": canvas[:, P:P + U].clone(), "target_lengths": torch.full((B,), U)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="llada-8b", choices=[s for s in SHAPES if SHAPES[s][0] == "llada"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--objective", default="ce", choices=["ce", "ctc+ce"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--no-checkpointing", action="store_true")
    args = ap.parse_args()
    family, size, _ = SHAPES[args.shape]
    cuda = args.device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    t0 = time.perf_counter()
    model = arch_model(family, device=args.device, dtype=dtype, **size)
    load_s = time.perf_counter() - t0
    cfg = TrainConfig(init=str(args.shape), objective=args.objective, lora=True, lora_r=args.lora_r,
                      lora_alpha=2 * args.lora_r, dtype="bfloat16" if cuda else "float32",
                      grad_checkpointing=not args.no_checkpointing)
    if args.objective == "ctc+ce":
        model.slack_id = model.vocab_size - 1  # a spare row stands in for the added <slack>
    lora = apply_lora(model, cfg)
    ckpt = enable_grad_checkpointing(model.module) if cfg.grad_checkpointing else "off"
    params = [p for p in model.module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    specials = {i for i in (model.mask_id, model.eos_id, model.eot_id, model.pad_id, model.slack_id) if i is not None}
    model.module.train()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for step in range(args.steps + 1):
        batch = random_batch(model.vocab_size, specials, args.batch, args.length, model.slack_id, gen)
        noisy, masked, t = mask_canvas(batch["canvas"], batch["response"], model.mask_id, gen)
        if cuda:
            torch.cuda.synchronize()
        s = time.perf_counter()
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
            loss, _ = batch_loss(model, cfg, batch, noisy, masked, t, slice(0, args.batch))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step:  # the first step warms up kernels and the allocator
            times.append(time.perf_counter() - s)
        losses.append(loss.item())
    n_params = sum(p.numel() for p in model.module.parameters())
    n_train = sum(p.numel() for p in params)
    tok_s = args.batch * args.length * len(times) / sum(times)
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    print(f"{args.shape} ({n_params / 1e6:,.0f}M parameters, {n_train / 1e6:.1f}M trainable: LoRA r={lora['r']}), "
          f"{device}, {str(dtype)[6:]}, gradient checkpointing: {ckpt}, objective {args.objective}, "
          f"batch {args.batch} x {args.length} tokens; load {load_s:.0f} s")
    print(f"  step time {sum(times) / len(times):.2f} s (mean of {len(times)}), {tok_s:,.0f} tokens/s "
          f"(random batches: the loss, {losses[-1]:.2f}, is only a sign that the step ran)")
    if cuda:
        peak = torch.cuda.max_memory_allocated() / train_memory.GIB
        line = f"  peak GPU memory {peak:.1f} GiB (torch allocator)"
        if args.shape == "llada-8b":
            r = next(r for r in train_memory.rows(args.batch, args.lora_r, [1], [args.length])
                     if r["setup"].startswith("LoRA"))
            est = r["weights"] + r["grads"] + r["optimizer"] + r[args.length]
            line += f"; analyses/train_memory.py estimates {est / train_memory.GIB:.1f} GiB"
        print(line)


if __name__ == "__main__":
    main()
