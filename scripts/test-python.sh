#!/usr/bin/env bash
# Tests of the Python package (python/): builds its wheel once, then in one
# virtual environment per astropy line (6.0.x with numpy 1.26, 6.1.x, the
# newest 7.x, the newest 8.x with zarr 3 and numcodecs), made afresh under
# ~/.cache/fpack-ng/venvs on every run (FPACKNG_KEEP_VENVS=1 reuses them), pip-installs the
# wheel (dependencies allowed), checks that astropy, numpy, numcodecs and
# zarr kept their versions, and runs pytest. Called by scripts/test.sh after cargo test,
# whose build of libfpackng_shim.so and funpack-ng it reuses.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fpack-ng/target}"
start=$SECONDS

lib="${FPACKNG_SHIM_LIB:-$CARGO_TARGET_DIR/debug/libfpackng_shim.so}"
[ -f "$lib" ] || cargo build --quiet -p cfitsio-shim
cargo build --quiet -p cfitsio-shim -p fpack-ng   # no-op after cargo test --workspace
funpack_ng="$CARGO_TARGET_DIR/debug/funpack-ng"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Built from a copy: pip must not leave build/ or *.egg-info in the checkout.
cp -r python "$work/src"
rm -rf "$work/src/tests"
# The test build carries debug info (~90 MB); the wheel does not need it.
cp "$lib" "$work/$(basename "$lib")"
strip --strip-debug "$work/$(basename "$lib")"
FPACKNG_SHIM_LIB="$work/$(basename "$lib")" python3 -m pip wheel --quiet --no-deps --no-build-isolation \
    --cache-dir "$HOME/.cache/pip" -w "$work/wheel" "$work/src"
wheel=$(ls "$work"/wheel/fpack_ng-*.whl)
echo "wheel: $(basename "$wheel") ($((SECONDS - start)) s)"

venvs="$HOME/.cache/fpack-ng/venvs"
mkdir -p "$venvs"
# name | packages of a new venv | test files
lines=(
    "astropy-6.0|astropy==6.0.* numpy<2 pytest|test_api.py test_astropy.py"
    "astropy-6.1|astropy==6.1.* pytest|test_astropy.py"
    "astropy-7|astropy>=7,<8 pytest|test_astropy.py"
    "astropy-8|astropy>=8,<9 zarr>=3 numcodecs pytest|test_api.py test_astropy.py test_zarr.py"
)
for line in "${lines[@]}"; do
    IFS='|' read -r name packages tests <<<"$line"
    venv="$venvs/$name"
    # A fresh venv every run (packages come from the pip cache, so it costs
    # seconds); FPACKNG_KEEP_VENVS=1 reuses the last one, for development.
    if [ "${FPACKNG_KEEP_VENVS:-0}" != 1 ] || [ ! -x "$venv/bin/python" ] \
        || ! "$venv/bin/python" -c "import astropy, pytest" 2>/dev/null; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        # shellcheck disable=SC2086
        "$venv/bin/pip" install --quiet --cache-dir "$HOME/.cache/pip" $packages
    fi
    # The packages the wheel must leave alone: their versions before and after.
    versions='import importlib.metadata as m
for p in ("astropy", "numpy", "numcodecs", "zarr"):
    try: print(p, m.version(p), end=" ")
    except m.PackageNotFoundError: pass'
    before=$("$venv/bin/python" -c "$versions")
    "$venv/bin/pip" uninstall --quiet --yes fpack-ng fpackng-astropy >/dev/null 2>&1 || true
    "$venv/bin/pip" install --quiet --cache-dir "$HOME/.cache/pip" "$wheel"
    after=$("$venv/bin/python" -c "$versions")
    if [ "$before" != "$after" ]; then
        echo "FAIL $name: installing the wheel changed '$before' into '$after'" >&2
        exit 1
    fi
    echo "== $name: $after (unchanged by the install)"
    args=()
    for t in $tests; do args+=("python/tests/$t"); done
    FUNPACK_NG="$funpack_ng" "$venv/bin/python" -m pytest -q -p no:cacheprovider "${args[@]}"
done
echo "Python tests: $((SECONDS - start)) s"
