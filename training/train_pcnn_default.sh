#!/usr/bin/env bash
# Train the default PCNN_1 model from scratch, as models/pcnn-small-v1.md
# describes: a venv with torch 2.11.0 under ~/.cache, then one
# quantisation-aware run (30 minutes of wall-clock budget, one torch thread).
# Data: ../shared/corpus/train and synth.py frames, never test/.
#
#     training/train_pcnn_default.sh [OUT.pcnm]     # default: models/pcnn-small-v1.pcnm
#
# The learning curve is written beside OUT as OUT.log.json. The budget is
# wall-clock, so weights (and their SHA-256) depend on the machine's speed and
# load; the shipped file's hash is in the model card.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-models/pcnn-small-v1.pcnm}"
venv="$HOME/.cache/fpack-ng/train-venv"
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    python3 -m venv --system-site-packages "$venv"
    "$venv/bin/pip" install -q torch==2.11.0
fi
OMP_NUM_THREADS=1 "$venv/bin/python" training/pcnn_train.py --hidden 32 --mixture 2 --batch 16 --crop 48 \
    --synth 6 --threads 1 --minutes "${PCNN_MINUTES:-30}" --out "$out" --log "${out%.pcnm}.log.json"
sha256sum "$out"
