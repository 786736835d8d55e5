#!/usr/bin/env python3
"""IDF_1 benchmark: real bytes on disk next to RICE_1 and JXL_1, and the model's
own likelihood estimate, per frame of ../shared/corpus/test and train; then the
speed of encode and decode on a 4144x2068 synth.py frame.

    python3 bench/idf_bench.py [--bin DIR] [--corpus DIR] [--no-speed]

Ratio = bytes of the original image data / bytes of the compressed data
units on disk (tables + heaps of the compressed image HDUs; headers excluded,
as in the AstroCompress paper's ratios of pixel data). "file" columns give
whole-file ratios, headers and 2880-byte padding included. "IDF est." is the ratio the model's ideal code
length would give (same tiles, same probabilities, no coder overhead);
"overhead" is the real IDF_1 heap against that estimate. Every IDF_1 file is
decoded with funpack-ng and compared with the source before it counts.
fpack-ng's encode time includes its verification (every tile is decoded
again and compared before the file is written).
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from astropy.io import fits

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, **kw):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    return time.perf_counter() - t


def pixels(path):
    with fits.open(path, do_not_scale_image_data=True) as h:
        return [np.asarray(x.data).copy() for x in h if x.is_image and x.data is not None]


def heap_bytes(path):
    with fits.open(path, disable_image_compression=True) as h:
        return sum(x.header.get("PCOUNT", 0) + x.header["NAXIS1"] * x.header["NAXIS2"]
                   for x in h[1:] if x.header.get("ZCMPTYPE", "").startswith("IDF"))


def data_bytes(path):
    """Bytes of the data units of the image HDUs (compressed tables count as
    images): headers excluded."""
    with fits.open(path, disable_image_compression=True, do_not_scale_image_data=True) as h:
        total = 0
        for x in h:
            if x.header.get("ZIMAGE"):
                total += x.header["NAXIS1"] * x.header["NAXIS2"] + x.header.get("PCOUNT", 0)
            elif x.is_image and x.data is not None:
                total += x.data.nbytes
        return total


def estimate(estimator, path):
    out = subprocess.run([estimator, "idf", path], check=True, capture_output=True, text=True).stdout
    return sum(float(line.split()[3]) for line in out.splitlines() if line.startswith("HDU"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/fpack-ng/target"))
    ap.add_argument("--bin", default=os.path.join(target, "release"))
    ap.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "corpus"))
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--threads", default="2")
    args = ap.parse_args()
    fpack = os.path.join(args.bin, "fpack-ng")
    funpack = os.path.join(args.bin, "funpack-ng")
    estimator = os.path.join(args.bin, "examples", "neural_estimate")
    for b in (fpack, funpack, estimator):
        if not os.path.exists(b):
            sys.exit(f"{b} missing: cargo build --release -p fpack-ng && cargo build --release -p fpackng --example neural_estimate")
    work = tempfile.mkdtemp(prefix="idf-bench-")
    for split in ("test", "train"):
        files = sorted(glob.glob(os.path.join(args.corpus, split, "*.fits")))
        print(f"\n### corpus/{split}\n")
        print("| frame | Mpix | RICE_1 | JXL_1 e7 | IDF_1 | IDF est. | overhead | IDF bits/pixel | file RICE/JXL/IDF | IDF enc s | IDF dec s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        sums = {"rice": [], "jxl": [], "idf": [], "est": []}
        bpp = []
        for f in files:
            name = os.path.basename(f)[:-5]
            raw = data_bytes(f)
            out, fsize = {}, {}
            for alg, flags in (("rice", ["-r"]), ("jxl", ["--jxl"]), ("idf", ["-n", "idf"])):
                dst = os.path.join(work, f"{name}.{alg}.fz")
                out[alg + "_t"] = run([fpack, "--threads", args.threads] + flags + ["-O", dst, f])
                out[alg] = data_bytes(dst)
                fsize[alg] = os.path.getsize(f) / os.path.getsize(dst)
            back = os.path.join(work, f"{name}.back.fits")
            out["dec_t"] = run([funpack, "--threads", args.threads, "-O", back, os.path.join(work, f"{name}.idf.fz")])
            a, b = pixels(f), pixels(back)
            if len(a) != len(b) or any(x.dtype != y.dtype or not np.array_equal(x, y) for x, y in zip(a, b)):
                sys.exit(f"{name}: IDF_1 round trip differs")
            heap = heap_bytes(os.path.join(work, f"{name}.idf.fz"))
            est = estimate(estimator, f)
            mpix = sum(x.size for x in a) / 1e6
            r = {k: raw / out[k] for k in ("rice", "jxl", "idf")}
            r_est = raw / (out["idf"] - heap + est)
            for k in r:
                sums[k].append(r[k])
            sums["est"].append(r_est)
            print(f"| {name} | {mpix:.2f} | {r['rice']:.3f} | {r['jxl']:.3f} | {r['idf']:.3f} | {r_est:.3f} | "
                  f"{100 * (heap / est - 1):+.2f}% | {8 * heap / (mpix * 1e6):.3f} | "
                  f"{fsize['rice']:.2f}/{fsize['jxl']:.2f}/{fsize['idf']:.2f} | {out['idf_t']:.2f} | {out['dec_t']:.2f} |")
            bpp.append((8 * heap, mpix * 1e6))
        m = {k: sum(v) / len(v) for k, v in sums.items()}
        pooled = sum(b for b, _ in bpp) / sum(p for _, p in bpp)
        print(f"| **mean** | | **{m['rice']:.3f}** | **{m['jxl']:.3f}** | **{m['idf']:.3f}** | {m['est']:.3f} | | "
              f"{pooled:.3f} (all pixels) | | | |")
    if not args.no_speed:
        sys.path.insert(0, os.path.join(args.corpus, "..", "tools"))
        frame = os.path.join(work, "synth_4144x2068.fits")
        subprocess.run([sys.executable, os.path.join(args.corpus, "..", "tools", "synth.py"), "--seed", "7",
                        "--ny", "2068", "--nx", "4112", "--overscan", "32", "--out", frame],
                       check=True, stdout=subprocess.DEVNULL)
        print("\n### speed, synth.py 4144x2068 frame\n")
        print("| codec | threads | encode s (incl. verification) | decode s | ratio |")
        print("|---|---|---|---|---|")
        for alg, flags in (("RICE_1", ["-r"]), ("JXL_1", ["--jxl"]), ("IDF_1", ["-n", "idf"])):
            for th in ("1", "2"):
                dst = os.path.join(work, f"s{alg}{th}.fz")
                te = run([fpack, "--threads", th] + flags + ["-O", dst, frame])
                back = dst + ".back.fits"
                td = run([funpack, "--threads", th, "-O", back, dst])
                print(f"| {alg} | {th} | {te:.2f} | {td:.2f} | {os.path.getsize(frame) / os.path.getsize(dst):.3f} |")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
