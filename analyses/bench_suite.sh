#!/usr/bin/env bash
# The performance suite behind the README's Performance section. Prints tables; writes JSON to $OUT.
#   bash analyses/bench_suite.sh                 # CPU, the shipped tiny-ce, one torch thread
#   bash analyses/bench_suite.sh gpu             # + LLaDA-8B-shaped random weights on a CUDA GPU (speed only)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-reports/bench}
CKPT=${CKPT:-tiny-ce}
N=${N:-1000}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# 1 + 3. exact mode (and the fast modes) at batch 1 and 8: tokens/s, NFE, time outside forwards, batch scaling
python analyses/bench_sampler.py --ckpt "$CKPT" --device cpu --threads "$OMP_NUM_THREADS" --gen-length 48 \
  --block-length 16 --prompt-len 48 --batches 1,8 --repeats 5 --json "$OUT/sampler_cpu.json"

# 2 (+ the cache rows). threshold 0.9 and the block caches vs exact on the held-out split, paired
python analyses/bench_heldout.py --ckpt "$CKPT" --n "$N" --block-length 16 --threshold 0.9 \
  --threads "$OMP_NUM_THREADS" --json "$OUT/heldout.json"

# 4. peak memory of `mdlm-probe eval synthetic`
python analyses/bench_memory.py --ckpt "$CKPT" --limit 200 --batch-size 16,64 --json "$OUT/memory.json"

if [[ "${1:-}" == "gpu" ]]; then
  # Random weights of LLaDA-8B's shape in bf16: speed only. With random weights no proposal reaches 0.9,
  # so threshold rows commit one token per step and show the mode's overhead, not its saving.
  python analyses/bench_sampler.py --shape llada-8b --device cuda --gen-length 256 --block-length 32 \
    --prompt-len 128 --batches 1,8 --repeats 3 --json "$OUT/sampler_llada8b_shape.json"
fi
