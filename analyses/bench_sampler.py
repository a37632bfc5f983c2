"""Sampler speed: tokens/s, NFE and the share of wall time spent outside the model's forward passes.

For batch 1 and 8, and for the default sampler, threshold (Fast-dLLM parallel) decoding and, where the
adapter supports it, the prefix and dual block KV caches with and without the threshold. Every repeat
runs each (mode, batch) once, in turn, and the table reports medians. Forward passes are timed by wrapping the model's `__call__`,
`forward_prefix` and `forward_cached` (with a CUDA sync on each side), so "outside" is everything the
sampler itself does: remasking rules, top-k, bookkeeping, hooks, decoding of records.

    python analyses/bench_sampler.py --ckpt tiny-random
    python analyses/bench_sampler.py --ckpt GSAI-ML/LLaDA-8B-Instruct --device cuda --gen-length 256 --block-length 32
    python analyses/bench_sampler.py --shape llada-8b --device cuda    # random weights, LLaDA-8B's shape, bf16
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from mdlm_probe.errors import BadInput
from mdlm_probe.sampler import SamplerConfig, generate

# LLaDA-8B: hidden 4096, 32 layers, 32 heads (no GQA), MLP 12288, vocab 126464, bf16.
LLADA_8B = dict(hidden=4096, layers=32, heads=32, mlp=12288, vocab=126464, mask_id=126336, eos_id=126081)
TEXT = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May? ") * 40


class IdTokenizer:
    """Enough of a tokenizer for records when the model has random weights and no vocabulary."""

    chat_template = None

    def decode(self, ids, skip_special_tokens=False):
        return " ".join(str(int(i)) for i in ids)


def build_shape_model(dims: dict, device: str):
    """A random-weight model of the given shape, in the project's own (bidirectional Gemma3) layout.

    Same width, depth, heads, MLP and vocabulary as the named model, so a forward costs what its forward
    costs; the layer internals (extra norms, tied embeddings) differ slightly from LLaDA's.
    """
    from mdlm_probe.adapters.local import LocalModel
    from mdlm_probe.tiny_model import TinyConfig, build_tiny_model

    if dims["mlp"] % dims["hidden"]:
        raise BadInput("the MLP width must be a multiple of the hidden size")
    cfg = TinyConfig(n_layer=dims["layers"], n_embd=dims["hidden"], n_head=dims["heads"],
                     mlp_mult=dims["mlp"] // dims["hidden"], max_length=4096)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # allocate in bf16 straight away: 8B params in fp32 would not fit
    try:
        with torch.device(device):
            module = build_tiny_model(dims["vocab"], dims["eos_id"], dims["eos_id"], cfg)
    finally:
        torch.set_default_dtype(old)
    module.eval()
    return LocalModel(module=module, tokenizer=IdTokenizer(), mask_id=dims["mask_id"], eos_id=dims["eos_id"],
                      pad_id=dims["eos_id"], max_length=4096, name=f"random {dims['layers']}x{dims['hidden']}")


class Timed:
    """Proxy that times the model's forward entry points; everything else passes through."""

    TIMED = ("forward_prefix", "forward_cached")

    def __init__(self, model):
        self._model, self.seconds = model, 0.0
        self._cuda = model.device.type == "cuda"

    def _timed(self, fn, *a, **k):
        if self._cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn(*a, **k)
        if self._cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t
        return out

    def __call__(self, *a, **k):
        return self._timed(self._model, *a, **k)

    def __getattr__(self, name):
        attr = getattr(self._model, name)
        if name in self.TIMED and callable(attr):
            return lambda *a, **k: self._timed(attr, *a, **k)
        return attr


def make_prompts(model, n: int, length: int) -> list[list[int]]:
    """`n` prompts of exactly `length` tokens (equal lengths: no padding, so batches do equal work)."""
    if isinstance(model.tokenizer, IdTokenizer):
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(0, model.mask_id, (n, length), generator=g)
        return ids.tolist()
    ids = model.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    if len(ids) < length + n:
        raise BadInput(f"--prompt-len {length} is longer than the benchmark text ({len(ids)} tokens)")
    return [ids[i: i + length] for i in range(n)]


