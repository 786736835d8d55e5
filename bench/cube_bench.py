#!/usr/bin/env python3
"""CUBE_1 benchmark: inter-plane residual coding of ramps and cubes (docs/cube.md).

For the real JWST FGS ramp in shared/corpus/cubes and for ramps made by
shared/tools/synth_ramp.py (several seeds and sizes, 4-D with several
integrations), prints one table of compression ratios, pixel bytes over
compressed table bytes (headers excluded), for:

    fpack Rice     Debian fpack, default (RICE_1, row tiles, plane by plane)
    ng Rice        fpack-ng --cube off            (RICE_1 plane by plane)
    ng CUBE+Rice   fpack-ng --cube on             (CUBE_1, inner RICE_1)
    ng JXL         fpack-ng --jxl --cube off      (JXL_1 plane by plane)
    ng CUBE+JXL    fpack-ng --jxl --cube on       (CUBE_1, inner JXL_1)

and the gains: best CUBE_1 over fpack Rice, CUBE+Rice over ng Rice, CUBE+JXL
over ng JXL (same inner codec plane by plane). Every fpack-ng output is
decoded with funpack-ng and compared with the source pixels; a mismatch
stops the benchmark. Times are wall seconds of one fpack-ng run (which
includes its own decode-and-compare of every tile).

Usage:
    python3 bench/cube_bench.py              # builds release binaries first
    python3 bench/cube_bench.py --no-build   # uses $CARGO_TARGET_DIR/release
    python3 bench/cube_bench.py --quick      # JWST and two small ramps
    python3 bench/cube_bench.py --bins DIR   # fpack-ng/funpack-ng from DIR
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (find_bins: one way of building)

ROOT = bench.ROOT
# (seed, nints, ngroups, ny, nx)
RAMPS = [
    (1, 1, 10, 512, 512),
    (2, 2, 6, 512, 512),
    (3, 3, 4, 256, 256),
    (4, 1, 8, 1024, 1024),
]
QUICK_RAMPS = [(1, 1, 10, 256, 256), (2, 2, 4, 128, 128)]

MODES = [
    ("ng Rice", ["--cube", "off"]),
    ("ng CUBE+Rice", ["--cube", "on"]),
    ("ng JXL", ["--jxl", "--cube", "off"]),
    ("ng CUBE+JXL", ["--jxl", "--cube", "on"]),
]


def shared_dir():
    for d in [ROOT, *ROOT.parents]:
        if (d / "shared/corpus").is_dir():
            return d / "shared"
    sys.exit("no shared/ found above the repository")


def stored_images(path):
    with fits.open(path, do_not_scale_image_data=True, memmap=False) as hdul:
        return [np.array(h.data) for h in hdul
                if h.is_image and h.header.get("NAXIS", 0) > 0 and h.data is not None]


def table_ratio(fz):
    """Pixel bytes / table bytes over the compressed image HDUs, and their ZCMPTYPEs."""
    raw = data = 0
    kinds = []
    with fits.open(fz, disable_image_compression=True) as hdul:
        for h in hdul:
            hd = h.header
            if not hd.get("ZIMAGE"):
                continue
            n = hd["ZNAXIS"]
            raw += int(np.prod([hd[f"ZNAXIS{i}"] for i in range(1, n + 1)])) * abs(hd["ZBITPIX"]) // 8
            data += hd["NAXIS1"] * hd["NAXIS2"] + hd.get("PCOUNT", 0)
            kinds.append(hd["ZCMPTYPE"].strip())
    return raw / max(data, 1), kinds


def run(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bins", help="directory holding fpack-ng and funpack-ng (implies --no-build)")
    args = ap.parse_args()
    if args.bins:
        fpackng, funpackng = Path(args.bins) / "fpack-ng", Path(args.bins) / "funpack-ng"
    elif args.no_build:
        target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/fpack-ng/target")) / "release"
        fpackng, funpackng = target / "fpack-ng", target / "funpack-ng"
    else:
        fpackng, funpackng = bench.find_bins()
    fpack = shutil.which("fpack")
    shared = shared_dir()
    tmp = Path(tempfile.mkdtemp(prefix="cube-bench-"))
    try:
        inputs = [("JWST FGS (real)", shared / "corpus/cubes/jwst_fgs_acq1_jw01019001001_uncal.fits")]
        for seed, nints, ngroups, ny, nx in (QUICK_RAMPS if args.quick else RAMPS):
            p = tmp / f"ramp{seed}.fits"
            subprocess.run([sys.executable, str(shared / "tools/synth_ramp.py"), "--seed", str(seed),
                            "--nints", str(nints), "--ngroups", str(ngroups), "--ny", str(ny),
                            "--nx", str(nx), "--out", str(p)], check=True, stdout=subprocess.DEVNULL)
            inputs.append((f"synth_ramp s{seed}", p))
        cols = ["fpack Rice"] + [m for m, _ in MODES]
        print(f"{'cube':<18} {'shape (numpy)':<20}" + "".join(f"{c:>13}" for c in cols)
              + f"{'best/fpack':>11}{'CUBE/Rice':>10}{'CUBE/JXL':>10}")
        times = []
        for label, path in inputs:
            src = stored_images(path)
            shape = "x".join(str(s) for s in src[0].shape)
            ratios = {}
            if fpack:
                out = tmp / "fpack.fz"
                out.unlink(missing_ok=True)
                run([fpack, "-O", str(out), str(path)])
                ratios["fpack Rice"], _ = table_ratio(out)
            for mode, flags in MODES:
                out, back = tmp / "ng.fz", tmp / "ng.fits"
                out.unlink(missing_ok=True)
                back.unlink(missing_ok=True)
                t = run([str(fpackng), *flags, "-O", str(out), str(path)])
                ratios[mode], kinds = table_ratio(out)
                want = "CUBE_1" if "on" in flags else ("JXL_1" if "--jxl" in flags else "RICE_1")
                if kinds != [want]:
                    sys.exit(f"{label} {mode}: wrote {kinds}, expected {want}")
                run([str(funpackng), "-O", str(back), str(out)])
                got = stored_images(back)
                if len(got) != len(src) or any(not np.array_equal(a, b) for a, b in zip(src, got)):
                    sys.exit(f"{label} {mode}: funpack-ng did not restore the pixels exactly")
                times.append((label, mode, t))
            f = ratios.get("fpack Rice")
            best = max(ratios["ng CUBE+Rice"], ratios["ng CUBE+JXL"])
            print(f"{label:<18} {shape:<20}"
                  + "".join(f"{ratios[c]:>13.3f}" if c in ratios else f"{'-':>13}" for c in cols)
                  + (f"{best / f:>10.2f}x" if f else f"{'-':>11}")
                  + f"{ratios['ng CUBE+Rice'] / ratios['ng Rice']:>9.2f}x"
                  + f"{ratios['ng CUBE+JXL'] / ratios['ng JXL']:>9.2f}x")
        print("\nfpack-ng wall seconds per run (compress + its own verification):")
        for label in dict.fromkeys(t[0] for t in times):
            print(f"  {label:<18}" + "".join(f"  {m}: {t:.2f}" for l, m, t in times if l == label))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
