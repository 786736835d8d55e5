#!/usr/bin/env bash
# Train the default IDF_1 model from scratch, as models/idf16-small-v1.md
# describes: a venv with torch 2.11.0 under ~/.cache, then two
# quantisation-aware stages (34 + 20 minutes of wall-clock budget, one torch
# thread). Data: ../shared/corpus/train and synth.py frames, never test/.
#
#     training/train_default.sh [OUT.idfm]      # default: models/idf16-small-v1.idfm
#
# The learning curves are written beside OUT as OUT.stage1.json / .stage2.json.
# The budget is wall-clock, so weights (and their SHA-256) depend on the
# machine's speed and load; the shipped file's hash is in the model card.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-models/idf16-small-v1.idfm}"
venv="$HOME/.cache/fpack-ng/train-venv"
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    python3 -m venv --system-site-packages "$venv"
    "$venv/bin/pip" install -q torch==2.11.0
fi
py="$venv/bin/python"
tmp="$(mktemp -d)"
common=(--variant 16 --hidden 16 --batch 24 --crop 64 --synth 6 --threads 1)
OMP_NUM_THREADS=1 "$py" training/idf_train.py "${common[@]}" --minutes 34 \
    --out "$tmp/stage1.idfm" --log "$out.stage1.json" --state "$tmp/stage1.pt"
OMP_NUM_THREADS=1 "$py" training/idf_train.py "${common[@]}" --minutes 20 --lr 1e-3 --seed 2 \
    --init "$tmp/stage1.pt" --out "$out" --log "$out.stage2.json"
rm -rf "$tmp"
sha256sum "$out"
