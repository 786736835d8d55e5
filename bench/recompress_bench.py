#!/usr/bin/env python3
"""Throughput of `fpack-ng recompress` against a shell loop of Debian's
funpack + fpack over the same files.

usage: bench/recompress_bench.py [--frames N] [--size NY NX] [--threads T] [--keep]

The tree: N raw CCD frames made by ../shared/tools/synth.py (default 16 of
1024x1024) and every integer-valued frame of the shared corpus (train and
test; floating-point frames are left out because Debian's fpack quantizes
them, which would not be the same job). Two archives are made from it with
Debian's fpack: Rice (`fpack -r`) and gzip (`fpack -g`).

Scenarios, each on a fresh copy:
- Rice -> JXL_1: `fpack-ng recompress --to jxl --threads T`;
- gzip -> Rice:  `fpack-ng recompress --to rice --threads T`;
- baseline: for each file `funpack -O tmp.fits f && fpack -r -O f.new tmp.fits`
  (Debian's fpack cannot write JXL_1, so the baseline of both scenarios is
  the same decode + Rice encode), serially as a shell loop would, and with T
  files at once (like `xargs -P T`). The baseline does no verification;
  fpack-ng decodes every written file again and compares it with the source.

MB/s are 10^6 bytes per second of input as stored (the .fz files) and of
plain pixels (the decoded FITS files), over the wall time of the whole run.
"""
import argparse
import concurrent.futures
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def build():
    subprocess.run(["cargo", "build", "--release", "-p", "fpack-ng", "--quiet"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/fpack-ng/target")) / "release"
    return target / "fpack-ng"


def make_tree(work, frames, ny, nx):
    plain = work / "plain"
    plain.mkdir()
    sys.path.insert(0, str(SHARED / "tools"))
    import synth
    from astropy.io import fits

    for i in range(frames):
        img, _ = synth.make_frame(seed=100 + i, ny=ny, nx=nx - 32, overscan=32)
        fits.PrimaryHDU(img).writeto(plain / f"synth_{i:03d}.fits")
    for part in ["train", "test"]:
        manifest = SHARED / "corpus" / part / "MANIFEST.tsv"
        with open(manifest) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if row.get("BITPIX", "").strip() in ("8", "16", "32"):
                    shutil.copy(SHARED / "corpus" / part / row["file"], plain / row["file"])
    trees = {}
    for name, flag in [("rice", "-r"), ("gzip", "-g")]:
        d = work / name
        d.mkdir()
        for f in sorted(plain.iterdir()):
            subprocess.run(["fpack", flag, "-O", str(d / (f.name + ".fz")), str(f)], check=True)
        trees[name] = d
    return plain, trees


def size(d):
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


def run_ours(binary, tree, work, target, threads):
    copy = work / f"ours-{tree.name}-{target}"
    shutil.copytree(tree, copy)
    report = work / f"report-{tree.name}-{target}.json"
    t0 = time.perf_counter()
    r = subprocess.run(
        [str(binary), "recompress", "--to", target, "--threads", str(threads), "--quiet",
         "--journal", str(work / f"{tree.name}-{target}.journal"), "--report", str(report), str(copy)],
    )
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"fpack-ng recompress failed ({r.returncode})")
    rep = json.loads(report.read_text())
    return seconds, rep["bytes_after"], rep["by_status"]


def funpack_fpack(f, scratch):
    tmp = scratch / (f.name + ".tmp.fits")
    subprocess.run(["funpack", "-O", str(tmp), str(f)], check=True)
    new = f.with_name(f.name + ".new")
    subprocess.run(["fpack", "-r", "-O", str(new), str(tmp)], check=True)
    tmp.unlink()
    new.replace(f)


def run_loop(tree, work, parallel):
    copy = work / f"loop-{tree.name}-{parallel}"
    shutil.copytree(tree, copy)
    scratch = work / f"scratch-{tree.name}-{parallel}"
    scratch.mkdir()
    files = sorted(copy.iterdir())
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda f: funpack_fpack(f, scratch), files))
    seconds = time.perf_counter() - t0
    return seconds, size(copy)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, nargs=2, default=[1024, 1024], metavar=("NY", "NX"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    binary = build()
    work = Path(tempfile.mkdtemp(prefix="recompress-bench-"))
    try:
        plain, trees = make_tree(work, args.frames, *args.size)
        plain_bytes = size(plain)
        n = len(list(plain.iterdir()))
        print(f"tree: {n} files, {plain_bytes / 1e6:.1f} MB plain; Rice archive "
              f"{size(trees['rice']) / 1e6:.1f} MB, gzip archive {size(trees['gzip']) / 1e6:.1f} MB; "
              f"{args.threads} threads\n")
        rows = []
        for source, target in [("rice", "jxl"), ("gzip", "rice")]:
            tree = trees[source]
            before = size(tree)
            s, after, statuses = run_ours(binary, tree, work, target, args.threads)
            rows.append((f"{source} -> {target}", f"fpack-ng recompress --threads {args.threads}",
                         before, after, s, ", ".join(f"{v} {k}" for k, v in statuses.items())))
            for parallel in [1, args.threads]:
                s, after = run_loop(tree, work, parallel)
                how = "shell loop" if parallel == 1 else f"{parallel} loops in parallel"
                rows.append((f"{source} -> rice", f"Debian funpack+fpack -r, {how}", before, after, s, ""))
        head = f"{'scenario':<14} {'tool':<46} {'MB in':>7} {'MB out':>7} {'s':>7} {'MB/s in':>8} {'MB/s plain':>10}  files"
        print(head)
        print("-" * len(head))
        for scen, tool, before, after, s, note in rows:
            print(f"{scen:<14} {tool:<46} {before / 1e6:>7.1f} {after / 1e6:>7.1f} {s:>7.2f} "
                  f"{before / 1e6 / s:>8.1f} {plain_bytes / 1e6 / s:>10.1f}  {note}")
    finally:
        if args.keep:
            print(f"\nwork directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
