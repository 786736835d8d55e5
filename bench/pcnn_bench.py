#!/usr/bin/env python3
"""PCNN_1 benchmark: real bytes on disk per frame of ../shared/corpus/test and
train next to RICE_1, JXL_1 at efforts 7 and 10, and IDF_1; the 1x16-bit
coding and the model's own estimate beside the MSB/LSB split; then encode and
decode speed on a 4144x2068 synth.py frame, and the tile-size trade-off.

    python3 bench/pcnn_bench.py [--bin DIR] [--corpus DIR] [--threads N] [--no-speed] [--no-tiles]

Ratio = bytes of the original image data / bytes of the compressed data units
on disk (tables + heaps; headers excluded, as in the AstroCompress paper).
Means are means of per-frame ratios (as bench/idf_bench.py). Every PCNN_1
file is decoded with funpack-ng and compared with the source before it
counts. fpack-ng's encode time includes its verification (each tile is
decoded again and compared before the file is written), so an encode costs
about two decodes.
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idf_bench import ROOT, data_bytes, pixels, run  # noqa: E402

CODECS = (
    ("rice", ["-r"]),
    ("jxl7", ["--jxl"]),
    ("jxl10", ["--jxl", "--jxl-effort", "10"]),
    ("idf", ["-n", "idf"]),
    ("pcnn", ["-n", "pixelcnn"]),
    ("pcnn16", ["-n", "pixelcnn", "--pcnn-coding", "16"]),
)


def same_pixels(a_path, b_path):
    a, b = pixels(a_path), pixels(b_path)
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


def estimate(estimator, path):
    """(estimated bytes, real heap bytes) over the 16-bit HDUs, from examples/neural_estimate."""
    out = subprocess.run([estimator, "pcnn", path], check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith("HDU")]
    return sum(float(r[3]) for r in rows), sum(float(r[4]) for r in rows)


def corpus_tables(args, fpack, funpack, estimator, work):
    for split in ("test", "train"):
        files = sorted(glob.glob(os.path.join(args.corpus, split, "*.fits")))
        print(f"\n### corpus/{split}\n")
        print("| frame | Mpix | RICE_1 | JXL_1 e7 | JXL_1 e10 | IDF_1 | **PCNN_1** | PCNN_1 16-bit | PCNN est./real | "
              "PCNN enc s | PCNN dec s | JXL e10 enc s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        sums = {k: [] for k, _ in CODECS}
        for f in files:
            name = os.path.basename(f)[:-5]
            raw = data_bytes(f)
            size, t = {}, {}
            for alg, flags in CODECS:
                dst = os.path.join(work, f"{name}.{alg}.fz")
                t[alg] = run([fpack, "--threads", args.threads] + flags + ["-O", dst, f])
                size[alg] = data_bytes(dst)
            back = os.path.join(work, f"{name}.back.fits")
            t["dec"] = run([funpack, "--threads", args.threads, "-O", back, os.path.join(work, f"{name}.pcnn.fz")])
            if not same_pixels(f, back):
                sys.exit(f"{name}: PCNN_1 round trip differs")
            back16 = os.path.join(work, f"{name}.back16.fits")
            run([funpack, "--threads", args.threads, "-O", back16, os.path.join(work, f"{name}.pcnn16.fz")])
            if not same_pixels(f, back16):
                sys.exit(f"{name}: PCNN_1 16-bit round trip differs")
            est, real = estimate(estimator, f)
            mpix = sum(x.size for x in pixels(f)) / 1e6
            r = {k: raw / size[k] for k in size}
            for k in r:
                sums[k].append(r[k])
            er = f"{real / est - 1:+.2%}" if est else "n/a"
            print(f"| {name} | {mpix:.2f} | {r['rice']:.3f} | {r['jxl7']:.3f} | {r['jxl10']:.3f} | {r['idf']:.3f} | "
                  f"**{r['pcnn']:.3f}** | {r['pcnn16']:.3f} | {er} | {t['pcnn']:.2f} | {t['dec']:.2f} | {t['jxl10']:.2f} |",
                  flush=True)
        m = {k: sum(v) / len(v) for k, v in sums.items()}
        print(f"| **mean** | | {m['rice']:.3f} | {m['jxl7']:.3f} | {m['jxl10']:.3f} | {m['idf']:.3f} | "
              f"**{m['pcnn']:.3f}** | {m['pcnn16']:.3f} | | | | |")
        wins = {k: sum(p > o for p, o in zip(sums["pcnn"], sums[k])) for k in ("rice", "jxl7", "jxl10", "idf")}
        print(f"\nPCNN_1 beats RICE_1 on {wins['rice']}, JXL_1 e7 on {wins['jxl7']}, JXL_1 e10 on {wins['jxl10']}, "
              f"IDF_1 on {wins['idf']} of {len(files)} frames.")


def synth_frame(args, work):
    frame = os.path.join(work, "synth_4144x2068.fits")
    subprocess.run([sys.executable, os.path.join(args.corpus, "..", "tools", "synth.py"), "--seed", "7",
                    "--ny", "2068", "--nx", "4112", "--overscan", "32", "--out", frame],
                   check=True, stdout=subprocess.DEVNULL)
    return frame


def speed(args, fpack, funpack, work, frame):
    print("\n### speed, synth.py 4144x2068 frame\n")
    print("| codec | threads | encode s (incl. verification) | decode s | ratio |")
    print("|---|---|---|---|---|")
    for alg, flags in (("RICE_1", ["-r"]), ("JXL_1 e7", ["--jxl"]), ("IDF_1", ["-n", "idf"]),
                       ("PCNN_1", ["-n", "pixelcnn"])):
        for th in ("1", "2"):
            if th == "1" and alg != "PCNN_1":
                continue
            dst = os.path.join(work, f"s{alg.replace(' ', '')}{th}.fz")
            te = run([fpack, "--threads", th] + flags + ["-O", dst, frame])
            back = dst + ".back.fits"
            td = run([funpack, "--threads", th, "-O", back, dst])
            if not same_pixels(frame, back):
                sys.exit(f"{alg}: synth round trip differs")
            print(f"| {alg} | {th} | {te:.2f} | {td:.2f} | {data_bytes(frame) / data_bytes(dst):.3f} |", flush=True)


def tiles(args, fpack, funpack, work, frame):
    print("\n### tile size against ratio and speed (PCNN_1, synth.py 4144x2068, "
          f"{args.threads} threads)\n")
    print("| tiles | tiles per frame | ratio | encode s | decode s |")
    print("|---|---|---|---|---|")
    for t in ("4144,8", "4144,32", "4144,128", "default", "4144,2068", "128,128", "512,512"):
        dst = os.path.join(work, f"t{t.replace(',', 'x')}.fz")
        flags = [] if t == "default" else ["-t", t]
        te = run([fpack, "--threads", args.threads, "-n", "pixelcnn"] + flags + ["-O", dst, frame])
        back = dst + ".back.fits"
        td = run([funpack, "--threads", args.threads, "-O", back, dst])
        if not same_pixels(frame, back):
            sys.exit(f"tiles {t}: round trip differs")
        if t == "default":
            n = "(strips of 256 rows)"
        else:
            a, b = (int(v) for v in t.split(","))
            n = str(-(-4144 // a) * -(-2068 // b))
        print(f"| {t} | {n} | {data_bytes(frame) / data_bytes(dst):.3f} | {te:.2f} | {td:.2f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/fpack-ng/target"))
    ap.add_argument("--bin", default=os.path.join(target, "release"))
    ap.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "corpus"))
    ap.add_argument("--threads", default="2")
    ap.add_argument("--no-corpus", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-tiles", action="store_true")
    args = ap.parse_args()
    fpack = os.path.join(args.bin, "fpack-ng")
    funpack = os.path.join(args.bin, "funpack-ng")
    estimator = os.path.join(args.bin, "examples", "neural_estimate")
    for b in (fpack, funpack, estimator):
        if not os.path.exists(b):
            sys.exit(f"{b} missing: cargo build --release -p fpack-ng && cargo build --release -p fpackng --example neural_estimate")
    work = tempfile.mkdtemp(prefix="pcnn-bench-")
    try:
        if not args.no_corpus:
            corpus_tables(args, fpack, funpack, estimator, work)
        if not (args.no_speed and args.no_tiles):
            frame = synth_frame(args, work)
            if not args.no_speed:
                speed(args, fpack, funpack, work, frame)
            if not args.no_tiles:
                tiles(args, fpack, funpack, work, frame)
    finally:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
