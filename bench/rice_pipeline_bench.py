#!/usr/bin/env python3
"""RICE_1 pipeline benchmark: fpack-ng/funpack-ng against Debian fpack/funpack.

    python3 bench/rice_pipeline_bench.py [--bin DIR] [--repeat N] [PATH...]

PATH: FITS files or directories (default: ../shared/corpus/train). As in
bench/mixpred_bench.py, each file's first integer image HDU is one frame,
written alone to a temporary FITS file. Then, per round, for each tool:
compress every frame (`fpack-ng --threads 1 -r -O OUT FILE`, `fpack -r -O OUT
FILE`), then decompress every output (`funpack-ng --threads 1 -O OUT FILE.fz`,
`funpack -O OUT FILE.fz`). A tool's figure for a phase is the CPU seconds
(user + system, from getrusage of the children) of all its processes in that
phase; the best of --repeat rounds counts, which a busy machine disturbs far
less than wall-clock time. fpack-ng's compress includes its verification
decode of every tile and its re-read of the written file. The outputs of the
two tools are checked to be the same: the decompressed files byte for byte,
apart from the CHECKSUM and DATASUM cards (whose comments carry a time).
"""
import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

# The same frame selection and single-frame files as the codec benchmark
# (this script's folder is on sys.path when it runs).
from mixpred_bench import frames_of, write_single  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def frames(paths):
    """(name, stored integers, header) of the first integer image of each file."""
    return [(stem, data, header) for _, stem, _, data, header in frames_of(paths, quick=False)]


def without_checksums(b):
    cards = [b[i:i + 80] for i in range(0, len(b), 80)]
    return b"".join(c for c in cards if not c.startswith((b"CHECKSUM=", b"DATASUM =")))


def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def phase(cmds):
    t = cpu()
    for c in cmds:
        r = subprocess.run(c, capture_output=True)
        if r.returncode != 0:
            sys.exit(f"{' '.join(map(str, c))}: {r.stderr.decode(errors='replace')[:300]}")
    return cpu() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="*", default=[ROOT.parent / "shared/corpus/train"])
    ap.add_argument("--bin", type=Path, default=Path.home() / ".cache/fpack-ng/target/release")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rice-pipe-"))
    try:
        src = []
        raw = 0
        for name, data, header in frames(args.paths):
            p = work / f"{name}.fits"
            write_single(p, data, header)
            src.append(p)
            raw += data.nbytes
        tools = {
            "fpack-ng": ([str(args.bin / "fpack-ng"), "--threads", "1", "-r"],
                         [str(args.bin / "funpack-ng"), "--threads", "1"]),
            "Debian": (["fpack", "-r"], ["funpack"]),
        }
        best = {t: [float("inf"), float("inf")] for t in tools}
        for _ in range(args.repeat):
            for tool, (enc, dec) in tools.items():
                d = work / tool
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir()
                fz = [d / (p.name + ".fz") for p in src]
                back = [d / (p.name + ".back") for p in src]
                te = phase([enc + ["-O", str(z), str(p)] for p, z in zip(src, fz)])
                td = phase([dec + ["-O", str(b), str(z)] for z, b in zip(fz, back)])
                best[tool][0] = min(best[tool][0], te)
                best[tool][1] = min(best[tool][1], td)
        for p in src:
            a = without_checksums((work / "fpack-ng" / (p.name + ".back")).read_bytes())
            b = without_checksums((work / "Debian" / (p.name + ".back")).read_bytes())
            if a != b:
                sys.exit(f"{p.name}: the two tools' decompressed files differ")
        mb = raw / 1e6
        print(f"{len(src)} frames, {mb:.1f} MB of pixels, best of {args.repeat} rounds, CPU seconds")
        for tool, (te, td) in best.items():
            print(f"{tool:9} compress {te:6.3f} s ({mb / te:6.1f} MB/s)  decompress {td:6.3f} s ({mb / td:6.1f} MB/s)")
        ng, deb = best["fpack-ng"], best["Debian"]
        print(f"ratio vs Debian: compress {deb[0] / ng[0]:.2f}x  decompress {deb[1] / ng[1]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
