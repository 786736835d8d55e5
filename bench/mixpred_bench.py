#!/usr/bin/env python3
"""MIXPRED_1 benchmark: ratio and speed per frame, pooled per set, in one run.

    python3 bench/mixpred_bench.py [--quick] [--bin DIR] [--out FILE] [PATH...]

PATH: FITS files or directories (default: ../shared/corpus/test and train). Each
file's first integer image HDU is one frame, written alone to a temporary FITS
file (its own header, stored integers, BZERO/BSCALE untouched) so that every tool
codes exactly that image. Frames are grouped by their directory name.

Codecs, all in this one run on this machine:
  fpack-ng MIXPRED_1 (--mix), RICE_1 (-r), JXL_1 effort 7 (--jxl), PCNN_1
  (-n pixelcnn): whole processes (fpack-ng's encode includes its verification
  decode of every tile), --threads 1 and --threads 2, default tiling;
  Debian fpack -r / funpack: whole processes, one thread;
  imagecodecs JPEG-LS and JPEG-XL effort 1, 2, 3, 7, 10: in-process on the whole
  frame as one array (values minus the frame minimum, uint16; uint8 for 8-bit
  frames), one thread, only for frames whose values span at most 16 bits.

Ratio = raw pixel bytes (NAXIS1 x NAXIS2 x |BITPIX|/8) / compressed bytes: for .fz
outputs the compressed HDU's table and heap (NAXIS1*NAXIS2 + PCOUNT, no headers),
for imagecodecs the encoded byte string. Every fpack-ng, fpack and imagecodecs
output is decoded and compared with the source pixels before its numbers count;
a failure is listed and its frame left out of that codec's figures.
Speed = raw pixel MB (1e6 bytes) / seconds, best of --repeat (1 for the slow
codecs). Pooled ratio = sum of raw bytes / sum of compressed bytes; geo = geometric
mean of per-frame ratios. Nothing here is a pass/fail test.
--quick: four small frames, no JPEG-XL e10 and no PCNN_1.
--cpu: time by CPU seconds (the child process's user + system time; for
  imagecodecs, this process's) instead of wall-clock seconds: figures that a
  busy machine disturbs far less. Two-thread runs are then CPU cost, not speed.
--skip TEXT (repeatable): leave out the codecs whose label contains TEXT (e.g.
  `--skip PCNN_1 --skip e10` for a run in minutes; the report says what was left out).
"""
import argparse
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

try:
    import imagecodecs
except ImportError:
    imagecodecs = None

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN = Path.home() / ".cache/fpack-ng/target/release"

NG = "fpack-ng"
# (label, fpack-ng flags, slow)
NG_CODECS = [
    ("fpack-ng MIXPRED_1", ["--mix"], False),
    ("fpack-ng RICE_1", ["-r"], False),
    ("fpack-ng JXL_1 e7", ["--jxl"], True),
    ("fpack-ng PCNN_1", ["-n", "pixelcnn"], True),
]
IC_CODECS = [
    ("imagecodecs JPEG-LS", lambda a: imagecodecs.jpegls_encode(a), lambda b: imagecodecs.jpegls_decode(b), False),
] + [
    (f"imagecodecs JPEG-XL e{e}",
     (lambda e: lambda a: imagecodecs.jpegxl_encode(a, lossless=True, effort=e, numthreads=1))(e),
     lambda b: imagecodecs.jpegxl_decode(b, numthreads=1), e >= 7)
    for e in (1, 2, 3, 7, 10)
]


def frames_of(paths, quick):
    files = []
    for p in paths:
        p = Path(p)
        files += sorted(p.rglob("*.fits")) if p.is_dir() else [p]
    out = []
    for f in files:
        with fits.open(f, do_not_scale_image_data=True) as h:
            for i, hdu in enumerate(h):
                d = hdu.data if hdu.is_image else None
                if d is None or d.dtype.kind not in "iu" or d.ndim < 2:
                    continue
                out.append((f.parent.name, f.stem, i, np.array(d), hdu.header.copy()))
                break
    if quick:
        out = sorted(out, key=lambda t: t[3].size)[:4]
    return out


def write_single(path, data, header):
    h = header.copy()
    for k in ("XTENSION", "PCOUNT", "GCOUNT", "EXTEND"):
        h.remove(k, ignore_missing=True, remove_all=True)
    fits.PrimaryHDU(data=data, header=h, do_not_scale_image_data=True).writeto(path, overwrite=True)


def stored(path, hdu=None):
    with fits.open(path, do_not_scale_image_data=True, disable_image_compression=False) as h:
        for x in h:
            if x.data is not None and getattr(x, "is_image", False):
                return np.array(x.data)
    return None


