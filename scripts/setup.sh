#!/usr/bin/env bash
# Install everything fpack-ng needs on a fresh Debian 12 machine (Rust and
# Python 3 already present), build it, and run it on an embedded example.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fpack-ng/target}"

bash scripts/install-deps.sh

cargo build --release --workspace --quiet
bin="$CARGO_TARGET_DIR/release"
echo "Built: $bin/fpack-ng and $bin/funpack-ng"

# The Python package (python/: API, astropy plugin, numcodecs/zarr codecs)
# into a venv that sees the system's astropy and numpy, from the library
# just built (pip must not leave build/ in the checkout: built from a copy).
venv="$HOME/.cache/fpack-ng/venvs/setup"
[ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
pkg=$(mktemp -d)
cp -r python "$pkg/src"
FPACKNG_SHIM_LIB="$bin/libfpackng_shim.so" "$venv/bin/pip" install --quiet --no-build-isolation \
    --cache-dir "$HOME/.cache/pip" --force-reinstall --no-deps "$pkg/src"
rm -rf "$pkg"
echo "Installed the fpack-ng Python package into $venv"

# The embedded example: a raw uint16 CCD-like frame from fixtures/.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp fixtures/uint16.fits "$work/example.fits"
frame=../shared/corpus/train/saao1m_ste3_a8280271.fits
[ -f "$frame" ] && cp "$frame" "$work/saao_raw_frame.fits"
for f in "$work"/*.fits; do
  for codec in "-r" "--mix" "-n idf" "-n pixelcnn"; do
    echo "== fpack-ng $codec $(basename "$f")"
    # shellcheck disable=SC2086
    "$bin/fpack-ng" -v $codec -O "$f.fz" "$f"
    "$bin/funpack-ng" -v -O "$f.restored" "$f.fz"
    # astropy reads the .fz itself through the fpack-ng package's plugin.
    "$venv/bin/python" - "$f" "$f.restored" "$f.fz" <<'PY'
import sys, numpy as np
from astropy.io import fits
a = fits.getdata(sys.argv[1]); b = fits.getdata(sys.argv[2]); c = fits.getdata(sys.argv[3])
ok = np.array_equal(a, b) and a.dtype == b.dtype and np.array_equal(a, c)
print(f"  round trip (funpack-ng, astropy on the .fz) {'bit-exact' if ok else 'DIFFERENT'}: {a.shape} {a.dtype}")
PY
    rm -f "$f.fz" "$f.restored"
  done
done
