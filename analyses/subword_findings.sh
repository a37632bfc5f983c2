#!/usr/bin/env bash
# Issue 37 findings on the subword checkpoints of analyses/train_subword.sh, beside the character model's:
#   (a) what a 1% (and 5%) one-position shift costs the CE fine-tune, (b) whether CTC+CE changes that, for
#   inserts and deletes, (c) trailing-zero drops under the standard collapse against the surface map; then the
#   tokenization comparison (at-risk share from `mdlm-probe tokens`, observed trailing-zero drops, accuracy
#   under each collapse) for every tokenizer whose fine-tunes exist.
#   OUT=/work/scratch/subword bash analyses/subword_findings.sh   # eval on N=1000 held-out problems, shifts on N_SHIFT=400
# Per tokenizer (split, group3) and per fine-tune kind (full, lora) it runs analyses/reproduce_findings.py on
# the three fine-tunes (CE first, the baseline of the paired drop differences), which writes findings.md and
# a report under OUT/DIGITS/findings-KIND; every decode resumes, so a killed run continues where it stopped.
# Sampler: train_real_small.sh's (48 tokens, 48 steps, one block, T = 0); prompts without a chat template (the
# sidecars say chat false: the checkpoints were trained on plain prompts).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/subword}
N=${N:-1000}
N_SHIFT=${N_SHIFT:-400}  # the shift sweep's problems (the first N_SHIFT of the N), as for the character model
KINDS=${KINDS:-full lora}
SAMPLER='{"gen_length": 48, "steps": 48, "block_length": 48, "batch_size": 50}'

for d in ${DIGITS:-split group3}; do
  R=$OUT/$d
  for kind in $KINDS; do
    sfx=$([ "$kind" = lora ] && echo "-lora" || true)
    ce=$R/$d-ce$([ "$kind" = lora ] && echo "-lora" || echo "-ft")
    if [ ! -f "$R/$d-ctc-surface$sfx/mdlm_probe.json" ] || [ -f "$R/$d-ctc-surface$sfx/last.pt" ]; then
      echo "skip $d $kind: fine-tunes not finished (FT=1 TRAIN=0 DIGITS=$d bash analyses/train_subword.sh)"
      continue
    fi
    python analyses/reproduce_findings.py --out "$R/findings-$kind" --n "$N" --n-shift "$N_SHIFT" --fractions 0,0.01,0.05 --at 0.5 \
      --ckpt "$ce" --ckpt "$R/$d-ctc$sfx" --ckpt "$R/$d-ctc-surface$sfx" --sampler "$SAMPLER"
  done
  [ -d "$R/base" ] && python -m mdlm_probe tokens "$R/base" --limit "$N" --format csv || true
done
