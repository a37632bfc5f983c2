#!/usr/bin/env bash
# Issue 37: LLaDA-architecture checkpoints with byte-pair tokenizers, CE-pretrained on the synthetic task, in
# stages with the character model's schedule (analyses/train_tiny.sh, tiny-ce: 3500 + 6500 + 6000 + 10000 + 6000
# steps, batch 32, lr 2e-3 then 1.5e-3 x 3 then 1e-3), so each stage's checkpoint compares with the tiny-ce
# stage that ended at the same step (held-out 0.049, 0.318, 0.492, 0.678, 0.780).
#   OUT=/work/scratch/subword bash analyses/train_subword.sh                 # digits split (one per token)
#   DIGITS=group3 OUT=/work/scratch/subword bash analyses/train_subword.sh   # digits grouped 1-3, LLaMA-3 style
#   FT=1 TRAIN=0 OUT=/work/scratch/subword bash analyses/train_subword.sh    # then the six fine-tunes of ce-s5
#   FT=1 FT_FROM=ce-s4 TRAIN=0 OUT=...                                       # ... of ce-s4 (the shipped subword-*)
#   SHIP=1 TRAIN=0 OUT=...  (after analyses/subword_findings.sh)             # copy them into the package
#   EVAL_N=1000 TRAIN=0 OUT=... bash analyses/train_subword.sh               # score the finished checkpoints only
# Both base checkpoints are built every time (a few seconds, skipped once there); the training runs for DIGITS.
# Each stage resumes from OUT/DIGITS/ce-sK/last.pt if killed (rerun the same command) and is a no-op once
# finished; a stage starts from the exact weights of the one before, with a fresh warm-up + cosine schedule (to
# 10% of the peak, so every stage ends annealed: an evaluable checkpoint) and new batches (new seed).
# Sizes: d_model 128, 4 blocks, 4 heads, MLP 384 (build_real_small.py's model). split: 217-token tokenizer,
# 256 embedding rows, 0.92M parameters (the same base, byte for byte, as build_real_small.py's); group3: 1317
# tokens (every 1-3 digit string is one), 1344 rows, 1.20M parameters.
# Measured, one torch thread on 2 CPU cores shared with other work: split 0.21-0.3 s per step (batch 32).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/subword}
DIGITS=${DIGITS:-split}
EVAL_N=${EVAL_N:-0}
# This checkout's package (python -m from the repository root), whichever mdlm-probe is installed.
mdlm-probe() { python -m mdlm_probe "$@"; }

if [ "${TRAIN:-1}" = 1 ]; then
  # 0. the two base checkpoints (random weights; built into a temporary folder, so a killed build redoes itself)
  for d in split group3; do
    if [ ! -d "$OUT/$d/base" ]; then
      rm -rf "$OUT/$d/base.tmp"
      python analyses/build_subword.py "$OUT/$d/base.tmp" --digits "$d" --d-model 128 --n-layers 4 --n-heads 4 \
        --mlp 384 --seed 0
      mv "$OUT/$d/base.tmp" "$OUT/$d/base"
    fi
  done

  # 1. CE pretraining of every weight (LLaDA's SFT objective) in five stages, one torch thread
  R=$OUT/$DIGITS
  STAGE=(--objective ce --data synthetic --batch-size 32 --save-every 100 --eval-n 0 --threads 1)
  mdlm-probe train --init "$R/base" --steps 3500 --lr 2e-3 --warmup 200 --seed 0 "${STAGE[@]}" --name "$DIGITS-ce-s1" --out "$R/ce-s1"
  mdlm-probe train --init "$R/ce-s1" --steps 6500 --lr 1.5e-3 --warmup 100 --seed 1 "${STAGE[@]}" --name "$DIGITS-ce-s2" --out "$R/ce-s2"
  mdlm-probe train --init "$R/ce-s2" --steps 6000 --lr 1.5e-3 --warmup 100 --seed 2 "${STAGE[@]}" --name "$DIGITS-ce-s3" --out "$R/ce-s3"
  mdlm-probe train --init "$R/ce-s3" --steps 10000 --lr 1.5e-3 --warmup 100 --seed 3 "${STAGE[@]}" --name "$DIGITS-ce-s4" --out "$R/ce-s4"
  mdlm-probe train --init "$R/ce-s4" --steps 6000 --lr 1e-3 --warmup 100 --seed 4 "${STAGE[@]}" --name "$DIGITS-ce-s5" --out "$R/ce-s5"
fi

