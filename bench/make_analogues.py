#!/usr/bin/env python3
"""Synthetic instrument analogues of the AstroCompress paper's datasets, made
with ../shared/tools/synth.py and synth_ramp.py, for bench/report.py:

- hst-acs-like: 4144x2068 raw frames, low space background, many cosmic rays
- sdss-like: 800x800, five bands (u g r i z) with different sky and noise
- keck-lris-like: 2248x2048, two amplifiers with their own bias and gain
- jwst-ramp-like: up-the-ramp cubes (NINTS x NGROUPS x 256 x 256)

    python3 bench/make_analogues.py OUTDIR

TELESCOP/INSTRUME name the analogue, so the report groups by dataset.
"""
import os
import subprocess
import sys

import numpy as np
from astropy.io import fits

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "shared", "tools")
sys.path.insert(0, TOOLS)
import synth  # noqa: E402


def write(path, img, telescop, instrume, **cards):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    hdu = fits.PrimaryHDU(img.astype(np.uint16))
    hdu.header["TELESCOP"] = telescop
    hdu.header["INSTRUME"] = instrume
    for k, v in cards.items():
        hdu.header[k] = v
    hdu.writeto(path, overwrite=True)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "analogues"
    for i, exptime in enumerate((30.0, 400.0)):
        img, _ = synth.make_frame(seed=100 + i, ny=2068, nx=4096, overscan=48, bias=2000.0, gain=2.0,
                                  rn=4.5, sky=3.0 + exptime * 0.05, dark=0.2, nstars=250, ngal=80,
                                  ncr=int(2.5 * exptime) + 200)
        write(f"{out}/hst-acs-like/acs{i}.fits", img, "HST-like (synth)", "ACS/WFC-like", EXPTIME=exptime)
    for i, (band, sky, rn) in enumerate((("u", 40, 6.0), ("g", 120, 5.0), ("r", 180, 5.0),
                                         ("i", 300, 5.5), ("z", 260, 6.5))):
        img, _ = synth.make_frame(seed=200 + i, ny=800, nx=800, overscan=0, bias=1000.0, gain=4.0,
                                  rn=rn, sky=float(sky), nstars=150, ngal=40)
        write(f"{out}/sdss-like/frame-{band}.fits", img, "SDSS-like (synth)", "imager", FILTER=band,
              EXPTIME=53.9)
    halves = []
    for amp, (bias, gain) in enumerate(((1100.0, 1.6), (1180.0, 1.7))):
        img, _ = synth.make_frame(seed=300 + amp, ny=2048, nx=1092, overscan=32, bias=bias, gain=gain,
                                  rn=4.2, sky=90.0, nstars=200, ngal=50)
        halves.append(img if amp == 0 else img[:, ::-1])
    write(f"{out}/keck-lris-like/lris.fits", np.hstack(halves), "Keck-like (synth)", "LRIS-like",
          EXPTIME=300.0)
    os.makedirs(f"{out}/jwst-ramp-like", exist_ok=True)
    for seed, (nints, ngroups) in ((1, (1, 10)), (2, (2, 6))):
        subprocess.run([sys.executable, os.path.join(TOOLS, "synth_ramp.py"), "--seed", str(seed),
                        "--nints", str(nints), "--ngroups", str(ngroups), "--ny", "256", "--nx", "256",
                        "--out", f"{out}/jwst-ramp-like/ramp{seed}.fits"], check=True,
                       stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