def fz_data_bytes(path):
    n = 0
    with fits.open(path, disable_image_compression=True) as h:
        for x in h:
            if x.header.get("ZIMAGE"):
                n += x.header["NAXIS1"] * x.header["NAXIS2"] + x.header.get("PCOUNT", 0)
    return n


CPU = False  # --cpu: CPU seconds instead of wall-clock seconds


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def clock():
    return time.process_time() if CPU else time.perf_counter()


def timed(cmd, repeat, output):
    best = math.inf
    for _ in range(repeat):
        if output.exists():
            output.unlink()
        t, c = time.perf_counter(), children_cpu()
        r = subprocess.run(cmd, capture_output=True)
        dt = children_cpu() - c if CPU else time.perf_counter() - t
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))}: {r.stderr.decode(errors='replace')[:300]}")
        best = min(best, dt)
    return best


def run_fz(enc, dec, src, work, data, repeat):
    fz, back = work / "out.fz", work / "back.fits"
    for p in (fz, back):
        if p.exists():
            p.unlink()
    te = timed(enc + ["-O", str(fz), str(src)], repeat, fz)
    comp = fz_data_bytes(fz)
    td = timed(dec + ["-O", str(back), str(fz)], repeat, back)
    got = stored(back)
    if got is None or got.shape != data.shape or not np.array_equal(got, data):
        raise RuntimeError("decoded pixels differ from the source")
    return comp, te, td


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--bin", type=Path, default=DEFAULT_BIN)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip", action="append", default=[], metavar="TEXT")
    ap.add_argument("--cpu", action="store_true")
    args = ap.parse_args()
    global CPU
    CPU = args.cpu
    corpus = ROOT.parent / "shared/corpus"
    paths = args.paths or [corpus / "test", corpus / "train"]
    frames = frames_of(paths, args.quick)
    skipped = lambda label: any(t in label for t in args.skip)
    ng = [(l, f, s) for (l, f, s) in NG_CODECS if not (args.quick and s) and not skipped(l)]
    ic = [c for c in IC_CODECS if not (args.quick and c[0].endswith("e10")) and not skipped(c[0])]
    have_fpack = shutil.which("fpack") and shutil.which("funpack")
    cols = [l for l, _, _ in ng] + (["fpack Rice (Debian)"] if have_fpack else []) + ([c[0] for c in ic] if imagecodecs else [])
    res = {}  # (codec, frame) -> dict(raw, comp, enc1, dec1, enc2, dec2)
    failures = []
    work = Path(tempfile.mkdtemp(prefix="mixbench-"))
    try:
        for k, (group, stem, hdu, data, header) in enumerate(frames):
            key = (group, stem)
            raw = data.size * data.dtype.itemsize
            src = work / "src.fits"
            write_single(src, data, header)
            print(f"[{k + 1}/{len(frames)}] {group}/{stem} {data.shape} {data.dtype}", file=sys.stderr, flush=True)
            for label, flags, slow in ng:
                rep = 1 if slow else args.repeat
                try:
                    r = {"raw": raw}
                    for th in ("1", "2"):
                        comp, te, td = run_fz([str(args.bin / NG)] + flags + ["--threads", th],
                                              [str(args.bin / "funpack-ng"), "--threads", th], src, work, data, rep)
                        r["comp"], r["enc" + th], r["dec" + th] = comp, te, td
                    res[(label, key)] = r
                except Exception as e:
                    failures.append((label, f"{group}/{stem}", str(e)))
            if have_fpack:
                try:
                    comp, te, td = run_fz(["fpack", "-r"], ["funpack"], src, work, data, args.repeat)
                    res[("fpack Rice (Debian)", key)] = {"raw": raw, "comp": comp, "enc1": te, "dec1": td}
                except Exception as e:
                    failures.append(("fpack Rice (Debian)", f"{group}/{stem}", str(e)))
            span = int(data.max()) - int(data.min())
            if imagecodecs and span < 65536:
                u = (data.astype(np.int64) - int(data.min()))
                u = u.astype(np.uint8 if (data.dtype.itemsize == 1 and span < 256) else np.uint16)
                for label, enc, dec, slow in ic:
                    rep = 1 if slow else args.repeat
                    try:
                        best_e = best_d = math.inf
                        for _ in range(rep):
                            t = clock(); b = enc(u); best_e = min(best_e, clock() - t)
                            t = clock(); back = dec(b); best_d = min(best_d, clock() - t)
                        if not np.array_equal(np.asarray(back).reshape(u.shape), u):
                            raise RuntimeError("decoded pixels differ")
                        res[(label, key)] = {"raw": raw, "comp": len(b), "enc1": best_e, "dec1": best_d}
                    except Exception as e:
                        failures.append((label, f"{group}/{stem}", str(e)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out = []
    p = out.append
    flags = (" --quick" if args.quick else "") + (" --cpu" if args.cpu else "") + "".join(f" --skip {t}" for t in args.skip)
    p(f"# MIXPRED_1 benchmark ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, `bench/mixpred_bench.py{flags}`)\n")
    p("Ratio = raw pixel bytes / compressed bytes (tile data for .fz, the byte string for imagecodecs); "
      "MB/s of raw pixels; fpack-ng and fpack are whole processes (fpack-ng's encode includes the "
      "verification decode), imagecodecs in-process on the whole frame (frames spanning at most 16 bits only). "
      "Every output was decoded and compared with the source.\n")
    if args.cpu:
        p("Times are CPU seconds (`--cpu`: user + system time of each process; in process for imagecodecs), "
          "so MB/s is raw MB per CPU second; the two-thread columns are then CPU cost, not wall-clock speed.\n")
    if args.skip:
        p(f"Left out of this run (`--skip`): codecs whose label contains {', '.join(repr(t) for t in args.skip)}.\n")
    groups = sorted({g for g, *_ in frames})
    short = {c: c.replace("fpack-ng ", "").replace("imagecodecs ", "ic ").replace(" (Debian)", " Debian") for c in cols}
    for g in groups:
        fr = [(gg, s) for gg, s, *_ in frames if gg == g]
        def per_frame(title, cell):
            p(f"\n## {g}: {title}\n")
            p("| frame | " + " | ".join(short[c] for c in cols) + " |")
            p("|---" * (len(cols) + 1) + "|")
            for key in fr:
                cells = [cell(res[(c, key)]) if (c, key) in res else "–" for c in cols]
                p(f"| {key[1]} | " + " | ".join(cells) + " |")

        per_frame("ratio per frame", lambda r: f"{r['raw'] / r['comp']:.3f}")
        per_frame("encode / decode MB/s per frame, one thread",
                  lambda r: f"{r['raw'] / r['enc1'] / 1e6:.1f} / {r['raw'] / r['dec1'] / 1e6:.1f}")
        p(f"\n## {g}: summary\n")
        p("Pooled and geo over the frames each codec coded; `(n)` frames. The 16-bit rows restrict every codec to "
          "the frames imagecodecs also coded (values spanning at most 16 bits), for a like-for-like comparison.\n")
        p("| codec | frames | pooled ratio | geo mean | pooled (≤16-bit) | geo (≤16-bit) | enc MB/s 1 thr | dec MB/s 1 thr | enc MB/s 2 thr | dec MB/s 2 thr |")
        p("|---|---|---|---|---|---|---|---|---|---|")
        narrow = [k for k in fr if ("imagecodecs JPEG-LS", k) in res] if imagecodecs else []
        for c in cols:
            rs = [res[(c, k)] for k in fr if (c, k) in res]
            if not rs:
                continue
            rn = [res[(c, k)] for k in narrow if (c, k) in res]
            pooled = sum(r["raw"] for r in rs) / sum(r["comp"] for r in rs)
            geo = math.exp(sum(math.log(r["raw"] / r["comp"]) for r in rs) / len(rs))
            pn = sum(r["raw"] for r in rn) / sum(r["comp"] for r in rn) if rn else float("nan")
            gn = math.exp(sum(math.log(r["raw"] / r["comp"]) for r in rn) / len(rn)) if rn else float("nan")
            raw = sum(r["raw"] for r in rs)
            sp = lambda f: f"{raw / sum(r[f] for r in rs) / 1e6:.1f}" if all(f in r for r in rs) else "–"
            p(f"| {c} | {len(rs)} | {pooled:.3f} | {geo:.3f} | {pn:.3f} | {gn:.3f} | {sp('enc1')} | {sp('dec1')} | {sp('enc2')} | {sp('dec2')} |")
        mix = [k for k in fr if ("fpack-ng MIXPRED_1", k) in res and ("fpack-ng RICE_1", k) in res]
        below = [k[1] for k in mix if res[("fpack-ng MIXPRED_1", k)]["comp"] > res[("fpack-ng RICE_1", k)]["comp"]]
        p(f"\nMIXPRED_1 below RICE_1 on: {', '.join(below) if below else 'no frame'}.")
    p("\n## Failures\n")
    p("\n".join(f"- {c} on {f}: {e}" for c, f, e in failures) if failures else "None.")
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
