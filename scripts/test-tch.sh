#!/usr/bin/env bash
# Tests of the libtorch (tch) engine of the neural codecs: builds with
# `--features tch` and runs tests/tch_engine.rs plus the CLI's --device tests.
# Not part of scripts/test.sh: CI builds without libtorch.
#
# libtorch comes from PyTorch 2.11.0 (the version tch 0.24 binds) in a venv:
# $TORCH_VENV if set, else $HOME/.cache/fpack-ng/train-venv when it has
# torch 2.11.0, else $HOME/.cache/fpack-ng/torch-venv, created here
# (pip install torch==2.11.0: the CUDA build, ~2.7 GB; it runs on the CPU too).
# On a machine with a GPU the test `cuda_and_cpu_cross_decode` runs there;
# without one it prints a note and passes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fpack-ng/target}"
TORCH_VERSION=2.11.0

has_torch() {
    [ -x "$1/bin/python" ] && "$1/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null
}

venv="${TORCH_VENV:-}"
if [ -z "$venv" ]; then
    for v in "$HOME/.cache/fpack-ng/train-venv" "$HOME/.cache/fpack-ng/torch-venv"; do
        if has_torch "$v"; then venv="$v"; break; fi
    done
fi
if [ -z "$venv" ]; then
    venv="$HOME/.cache/fpack-ng/torch-venv"
    echo "installing torch==$TORCH_VERSION into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "torch==$TORCH_VERSION"
fi
has_torch "$venv" || { echo "$venv: no torch $TORCH_VERSION" >&2; exit 1; }

# torch-sys finds libtorch through this python (include dirs, lib dir, ABI).
export PATH="$venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
unset LIBTORCH
echo "libtorch: $("$venv/bin/python" -c 'import torch, os; print(torch.__version__, os.path.dirname(torch.__file__))')" >&2

cargo test -p fpackng --features tch --test tch_engine -- --nocapture "$@"
cargo test -p fpack-ng --features tch --test device "$@"
