#!/usr/bin/env bash
# The test command (CI runs exactly this): install what the interop tests
# compare against, check formatting, run every test of the workspace and
# of the Python package, then clippy with warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fpack-ng/target}"
bash scripts/install-deps.sh
# Gates: formatting first (seconds), lints after the tests (the test build is
# reused, so they add little), both failing the run.
cargo fmt --all --check
cargo test --workspace --no-fail-fast
# The Python package (python/) in one venv per astropy line, with the
# library and funpack-ng cargo test just built.
bash scripts/test-python.sh
# The toy codec (src/codec/toy.rs) through the whole command line: proves a
# codec needs nothing outside its module and its registry line. After the
# Python tests, which use the build without it.
cargo test -p fpack-ng --features test-codec --test toy_codec
cargo clippy --workspace --all-targets --quiet -- -D warnings
