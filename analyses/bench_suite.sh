#!/usr/bin/env bash
# The performance suite behind the README's Performance section. Prints tables; writes JSON to $OUT.
#   bash analyses/bench_suite.sh          # CPU: the shipped tiny-ce, then LLaDA-/Dream-architecture random stand-ins
#   bash analyses/bench_suite.sh gpu      # GPU only: LLaDA-8B- and Dream-7B-shaped random bf16 weights (speed only)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-reports/bench}
CKPT=${CKPT:-tiny-ce}
N=${N:-1000}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

if [[ "${1:-cpu}" == "gpu" ]]; then
  # Random weights of the released shapes in bf16, the real layouts through the llada / dream adapters and their
  # caches: exact, threshold 0.9, prefix, dual, prefix + threshold, dual + threshold at batch 1 and 8, gen 256
  # and 512, block 32, one run each. Steps = gen length / 2 (2 tokens per step in exact mode) so that the whole part
  # fits a 10-minute GPU window: at one token per step the six modes would take about 5 minutes per shape (an
  # estimate from FLOPs at ~700 TFLOP/s bf16, not yet timed on a GPU). --head-scale 16 makes random weights
  # confident enough for the threshold to fire (the "tokens/step" column says how often); not a trained model's rate.
  # --new-modes adds threshold + batch compaction and adaptive cache + threshold: 8 modes instead of 6, so on paper
  # 4/3 of the above, about 3.3 min per shape plus ~0.5 min building each shape's weights: ~8 min for the part.
  # Every row is also in the JSON file named after its shape and length.
  for shape in llada-8b dream-7b; do
    for gen in 256 512; do
      python analyses/bench_sampler.py --shape "$shape" --device cuda --head-scale 16 --gen-length "$gen" \
        --steps $((gen / 2)) --block-length 32 --prompt-len 64 --batches 1,8 --repeats 1 --new-modes \
        --json "$OUT/sampler_${shape}_g${gen}.json"
    done
  done
  exit 0
fi

# 1 + 3. exact mode (and the fast modes) at batch 1 and 8: tokens/s, NFE, time outside forwards, batch scaling
python analyses/bench_sampler.py --ckpt "$CKPT" --device cpu --threads "$OMP_NUM_THREADS" --gen-length 48 \
  --block-length 16 --prompt-len 48 --batches 1,8 --repeats 5 --json "$OUT/sampler_cpu.json"

# 1b. the same modes on LLaDA's and Dream's real architectures (random, 4.3M parameters, through their adapters)
for shape in llada-small dream-small; do
  python analyses/bench_sampler.py --shape "$shape" --device cpu --threads "$OMP_NUM_THREADS" --head-scale 16 \
    --gen-length 64 --block-length 16 --prompt-len 64 --batches 1,8 --repeats 3 --json "$OUT/sampler_$shape.json"
done

# 2 (+ the cache rows). threshold 0.9 and the block caches vs exact on the held-out split, paired
python analyses/bench_heldout.py --ckpt "$CKPT" --n "$N" --block-length 16 --threshold 0.9 \
  --threads "$OMP_NUM_THREADS" --json "$OUT/heldout.json"

# 2b. batch compaction: threshold 0.9 at batch 8 with and without it (same tokens), and the adaptive cache
# against dual + threshold 0.9 (defaults chosen on problems 0-99, measured on the next 300)
python analyses/bench_compaction.py --ckpt "$CKPT" --n "$N" --batch-size 8 --threshold 0.9 \
  --threads "$OMP_NUM_THREADS" --json "$OUT/compaction.json"
python analyses/bench_adaptive.py --ckpt "$CKPT" --skip 100 --n 300 --threads "$OMP_NUM_THREADS" \
  --json "$OUT/adaptive.json"

# 4. peak memory of `mdlm-probe eval synthetic`
python analyses/bench_memory.py --ckpt "$CKPT" --limit 200 --batch-size 16,64 --json "$OUT/memory.json"
