#!/usr/bin/env python3
"""Benchmark fpack-ng against Debian's fpack/funpack on the same files, in one run.

For every FITS file given (files or directories), for each algorithm:
  - compressed size of fpack-ng and of fpack, and their ratio
    (ratio = input file bytes / .fz bytes; "data" ratio = raw pixel bytes /
    compressed table bytes, read from the .fz with astropy),
  - compress and decompress speed in MB/s of raw pixel data, one thread and
    all threads for fpack-ng (fpack/funpack are single-threaded),
    best of --repeat runs, whole processes timed the same way for both tools.
fpack-ng's compress time includes its verification (every tile decoded and
compared with the source before the output is renamed into place).

Usage:
    python3 bench/bench.py [--repeat 3] [--algorithms rice,gzip1,gzip2]
                           [--synth] PATH...
--synth adds a 4144x2068 raw frame made with ../shared/tools/synth.py (the
size of a Hubble ACS/WFC chip) to measure 1- vs 2-thread scaling.
Prints a markdown table; nothing here is a pass/fail test.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALGOS = {"rice": ("-r", "-r"), "gzip1": ("-g1", "-g1"), "gzip2": ("-g2", "-g2"), "hcompress": ("-h", "-h")}


def find_bins():
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/fpack-ng/target")) / "release"
    subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet"], cwd=ROOT, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": str(target.parent)})
    return target / "fpack-ng", target / "funpack-ng"


def best_time(cmd, repeat, before=None):
    best = float("inf")
    for _ in range(repeat):
        if before:
            before()
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        best = min(best, time.perf_counter() - t)
    return best


def raw_and_data_bytes(fz):
    """Raw pixel bytes of all compressed images and bytes of their tables."""
    from astropy.io import fits
    raw = data = 0
    with fits.open(fz, disable_image_compression=True) as hdul:
        for h in hdul:
            hd = h.header
            if hd.get("ZIMAGE"):
                n = 1
                for i in range(1, hd["ZNAXIS"] + 1):
                    n *= hd[f"ZNAXIS{i}"]
                raw += n * abs(hd["ZBITPIX"]) // 8
                data += hd["NAXIS1"] * hd["NAXIS2"] + hd.get("PCOUNT", 0)
    return raw, data


def fits_files(paths):
    for p in paths:
        p = Path(p)
        if p.is_dir():
            yield from sorted(p.glob("*.fits"))
        elif p.exists():
            yield p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--algorithms", default="rice,gzip2")
    ap.add_argument("--synth", action="store_true")
    args = ap.parse_args()
    fpack_ng, funpack_ng = find_bins()
    threads = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="fpackng-bench-"))
    files = list(fits_files(args.paths))
    if args.synth:
        synth = ROOT.parent / "shared/tools/synth.py"
        (work / "synth").mkdir()
        out = work / "synth" / "synth_4144x2068.fits"
        subprocess.run([sys.executable, str(synth), "--seed", "7", "--ny", "2068", "--nx", "4144",
                        "--overscan", "0", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        files.append(out)
    rows = []
    totals = {}
    for algo in args.algorithms.split(","):
        ng_flag, ref_flag = ALGOS[algo]
        for f in files:
            src = work / f.name
            shutil.copy(f, src)
            ng_fz, ref_fz = work / (f.name + ".ng.fz"), work / (f.name + ".ref.fz")
            ng_out, ref_out = work / (f.name + ".ng.fits"), work / (f.name + ".ref.fits")

            def rm(*ps):
                return lambda: [p.unlink() for p in ps if p.exists()]

            t_ng1 = best_time([fpack_ng, ng_flag, "--threads", "1", "-O", ng_fz, src], args.repeat, rm(ng_fz))
            t_ngn = best_time([fpack_ng, ng_flag, "--threads", str(threads), "-O", ng_fz, src], args.repeat, rm(ng_fz))
            t_ref = best_time(["fpack", ref_flag, "-O", ref_fz, src], args.repeat, rm(ref_fz))
            u_ng1 = best_time([funpack_ng, "--threads", "1", "-O", ng_out, ng_fz], args.repeat, rm(ng_out))
            u_ngn = best_time([funpack_ng, "--threads", str(threads), "-O", ng_out, ng_fz], args.repeat, rm(ng_out))
            u_ref = best_time(["funpack", "-O", ref_out, ref_fz], args.repeat, rm(ref_out))
            raw, ng_data = raw_and_data_bytes(ng_fz)
            _, ref_data = raw_and_data_bytes(ref_fz)
            mb = raw / 1e6
            size = f.stat().st_size
            row = dict(algo=algo, file=f.stem, raw=raw,
                       ng_ratio=size / ng_fz.stat().st_size, ref_ratio=size / ref_fz.stat().st_size,
                       ng_data_ratio=raw / max(ng_data, 1), ref_data_ratio=raw / max(ref_data, 1),
                       c_ng1=mb / t_ng1, c_ngn=mb / t_ngn, c_ref=mb / t_ref,
                       d_ng1=mb / u_ng1, d_ngn=mb / u_ngn, d_ref=mb / u_ref)
            rows.append(row)
            t = totals.setdefault(algo, dict(raw=0, ng=0, ref=0, tc1=0, tcn=0, tcr=0, td1=0, tdn=0, tdr=0))
            t["raw"] += raw; t["ng"] += ng_fz.stat().st_size; t["ref"] += ref_fz.stat().st_size
            t["tc1"] += t_ng1; t["tcn"] += t_ngn; t["tcr"] += t_ref
            t["td1"] += u_ng1; t["tdn"] += u_ngn; t["tdr"] += u_ref
            for p in (src, ng_fz, ref_fz, ng_out, ref_out):
                p.unlink(missing_ok=True)
    print(f"\nfpack-ng vs Debian fpack {subprocess.run(['fpack', '-V'], capture_output=True, text=True).stdout.strip()}"
          f" — best of {args.repeat}, {threads} threads available, MB/s of raw pixel data\n")
    print("| alg | frame | MB | ratio ng | ratio fpack | size ng/fpack | data ratio ng | data ratio fpack "
          "| pack ng 1T | pack ng {n}T | pack fpack | unpack ng 1T | unpack ng {n}T | unpack funpack |".format(n=threads))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['algo']} | {r['file']} | {r['raw']/1e6:.2f} | {r['ng_ratio']:.3f} | {r['ref_ratio']:.3f} "
              f"| {r['ref_ratio']/r['ng_ratio']:.4f} | {r['ng_data_ratio']:.3f} | {r['ref_data_ratio']:.3f} "
              f"| {r['c_ng1']:.0f} | {r['c_ngn']:.0f} | {r['c_ref']:.0f} | {r['d_ng1']:.0f} | {r['d_ngn']:.0f} | {r['d_ref']:.0f} |")
    print("\nTotals (all frames together):\n")
    print("| alg | MB | ratio ng | ratio fpack | pack ng 1T / fpack | pack ng {n}T / ng 1T | unpack ng 1T / funpack | unpack ng {n}T / ng 1T |".format(n=threads))
    print("|---|---|---|---|---|---|---|---|")
    for algo, t in totals.items():
        print(f"| {algo} | {t['raw']/1e6:.1f} | {t['raw']/t['ng']:.3f} | {t['raw']/t['ref']:.3f} "
              f"| {t['tcr']/t['tc1']:.2f}x | {t['tc1']/t['tcn']:.2f}x | {t['tdr']/t['td1']:.2f}x | {t['td1']/t['tdn']:.2f}x |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
