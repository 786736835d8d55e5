#!/usr/bin/env bash
# System and Python packages the build and tests need: cmake (libjxl), Debian's fpack,
# funpack, fitsverify and libcfitsio (-dev: the cfitsio-shim tests compile C programs
# against it with gcc), and astropy from pip. Idempotent.
set -euo pipefail
need_apt=()
command -v fpack >/dev/null || need_apt+=(libcfitsio-bin)
command -v fitsverify >/dev/null || need_apt+=(fitsverify)
[ -f /usr/include/fitsio.h ] || need_apt+=(libcfitsio-dev)
command -v gcc >/dev/null || need_apt+=(gcc)      # cfitsio-shim tests compile C
command -v cmake >/dev/null || need_apt+=(cmake)   # builds libjxl (jpegxl-src)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# wheel: scripts/test-python.sh builds the Python package's wheel without
# build isolation (no download), which needs setuptools and wheel.
if ! python3 -c "import wheel" 2>/dev/null; then
    python3 -m pip install --quiet --cache-dir "$HOME/.cache/pip" wheel
fi
# python3 -m venv needs ensurepip (Debian's system python: python3-venv).
if ! python3 -c "import ensurepip" 2>/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
if ! python3 -c "import astropy, numpy, imagecodecs" 2>/dev/null; then
    python3 -m pip install --quiet --cache-dir "$HOME/.cache/pip" "astropy==8.0.2" numpy "imagecodecs==2026.3.6"
fi
# matplotlib: the figures of bench/report.py (issue 9's benchmark report).
if ! python3 -c "import matplotlib" 2>/dev/null; then
    python3 -m pip install --quiet --cache-dir "$HOME/.cache/pip" matplotlib
fi
