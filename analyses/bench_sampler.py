"""Sampler speed: tokens/s, NFE, tokens forwarded, peak GPU memory and the share of wall time outside the forwards.

Modes: exact (LLaDA's sampler), threshold (Fast-dLLM parallel decoding), and, where the adapter has a block KV
cache, prefix, dual, prefix + threshold and dual + threshold (refreshed at block starts), each at the batch
sizes asked for, with its ratio to exact mode at the same batch size. Every repeat runs each (mode, batch) once,
in turn, and the table reports medians. Forward passes are timed by wrapping the model's `__call__`,
`forward_prefix` and `forward_cached` (with a CUDA sync on each side), so "outside" is everything the sampler
itself does: remasking rules, top-k, bookkeeping, records.

    python analyses/bench_sampler.py --ckpt tiny-random
    python analyses/bench_sampler.py --shape llada-small --threads 1              # CPU, LLaDA's architecture
    python analyses/bench_sampler.py --shape llada-8b --device cuda --gen-length 256 --block-length 32

`--shape` builds random weights in memory with the real architectures (tests/helpers/arch_checkpoints.py's `arch_model`:
LLaDA's modeling layout, or Dream's Qwen2 layout, run through the llada / dream adapters and their caches):
`llada-small` and `dream-small` (about 4M parameters, CPU), `llada-8b` and `dream-7b` (the released models'
shapes, bf16, GPU only). `--head-scale` multiplies the output layer so that random weights make confident
proposals and the threshold fires (it never reaches 0.9 at scale 1); the table's "tokens/step" shows how often.
Every mode uses the same plan (LLaDA's: steps = gen length unless --steps), with no top-k/top-p filter.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding import SamplerConfig, generate
from timed_rounds import run_bench, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))  # arch_checkpoints: the shape builders

# family, config overrides (field names of the published config.json), GPU only
SHAPES = {
    "llada-small": ("llada", dict(d_model=256, n_heads=4, n_kv_heads=4, n_layers=4, mlp_hidden_size=704,
                                  vocab_size=2048, max_sequence_length=1024), False),
    "dream-small": ("dream", dict(hidden_size=256, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=4,
                                  intermediate_size=704, vocab_size=2048, max_position_embeddings=1024), False),
    # LLaDA-8B: hidden 4096, 32 layers, 32 heads (no GQA), MLP 12288, vocab 126464
    "llada-8b": ("llada", dict(d_model=4096, n_heads=32, n_kv_heads=32, n_layers=32, mlp_hidden_size=12288,
                               vocab_size=126464, max_sequence_length=4096, mask_token_id=126336), True),
    # Dream-v0-7B (Qwen2.5-7B): hidden 3584, 28 layers, 28 heads / 4 KV heads, MLP 18944, vocab 152064
    "dream-7b": ("dream", dict(hidden_size=3584, num_attention_heads=28, num_key_value_heads=4, num_hidden_layers=28,
                               intermediate_size=18944, vocab_size=152064, max_position_embeddings=131072,
                               rope_theta=1e6, mask_token_id=151666), True),
}
TEXT = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May? ") * 40


def build_shape_model(shape: str, device: str, head_scale: float):
    """The llada / dream adapter around random weights of `shape` (bf16 on GPU, float32 on CPU)."""
    from arch_checkpoints import arch_model

    family, size, gpu_only = SHAPES[shape]
    if gpu_only and not device.startswith("cuda"):
        raise BadInput(f"--shape {shape} is a 7-8B-parameter model (15-16 GB of bf16 weights): it needs --device cuda; "
                       f"on CPU use --shape llada-small or dream-small")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = arch_model(family, device=device, dtype=dtype, **size)
    with torch.no_grad():
        model.module.get_output_embeddings().weight.mul_(head_scale)
    n = sum(p.numel() for p in model.module.parameters())
    return model, f"random weights, {shape} shape ({n / 1e6:.1f}M parameters, {family} adapter, {str(dtype)[6:]}, " \
                  f"head scale {head_scale:g})"


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
    ids = model.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    if len(ids) < length + n:
        raise BadInput(f"--prompt-len {length} is longer than the benchmark text ({len(ids)} tokens)")
    return [ids[i: i + length] for i in range(n)]


def run(model, mode: dict, batch: int, args) -> dict:
    cfg = SamplerConfig(gen_length=args.gen_length, steps=args.steps or args.gen_length,
                        block_length=args.block_length or args.gen_length, batch_size=batch, **mode).validate()
    prompts = make_prompts(model, batch, args.prompt_len)
    timed, cuda = Timed(model), model.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(model.device)
    t = time.perf_counter()
    recs = generate(timed, prompts, cfg)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    tokens = batch * args.gen_length
    return {"tokens_s": tokens / wall, "nfe": recs[0]["nfe"], "tokens_per_step": args.gen_length / recs[0]["nfe"],
            "forwarded": recs[0]["tokens_forwarded"],  # per sample
            "peak_gb": torch.cuda.max_memory_allocated(model.device) / 2**30 if cuda else 0.0,
            "wall": wall, "outside": 1.0 - timed.seconds / wall}


def modes(model, threshold: float, with_cache: bool, new: bool = False) -> dict[str, dict]:
    out = {"exact": {}, "threshold": {"threshold": threshold}}
    if new:  # batch compaction (decoding/compaction.py): exact forward only
        out["threshold+compact"] = {"threshold": threshold, "compact": True}
    if with_cache and getattr(model, "supports_cache", False):
        out.update({"prefix": {"cache": "prefix"}, "dual": {"cache": "dual"},
                    "prefix+threshold": {"cache": "prefix", "threshold": threshold},
                    "dual+threshold": {"cache": "dual", "threshold": threshold}})
        if new:  # the adaptive cache (decoding/adaptive_cache.py) at its defaults
            out["adaptive+threshold"] = {"cache": "adaptive", "threshold": threshold}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="tiny-random", help="checkpoint name, folder or Hub name")
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--shape", choices=sorted(SHAPES), default=None, help="random weights of this shape instead")
    ap.add_argument("--head-scale", type=float, default=1.0, help="--shape: output layer times this (confidence)")
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    ap.add_argument("--dtype", default=None, help="float32, bfloat16 ... (checkpoints only)")
    ap.add_argument("--gen-length", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None, help="default: gen-length (one token per step)")
    ap.add_argument("--block-length", type=int, default=8)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--threshold", type=float, default=0.9, help="confidence threshold of the threshold modes")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--no-cache-modes", dest="cache_modes", action="store_false", help="skip the KV-cache modes")
    ap.add_argument("--new-modes", action="store_true", help="also threshold + batch compaction and, with a cache, "
                    "the adaptive cache + threshold")
    ap.add_argument("--threads", type=int, default=None, help="torch threads on CPU (default: torch's)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per (mode, batch), alternating; medians reported")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    return run_bench("bench_sampler", bench, args)


def bench(args) -> int:
    from mdlm_probe.adapters import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"--device {device}: no CUDA GPU is visible")
    if args.shape:
        model, name = build_shape_model(args.shape, device, args.head_scale)
    else:
        model = load_model(args.ckpt, adapter=args.adapter, device=device, dtype=args.dtype)
        name = f"{args.ckpt} ({model.adapter_name}, {model.dtype})".replace("torch.", "")
    todo = modes(model, args.threshold, args.cache_modes, args.new_modes)
    batches = [int(b) for b in args.batches.split(",")]

    warm = argparse.Namespace(**{**vars(args), "gen_length": args.block_length or args.gen_length, "steps": None})
    for mode in todo.values():  # warm-up: allocator, kernels, lazy imports, each code path once
        run(model, mode, 1, warm)
    dev_name = torch.cuda.get_device_name(device) if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    # Alternate: every repeat runs each (mode, batch) once, so drift on a shared machine hits all alike.
    runs: dict[tuple[str, int], list[dict]] = {(m, b): [] for m in todo for b in batches}
    for _ in range(args.repeats):
        for m, mode in todo.items():
            for b in batches:
                runs[(m, b)].append(run(model, mode, b, args))
    med = {key: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for key, rs in runs.items()}
    for key, r in med.items():
        ex = med[("exact", key[1])]
        r["vs_exact"], r["forwarded_vs_exact"] = r["tokens_s"] / ex["tokens_s"], r["forwarded"] / ex["forwarded"]
    print(f"# {name} on {dev_name}; prompt {args.prompt_len} tokens, gen-length {args.gen_length}, "
          f"block-length {args.block_length or args.gen_length}, steps {args.steps or args.gen_length}, "
          f"threshold {args.threshold}; medians of {args.repeats} alternating runs")
    print("| mode | batch | tokens/s | vs exact | NFE | tokens/step | tokens forwarded per sample (vs exact) "
          "| peak GPU GB | outside forwards |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (m, b), r in sorted(med.items(), key=lambda kv: kv[0][1]):
        peak = f"{r['peak_gb']:.1f}" if device.startswith("cuda") else "—"
        print(f"| {m} | {b} | {r['tokens_s']:.1f} | {r['vs_exact']:.2f}x | {r['nfe']:.0f} | "
              f"{r['tokens_per_step']:.2f} | {r['forwarded']:.0f} ({r['forwarded_vs_exact']:.2f}) | {peak} | "
              f"{100 * r['outside']:.1f}% |")
    if len(batches) > 1:
        lo, hi = min(batches), max(batches)
        print(f"\nbatch scaling (tokens/s at batch {hi} over batch {lo}): "
              + ", ".join(f"{m} {med[(m, hi)]['tokens_s'] / med[(m, lo)]['tokens_s']:.2f}x" for m in todo))
    write_json(args.json, {"model": name, "device": dev_name, "args": {k: str(v) for k, v in vars(args).items()},
                           "rows": [{"mode": m, "batch": b, **r} for (m, b), r in med.items()]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
