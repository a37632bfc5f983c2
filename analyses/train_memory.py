"""Memory per GPU to fine-tune LLaDA-8B, estimated from parameter counts: LoRA and FSDP full fine-tuning.

    python analyses/train_memory.py [--batch 1] [--lora-r 16] [--gpus 1 2 8] [--lengths 512 1024]

Sizes from LLaDA-8B-Instruct's config.json (d_model 4096, n_layers 32, n_heads = n_kv_heads 32,
mlp_hidden_size 12288, embedding_size = vocab_size 126,464, weight_tying false, include_bias false, llama
blocks: q/k/v/attn_out, ff_proj/up_proj/ff_out, two RMSNorms). Assumptions (bytes per parameter P):

- LoRA (`--lora --dtype bfloat16`, data parallel: every GPU holds the whole model): frozen base in bf16 (2P);
  the adapter (rank r on q/k/v/attn_out/ff_proj/up_proj/ff_out of every block, train.py's LLaDA default) in
  fp32 with its fp32 gradient and AdamW's two fp32 moments: 16 bytes per adapter parameter. Nothing shrinks
  with more GPUs (only the global batch grows).
- Full fine-tuning under FSDP FULL_SHARD with bf16 mixed precision (analyses/accelerate/fsdp_8gpu.yaml):
  fp32 master weights, fp32 gradients and AdamW's two fp32 moments sharded over G GPUs (16P / G), plus the
  bf16 copies of the units being gathered: the largest unit (the 126,464 x 4096 embedding or output layer)
  twice, for the one in use and the one prefetched.
- Activations per GPU with gradient checkpointing (`--grad-checkpointing`), micro-batch B, length L, bf16:
  the input of every block kept for the backward pass, 2 * n_layers * d bytes per token; one block
  recomputed at a time, about (10 d + 4 mlp) values per token (norm outputs, q/k/v, attention output and
  projection, residual, gate/up/activation/product of the MLP) at 2 bytes, attention by a fused kernel (no
  L x L scores); and the logits: bf16 logits, their bf16 gradient and the loss's fp32 working block, about
  6 V bytes per token (measured by analyses/bench_objectives.py for the column-only CE and CTC+CE, which
  keep no (B, L, V) float32 tensor; the full log_softmax they replaced added 4-8 V more).
- Not counted: the CUDA context and allocator fragmentation (about 1-3 GiB per GPU in practice), NCCL
  buffers, the data.
"""

import argparse

# LLaDA-8B-Instruct config.json
D, LAYERS, MLP, VOCAB = 4096, 32, 12288, 126464
GIB = 2**30


def block_params() -> int:
    attn = 4 * D * D  # q, k, v (n_kv_heads = n_heads), attn_out
    mlp = 3 * D * MLP  # ff_proj (gate), up_proj, ff_out
    return attn + mlp + 2 * D  # two RMSNorm scales


def total_params() -> int:
    return LAYERS * block_params() + 2 * VOCAB * D + D  # blocks, embedding, output layer, final norm


def lora_params(r: int) -> int:
    per_block = 4 * r * (D + D) + 3 * r * (D + MLP)  # A (r x in) + B (out x r) per adapted matrix
    return LAYERS * per_block


def activation_bytes(B: int, L: int) -> int:
    per_token = 2 * LAYERS * D + 2 * (10 * D + 4 * MLP) + 6 * VOCAB
    return B * L * per_token


def rows(batch: int, r: int, gpus: list[int], lengths: list[int]) -> list[dict]:
    P = total_params()
    out = []
    for g in gpus:
        lp = lora_params(r)
        out.append({"setup": f"LoRA r={r}", "gpus": g, "weights": 2 * P, "grads": 4 * lp, "optimizer": 12 * lp,
                    **{L: activation_bytes(batch, L) for L in lengths}})
    for g in gpus:
        gathered = 2 * 2 * VOCAB * D  # two bf16 units in flight (the largest: embedding / output layer)
        out.append({"setup": "FSDP full", "gpus": g, "weights": 4 * P // g + gathered, "grads": 4 * P // g,
                    "optimizer": 8 * P // g, **{L: activation_bytes(batch, L) for L in lengths}})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1, help="micro-batch per GPU")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 2, 8])
    ap.add_argument("--lengths", type=int, nargs="+", default=[512, 1024])
    a = ap.parse_args()
    P = total_params()
    print(f"LLaDA-8B: {P:,} parameters ({LAYERS} blocks x {block_params():,} + embedding and output layer "
          f"2 x {VOCAB * D:,}); LoRA r={a.lora_r}: {lora_params(a.lora_r):,} trainable")
    print(f"GiB per GPU, micro-batch {a.batch}, gradient checkpointing, bf16 (see the docstring for the assumptions)")
    head = f"{'setup':<12} {'GPUs':>4} {'weights':>8} {'grads':>6} {'AdamW':>6} " + " ".join(
        f"{'act L=' + str(L):>10}" for L in a.lengths) + " " + " ".join(f"{'total L=' + str(L):>11}" for L in a.lengths)
    print(head)
    for r in rows(a.batch, a.lora_r, a.gpus, a.lengths):
        fixed = r["weights"] + r["grads"] + r["optimizer"]
        acts = " ".join(f"{r[L] / GIB:>10.1f}" for L in a.lengths)
        tots = " ".join(f"{(fixed + r[L]) / GIB:>11.1f}" for L in a.lengths)
        print(f"{r['setup']:<12} {r['gpus']:>4} {r['weights'] / GIB:>8.1f} {r['grads'] / GIB:>6.2f} "
              f"{r['optimizer'] / GIB:>6.2f} {acts} {tots}")


if __name__ == "__main__":
    main()
