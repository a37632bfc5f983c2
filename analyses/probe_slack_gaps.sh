#!/usr/bin/env bash
# How the CE canvas of CTC+CE fine-tuning affects accuracy: 300 fine-tuning steps from a CE checkpoint per
# (collapse, --slack-gaps) cell, then held-out accuracy on the first 300 synthetic problems (T = 0).
#   bash analyses/probe_slack_gaps.sh [INIT]     # INIT defaults to tiny-ce; runs go to runs/probe_slack_gaps/
# The README's table was measured with INIT = the earlier tiny-ce (31.8% held-out), one thread per run.
set -euo pipefail
cd "$(dirname "$0")/.."
INIT=${1:-tiny-ce}
OUT=${OUT:-runs/probe_slack_gaps}
for collapse in surface ctc; do
  for gaps in 0 2 -1; do
    mdlm-probe train --init "$INIT" --objective ctc+ce --collapse $collapse --slack-gaps $gaps --steps 300 \
      --lr 1e-3 --warmup 50 --data synthetic --batch-size 32 --seed 0 --save-every 100 --threads 1 --eval-n 300 \
      --out "$OUT/$collapse-g$gaps" | tail -1
  done
done