# 2. fine-tunes of the last CE stage (FT=1, after the chain; FT_FROM=ce-s4 starts them from stage 4): CE, CTC+CE with the standard collapse and with
#    the surface map, full and LoRA, with the same data, steps, batch and seed (tiny-ce-ft/tiny-ctc/
#    tiny-ctc-surface's flags for the full ones, train_real_small.sh's for LoRA). Run side by side.
if [ "${FT:-0}" = 1 ]; then
  R=$OUT/$DIGITS
  FROM=${FT_FROM:-ce-s5}  # the CE stage the fine-tunes start from
  [ -f "$R/$FROM/mdlm_probe.json" ] && [ ! -f "$R/$FROM/last.pt" ] || { echo "$FROM is not finished: run the chain first" >&2; exit 2; }
  COMMON=(--init "$R/$FROM" --data synthetic --batch-size 32 --seed 0 --save-every 100 --eval-n 0 --threads 1)
  FULL=(--steps ${FT_STEPS:-2000} --lr 1e-3 --warmup 50)
  LORA=(--lora --lora-r 16 --lora-alpha 32 --steps ${LORA_STEPS:-400} --lr 2e-3 --warmup 20)
  CTC=(--objective ctc+ce --ctc-weight 1.0 --slack-gaps 0)
  mdlm-probe train "${COMMON[@]}" "${FULL[@]}" --objective ce --name "$DIGITS-ce-ft" --out "$R/$DIGITS-ce-ft" &
  mdlm-probe train "${COMMON[@]}" "${FULL[@]}" "${CTC[@]}" --collapse ctc --name "$DIGITS-ctc" --out "$R/$DIGITS-ctc" &
  mdlm-probe train "${COMMON[@]}" "${FULL[@]}" "${CTC[@]}" --collapse surface --name "$DIGITS-ctc-surface" --out "$R/$DIGITS-ctc-surface" &
  wait
  mdlm-probe train "${COMMON[@]}" "${LORA[@]}" --objective ce --name "$DIGITS-ce-lora" --out "$R/$DIGITS-ce-lora" &
  mdlm-probe train "${COMMON[@]}" "${LORA[@]}" "${CTC[@]}" --collapse ctc --name "$DIGITS-ctc-lora" --out "$R/$DIGITS-ctc-lora" &
  mdlm-probe train "${COMMON[@]}" "${LORA[@]}" "${CTC[@]}" --collapse surface --name "$DIGITS-ctc-surface-lora" --out "$R/$DIGITS-ctc-surface-lora" &
  wait
fi

# 3. ship (SHIP=1): the three full fine-tunes into mdlm_probe/checkpoints/subword-{ce-ft,ctc,ctc-surface} (digits
#    split; about 3.7 MB each in float32) or subword-g3-... (DIGITS=group3; about 4.9 MB each), the sidecar
#    renamed and its held-out accuracy taken from the findings' eval run (analyses/subword_findings.sh:
#    OUT/DIGITS/findings-full/eval/synthetic-DIGITS-NAME)
if [ "${SHIP:-0}" = 1 ]; then
  PREFIX=$([ "$DIGITS" = split ] && echo subword || echo subword-g3)
  for n in ce-ft ctc ctc-surface; do
    python - "$OUT/$DIGITS/$DIGITS-$n" "mdlm_probe/checkpoints/$PREFIX-$n" \
      "$OUT/$DIGITS/findings-full/eval/synthetic-$DIGITS-$n/summary.json" <<'PY'
import json, shutil, sys
from pathlib import Path
src, dst, summary = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
shutil.rmtree(dst, ignore_errors=True)
dst.mkdir(parents=True)
for f in src.iterdir():
    if f.name not in ("last.pt", "last.tmp", "train_log.jsonl"):
        shutil.copy(f, dst / f.name)
side = json.loads((dst / "mdlm_probe.json").read_text())
s = json.loads(summary.read_text())
side["trained_as"], side["name"] = side["name"], dst.name
side["sampler"] = side.get("sampler") or {k: v for k, v in s["sampler"].items() if k != "batch_size"}  # the eval's
side["heldout"] = {"benchmark": "synthetic", "n": s["n"], "accuracy": s["accuracy"], "sampler": s.get("sampler"),
                   "source": f"eval run {summary.parent.name} (analyses/subword_findings.sh)"}
(dst / "mdlm_probe.json").write_text(json.dumps(side, indent=1) + "\n")
print(dst, side["heldout"]["accuracy"])
PY
  done
fi

# 4. optional: held-out accuracy of every finished stage (EVAL_N problems; a run folder resumes if killed)
if [ "$EVAL_N" -gt 0 ]; then
  EVAL=(--no-chat --gen-length 48 --steps 48 --block-length 48 --batch-size 50 --threads 1)
  for s in ce-s1 ce-s2 ce-s3 ce-s4 ce-s5 $DIGITS-ce-ft $DIGITS-ctc $DIGITS-ctc-surface $DIGITS-ce-lora $DIGITS-ctc-lora $DIGITS-ctc-surface-lora; do
    c=$OUT/$DIGITS/$s
    [ -f "$c/mdlm_probe.json" ] && [ ! -f "$c/last.pt" ] || continue  # not finished
    mdlm-probe eval synthetic --ckpt "$c" --limit "$EVAL_N" "${EVAL[@]}" --out "$OUT/$DIGITS/eval-$s-n$EVAL_N"
  done
fi