def run(model, mode: dict, batch: int, args) -> dict:
    cfg = SamplerConfig(gen_length=args.gen_length, steps=args.steps or args.gen_length,
                        block_length=args.block_length or args.gen_length, batch_size=batch, **mode).validate()
    prompts = make_prompts(model, batch, args.prompt_len)
    timed = Timed(model)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    recs = generate(timed, prompts, cfg)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    tokens = batch * args.gen_length
    # "floor": tokens/s if the sampler cost nothing outside the model's forwards
    return {"tokens_s": tokens / wall, "floor_tokens_s": tokens / timed.seconds, "nfe": recs[0]["nfe"],
            "wall": wall, "outside": 1.0 - timed.seconds / wall}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="tiny-random", help="checkpoint name, folder or Hub name")
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--shape", choices=["llada-8b"], default=None, help="random weights of this shape (GPU only)")
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    ap.add_argument("--dtype", default=None, help="float32, bfloat16 ... (checkpoints only)")
    ap.add_argument("--gen-length", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None, help="default: gen-length (one token per step)")
    ap.add_argument("--block-length", type=int, default=8)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--threshold", type=float, default=0.9, help="confidence threshold of the threshold mode")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--no-cache-modes", dest="cache_modes", action="store_false", help="skip the KV-cache modes")
    ap.add_argument("--threads", type=int, default=None, help="torch threads on CPU (default: torch's)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per (mode, batch), alternating; medians reported")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    try:
        return bench(args)
    except BadInput as e:
        print(f"bench_sampler: error: {e}", file=sys.stderr)
        return 2


def bench(args) -> int:
    from mdlm_probe.adapters import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"--device {device}: no CUDA GPU is visible")
    if args.shape:
        if not device.startswith("cuda"):
            raise BadInput(f"--shape {args.shape} builds an 8B-parameter bf16 model (16 GB of weights): it needs "
                           f"--device cuda; on CPU benchmark a checkpoint instead (e.g. --ckpt tiny-random)")
        model, name = build_shape_model(LLADA_8B, device), f"random weights, {args.shape} shape, bf16"
    else:
        model = load_model(args.ckpt, adapter=args.adapter, device=device, dtype=args.dtype)
        name = f"{args.ckpt} ({model.adapter_name}, {model.dtype})".replace("torch.", "")
    modes = {"default": {}, f"threshold {args.threshold}": {"threshold": args.threshold}}
    batches = [int(b) for b in args.batches.split(",")]
    if args.cache_modes:
        modes.update(cache_modes(model, args.threshold))

    run(model, {}, 1, args)  # warm-up: allocator, kernels, lazy imports
    dev_name = torch.cuda.get_device_name(device) if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    # Alternate: every repeat runs each (mode, batch) once, so drift on a shared machine hits all alike.
    runs: dict[tuple[str, int], list[dict]] = {(m, b): [] for m in modes for b in batches}
    for _ in range(args.repeats):
        for m, mode in modes.items():
            for b in batches:
                runs[(m, b)].append(run(model, mode, b, args))
    med = {key: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for key, rs in runs.items()}
    print(f"# {name} on {dev_name}; prompt {args.prompt_len} tokens, gen-length {args.gen_length}, "
          f"block-length {args.block_length or args.gen_length}, steps {args.steps or args.gen_length}; "
          f"medians of {args.repeats} alternating runs")
    print("| mode | batch | tokens/s | vs default | forward floor tokens/s | NFE | wall s | outside forwards |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (m, b), r in med.items():
        print(f"| {m} | {b} | {r['tokens_s']:.1f} | {r['tokens_s'] / med[('default', b)]['tokens_s']:.2f}x | "
              f"{r['floor_tokens_s']:.1f} | {r['nfe']:.0f} | {r['wall']:.2f} | {100 * r['outside']:.1f}% |")
    if len(batches) > 1:
        lo, hi = min(batches), max(batches)
        print(f"\nbatch scaling (tokens/s at batch {hi} over batch {lo}): "
              + ", ".join(f"{m} {med[(m, hi)]['tokens_s'] / med[(m, lo)]['tokens_s']:.2f}x" for m in modes))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": name, "device": dev_name, "args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": [{"mode": m, "batch": b, **r} for (m, b), r in med.items()]},
                                        indent=2) + "\n")
    return 0


def cache_modes(model, threshold: float) -> dict[str, dict]:
    if not getattr(model, "supports_cache", False):
        return {}
    return {"cache prefix": {"cache": "prefix"}, "cache dual": {"cache": "dual"},
            f"threshold {threshold} + cache prefix": {"threshold": threshold, "cache": "prefix"},
            f"threshold {threshold} + cache dual": {"threshold": threshold, "cache": "dual"}}


if __name__ == "__main__":
    sys.exit(main())
