#!/usr/bin/env python3
"""Plain FITS frames for the recompress tests (tests/cli/recompress.rs).

usage: recompress_tree.py SYNTH_PY OUTDIR COUNT SEED

Writes COUNT small raw CCD frames made by ../shared/tools/synth.py (shapes
from 64x64 to 256x256, uint16 as BITPIX=16/BZERO=32768) as
OUTDIR/frame_NNN.fits, and two frames of full-range uniform 16-bit noise
(OUTDIR/noise_N.fits) that no lossless codec can shrink. One process for
all frames: starting Python per frame would dominate the test's time.
"""
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits


def main():
    synth_py, out, count, seed = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    sys.path.insert(0, str(Path(synth_py).parent))
    import synth

    out.mkdir(parents=True, exist_ok=True)
    shapes = [(96, 96), (96, 80), (128, 128), (160, 120), (200, 176), (256, 256), (80, 240)]
    for i in range(count):
        ny, nx = shapes[i % len(shapes)]
        img, _ = synth.make_frame(
            seed=seed + i, ny=ny, nx=nx - 8, overscan=8, nstars=8, ngal=2, hot=5, nsat=0
        )
        hdu = fits.PrimaryHDU(img)
        hdu.header["OBJECT"] = (f"synthetic {i}", "recompress test frame")
        hdu.writeto(out / f"frame_{i:03d}.fits", overwrite=True)
    rng = np.random.default_rng(seed)
    for i in range(2):
        noise = rng.integers(0, 65536, size=(64, 64), dtype=np.uint16)
        fits.PrimaryHDU(noise).writeto(out / f"noise_{i}.fits", overwrite=True)


if __name__ == "__main__":
    main()
