#!/usr/bin/env bash
# End-to-end on CPU: a small LLaDA-architecture checkpoint with a subword tokenizer, pretrained here with CE on
# the synthetic task, then fine-tuned by LoRA with CE and with CTC+CE (ctc collapse), then eval, shift and
# errors on the three. Numbers: docs/training.md, "End to end on CPU". Each train step resumes if killed.
#   OUT=/work/scratch/real-small bash analyses/train_real_small.sh
# Sizes: d_model 128, 4 blocks, 4 heads, MLP 384, 256 embedding rows for a 217-token BPE tokenizer (digits
# split): 0.92M parameters. Measured on 2 CPU cores shared with other work, one torch thread per run: pretraining
# 916 s + 544 s, each LoRA fine-tune ~150 s (side by side), each eval ~40-90 s, shift ~2 min.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/real-small}
EVAL=(--no-chat --gen-length 48 --steps 48 --block-length 48 --threads 1)

[ -d "$OUT/base" ] || python analyses/build_real_small.py "$OUT/base" --d-model 128 --n-layers 4 --n-heads 4 \
  --mlp 384 --vocab 256 --tokenizer-vocab 300 --seed 0

# 1. pretrain every weight with CE (LLaDA's SFT objective) on the synthetic task, in two stages (the second
#    continues from the first's weights with a fresh warm-up and cosine schedule and new batches)
mdlm-probe train --init "$OUT/base" --objective ce --data synthetic --steps 2000 --batch-size 32 --lr 2e-3 \
  --warmup 200 --seed 0 --save-every 100 --eval-n 0 --threads 1 --name real-small-ce --out "$OUT/real-small-ce"
mdlm-probe train --init "$OUT/real-small-ce" --objective ce --data synthetic --steps 2500 --batch-size 32 \
  --lr 1.5e-3 --warmup 100 --seed 1 --save-every 100 --eval-n 0 --threads 1 --name real-small-ce2 \
  --out "$OUT/real-small-ce2"

# 2. LoRA fine-tunes of it, same steps, data, batch and seed; CTC+CE adds <slack> (and trains its two rows)
FT=(--init "$OUT/real-small-ce2" --data synthetic --lora --lora-r 16 --lora-alpha 32 --steps 400 --batch-size 32
    --lr 2e-3 --warmup 20 --seed 1 --save-every 100 --eval-n 0 --threads 1)
mdlm-probe train "${FT[@]}" --objective ce --name real-small-ce-lora --out "$OUT/real-small-ce-lora" &
mdlm-probe train "${FT[@]}" --objective ctc+ce --collapse ctc --ctc-weight 1.0 --slack-gaps 0 \
  --name real-small-ctc-lora --out "$OUT/real-small-ctc-lora" &
wait

# 3. eval (held-out synthetic problems), shift and errors on the three
for c in real-small-ce2 real-small-ce-lora real-small-ctc-lora; do
  mdlm-probe eval synthetic --ckpt "$OUT/$c" --limit 300 --batch-size 50 "${EVAL[@]}" --out "$OUT/eval-$c"
done
mdlm-probe shift --ckpt "$OUT/real-small-ce2" --ckpt "$OUT/real-small-ce-lora" --ckpt "$OUT/real-small-ctc-lora" \
  --benchmark synthetic --limit 60 --fractions 0,0.05 --mode insert,delete "${EVAL[@]}" --out "$OUT/shift"
mdlm-probe errors "$OUT"/eval-real-small-ce2 "$OUT"/eval-real-small-ce-lora "$OUT"/eval-real-small-ctc-lora
mdlm-probe errors "$OUT/shift"
