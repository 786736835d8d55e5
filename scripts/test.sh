#!/usr/bin/env bash
# The test command (CI runs exactly this): install what the interop tests
# compare against, then run every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fpack-ng/target}"
bash scripts/install-deps.sh
cargo test --workspace --no-fail-fast
