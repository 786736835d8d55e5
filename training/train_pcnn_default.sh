#!/usr/bin/env bash
# Train the default PCNN_1 model from scratch, as models/pcnn-small-v1.md
# describes: a venv with torch 2.11.0 under ~/.cache, then two
# quantisation-aware stages (one torch thread): 30 minutes minimising the
# total code length, then 25 minutes from there minimising the mean over
# crops of log2(bits/pixel), which weighs relative gains on smooth crops
# like those on noisy crops (as a mean of per-frame ratios does).
# Data: ../shared/corpus/train and synth.py frames, never test/.
#
#     training/train_pcnn_default.sh [OUT.pcnm]     # default: models/pcnn-small-v1.pcnm
#
# The learning curves are written beside OUT as OUT.stage1.log.json and
# OUT.stage2.log.json. The budget is
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
tmp="$(mktemp -d)"
common=(--hidden 32 --mixture 2 --batch 16 --crop 48 --synth 6 --threads 1)
OMP_NUM_THREADS=1 "$venv/bin/python" training/pcnn_train.py "${common[@]}" --minutes 30 \
    --out "$tmp/stage1.pcnm" --log "${out%.pcnm}.stage1.log.json"
OMP_NUM_THREADS=1 "$venv/bin/python" training/pcnn_train.py "${common[@]}" --minutes 25 --lr 1e-3 \
    --loss logbpp --init "$tmp/stage1.pcnm" --out "$out" --log "${out%.pcnm}.stage2.log.json"
rm -rf "$tmp"
sha256sum "$out"
