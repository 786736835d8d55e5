#!/usr/bin/env python3
"""Benchmark report in the form of Pence, Seaman & White (2009), issue 9.

    python3 bench/report.py [--quick] [--out DIR] [--bin DIR] [--json FILE] PATHS...

PATHS are FITS files or directories (searched recursively for *.fits, *.fit, *.fts).
Writes DIR/report.md (default DIR: bench-report/) with

  Table 1  compression ratio per dataset (rows) and codec (columns), best bold,
           second best italic;
  Table 2  noise floor: per frame the robust background sigma, the Gaussian
           entropy-floor ratio and each codec's ratio as a share of it;
  Table 3  encode/decode speed (MB/s, seconds per frame), 1 thread and all threads;
  figures  fig5_ratio_vs_sigma.png, fig2_ratio_vs_exptime.png, fig3_tile_bits.png
           (needs matplotlib; the report says so when it is missing);
  failures every codec/frame whose output did not decode back to the source pixels
           (or that failed to run), with the reason; such results count nowhere else.

Ratio = original image data bytes (product of NAXISn x |BITPIX|/8 of each image
HDU, headers excluded) / compressed data bytes, where compressed data bytes are, for
.fz outputs, the data of each compressed HDU (NAXIS1*NAXIS2 + PCOUNT: the binary
table plus its heap, without the 2880-byte padding and without headers) and, for the
imagecodecs references, the length of the encoded byte string of each 2-D plane.
The headers' share of the .fz files is reported separately.

Adding a codec is one line in CODECS below. Nothing here is a pass/fail test; the
numbers go to tables. --quick: one timing repeat, no JPEG-XL effort 10.
"""
import argparse
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
from astropy.io import fits

try:
    import imagecodecs
except ImportError:  # the references are then reported as failures, not dropped
    imagecodecs = None

DEFAULT_BIN = Path.home() / ".cache/fpack-ng/target/release"


@dataclass
class Codec:
    """One column. `enc`/`dec` are argv lists (an .fz tool: '{bin}' is replaced by the
    binary dir, '-O out in' is appended) or functions (imagecodecs: array -> bytes,
    bytes -> array, applied to each 2-D plane of integer images up to 16 bits)."""
    name: str
    enc: Union[list, Callable]
    dec: Union[list, Callable]
    threaded: bool = False      # also timed with --threads 1
    full_only: bool = False     # skipped with --quick
    cube_only: bool = False     # only files with an image of NAXIS >= 3


NG, UNNG = ["{bin}/fpack-ng"], ["{bin}/funpack-ng"]
IC = imagecodecs
CODECS = [
    Codec("fpack-ng RICE_1", NG + ["-r"], UNNG, threaded=True),
    Codec("fpack-ng GZIP_2", NG + ["-g2"], UNNG, threaded=True),
    Codec("fpack-ng MIXPRED_1", NG + ["--mix"], UNNG, threaded=True),
    Codec("fpack-ng JXL_1 e7", NG + ["--jxl"], UNNG, threaded=True),
    Codec("fpack-ng JXL_1 e10", NG + ["--jxl", "--jxl-effort", "10"], UNNG, threaded=True, full_only=True),
    Codec("fpack-ng IDF_1", NG + ["-n", "idf"], UNNG, threaded=True),
    Codec("fpack-ng PCNN_1", NG + ["-n", "pixelcnn"], UNNG, threaded=True),
    Codec("fpack-ng cube on", NG + ["--cube", "on"], UNNG, threaded=True, cube_only=True),
    Codec("fpack-ng cube off", NG + ["--cube", "off"], UNNG, threaded=True, cube_only=True),
    Codec("fpack Rice (Debian)", ["fpack", "-r"], ["funpack"]),
    Codec("fpack Hcompress (Debian)", ["fpack", "-h"], ["funpack"]),
    Codec("imagecodecs JPEG-XL e7", lambda a: IC.jpegxl_encode(a, lossless=True, effort=7, numthreads=1), lambda b: IC.jpegxl_decode(b)),
    Codec("imagecodecs JPEG-LS", lambda a: IC.jpegls_encode(a, level=0), lambda b: IC.jpegls_decode(b)),
    Codec("imagecodecs JPEG-2000", lambda a: IC.jpeg2k_encode(a, level=0, reversible=True, numthreads=1), lambda b: IC.jpeg2k_decode(b)),
]


@dataclass
class Frame:
    """One image HDU of a source file."""
    file: Path
    hdu: int
    data: np.ndarray            # stored values (no BSCALE/BZERO applied)
    bzero: float
    dataset: str
    exptime: Optional[float]
    raw_bytes: int = 0
    sigma: Optional[float] = None
    floor: Optional[float] = None
    label: str = ""


@dataclass
class Result:
    """One codec on one file: per-frame compressed bytes, timings, verification."""
    codec: str
    file: str
    frames: list = field(default_factory=list)   # per frame: dict(label, raw, comp, cmptype)
    header_bytes: int = 0
    file_bytes: int = 0
    enc_s: dict = field(default_factory=dict)    # "1" / "all" -> seconds (best of repeats)
    dec_s: dict = field(default_factory=dict)
    ok: bool = False
    error: str = ""
    na: str = ""                                 # reason when not applicable


# ---------------------------------------------------------------- inputs

def find_files(paths):
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in (".fits", ".fit", ".fts"))
        elif p.is_file():
            out.append(p)
        else:
            sys.exit(f"report.py: no such file or directory: {p}")
    return out


def image_hdus(path):
    """(index, header, stored data) of every HDU with a non-empty image array."""
    out = []
    with fits.open(path, do_not_scale_image_data=True, disable_image_compression=True) as hdul:
        for i, h in enumerate(hdul):
            if isinstance(h, (fits.PrimaryHDU, fits.ImageHDU)) and h.header.get("NAXIS", 0) > 0 and h.data is not None:
                out.append((i, h.header.copy(), np.array(h.data)))
    return out


def robust_sigma(phys):
    """MAD of the first difference along rows / sqrt(2) / 0.6745 (first plane of a cube)."""
    a = phys.reshape(-1, phys.shape[-2], phys.shape[-1])[0].astype(np.float64)
    d = np.diff(a, axis=1).ravel()
    if d.size == 0:
        return None
    mad = np.median(np.abs(d - np.median(d)))
    return float(mad / 0.6745 / math.sqrt(2))


def load_frames(path):
    frames = []
    with fits.open(path) as hdul:
        prim = hdul[0].header
    for i, hdr, data in image_hdus(path):
        def key(k):
            return hdr.get(k, prim.get(k))
        tel, ins = key("TELESCOP"), key("INSTRUME")
        ds = "/".join(str(x).strip() for x in (tel, ins) if x not in (None, "")) or path.parent.name
        exp = key("EXPTIME")
        try:
            exp = float(exp) if exp is not None else None
        except (TypeError, ValueError):
            exp = None
        f = Frame(path, i, data, float(hdr.get("BZERO", 0)), ds, exp)
        f.raw_bytes = data.size * data.dtype.itemsize
        f.label = f"{path.name}[{i}]"
        if data.dtype.kind in "iu" and data.ndim >= 2:
            f.sigma = robust_sigma(data.astype(np.float64) + f.bzero)
            bits = 8 * data.dtype.itemsize
            if f.sigma and f.sigma >= 1.0:  # the formula needs sigma well above the step
                f.floor = bits / (math.log2(f.sigma) + 2.05)
        frames.append(f)
    return frames


# ---------------------------------------------------------------- running codecs

def timed(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
    return dt


def same_pixels(a, b):
    """Bit-exact comparison (floats compared as their bit patterns)."""
    if a.shape != b.shape or a.dtype.itemsize != b.dtype.itemsize:
        return False
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        u = np.dtype(f"u{a.dtype.itemsize}")
        return np.array_equal(np.ascontiguousarray(a).view(u), np.ascontiguousarray(b).view(u))
    return np.array_equal(a.astype(np.int64), b.astype(np.int64))


def fz_sizes(fz):
    """Per image-carrying HDU: (compressed data bytes, ZCMPTYPE); plus header bytes."""
    per, hdr = [], 0
    with fits.open(fz, disable_image_compression=True) as hdul:
        for h in hdul:
            info = h.fileinfo()
            hdr += info["datLoc"] - info["hdrLoc"]
            H = h.header
            if H.get("ZIMAGE"):
                per.append((H["NAXIS1"] * H["NAXIS2"] + H.get("PCOUNT", 0), H.get("ZCMPTYPE", "?")))
            elif H.get("NAXIS", 0) > 0 and isinstance(h, (fits.PrimaryHDU, fits.ImageHDU)):
                per.append((h.size, "uncompressed"))
    return per, hdr


def run_fz(codec, frames, src, tmp, bindir, repeat, nthreads):
    r = Result(codec.name, str(src))
    fill = lambda argv: [a.replace("{bin}", str(bindir)) for a in argv]
    fz, back = tmp / "out.fz", tmp / "back.fits"
    variants = [("all", [])] + ([("1", ["--threads", "1"])] if codec.threaded and nthreads > 1 else [])
    if not codec.threaded:
        variants = [("1", [])]
    try:
        for key, extra in variants:
            best_e = best_d = float("inf")
            for _ in range(repeat):
                for p in (fz, back):
                    p.unlink(missing_ok=True)
                best_e = min(best_e, timed(fill(codec.enc) + extra + ["-O", str(fz), str(src)]))
                best_d = min(best_d, timed(fill(codec.dec) + extra + ["-O", str(back), str(fz)]))
            r.enc_s[key], r.dec_s[key] = best_e, best_d
            if key == "all" and codec.threaded and nthreads == 1:
                r.enc_s["1"], r.dec_s["1"] = best_e, best_d
        per, r.header_bytes = fz_sizes(fz)
        r.file_bytes = fz.stat().st_size
        decoded = image_hdus(back)
        if len(per) != len(frames) or len(decoded) != len(frames):
            raise RuntimeError(f"{len(frames)} source images, {len(per)} in the .fz, {len(decoded)} decoded")
        bad = [f.label for f, (_, _, d) in zip(frames, decoded) if not same_pixels(f.data, d)]
        for f, (comp, cmp) in zip(frames, per):
            r.frames.append(dict(label=f.label, raw=f.raw_bytes, comp=int(comp), cmptype=cmp))
        if bad:
            raise RuntimeError("decoded pixels differ from the source in " + ", ".join(bad))
        r.ok = True
    except Exception as e:  # listed in the report's failures
        r.error = str(e)
    return r


def as_u16(f):
    """Integer image of at most 16 bits as the unsigned array the codecs take, or None.
    int16 is offset by 32768 (with BZERO=32768 that is the physical value)."""
    d = f.data
    if d.dtype.kind not in "iu" or d.dtype.itemsize > 2:
        return None
    if d.dtype.itemsize == 1:
        return d.astype(np.uint8)
    return (d.astype(np.int32) + 32768).astype(np.uint16) if d.dtype.kind == "i" else d.astype(np.uint16)


def run_ic(codec, frames, src, repeat):
    r = Result(codec.name, str(src))
    arrays = [as_u16(f) for f in frames]
    if all(a is None for a in arrays):
        r.na = "not an integer image of <= 16 bits"
        return r
    if imagecodecs is None:
        r.error = "imagecodecs is not installed"
        return r
    te = td = 0.0
    try:
        for f, a in zip(frames, arrays):
            if a is None:
                continue
            planes = a.reshape(-1, a.shape[-2], a.shape[-1])
            be = bd = float("inf")
            for _ in range(repeat):
                t = time.perf_counter()
                enc = [bytes(codec.enc(np.ascontiguousarray(p))) for p in planes]
                t1 = time.perf_counter()
                dec = [np.asarray(codec.dec(b)) for b in enc]
                t2 = time.perf_counter()
                be, bd = min(be, t1 - t), min(bd, t2 - t1)
            te, td = te + be, td + bd
            r.frames.append(dict(label=f.label, raw=f.raw_bytes, comp=sum(map(len, enc)), cmptype=codec.name))
            if not all(same_pixels(p, d.reshape(p.shape)) for p, d in zip(planes, dec)):
                raise RuntimeError(f"decoded pixels differ from the source in {f.label}")
        r.enc_s["1"], r.dec_s["1"] = te, td
        r.ok = True
    except Exception as e:
        r.error = f"{type(e).__name__}: {e}"
    return r


# ---------------------------------------------------------------- tables

def fmt(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"


def mark_best(cells):
    """cells: list of (value or None, text). Bold the best, italic the second."""
    vals = sorted({v for v, _ in cells if v is not None}, reverse=True)
    out = []
    for v, t in cells:
        if vals and v == vals[0]:
            t = f"**{t}**"
        elif len(vals) > 1 and v == vals[1]:
            t = f"*{t}*"
        out.append(t)
    return out


def ratio_of(results):
    raw = sum(fr["raw"] for r in results for fr in r.frames)
    comp = sum(fr["comp"] for r in results for fr in r.frames)
    return raw / comp if comp else None


def table1(datasets, codecs, res):
    lines = ["| dataset | frames | MB | " + " | ".join(c.name for c in codecs) + " |",
             "|---|---:|---:|" + "---:|" * len(codecs)]
    for ds, frames in list(datasets.items()) + [("**all**", [f for fs in datasets.values() for f in fs])]:
        files = sorted({str(f.file) for f in frames})
        cells = []
        for c in codecs:
            rs = [res[(c.name, fl)] for fl in files]
            if any(not r.ok and not r.na for r in rs):
                cells.append((None, "FAIL"))
            elif all(r.na for r in rs):
                cells.append((None, "n/a"))
            else:
                v = ratio_of([r for r in rs if r.ok])
                part = "" if all(r.ok for r in rs) and all(len(r.frames) == len([f for f in frames if str(f.file) == r.file]) for r in rs) else "†"
                cells.append((round(v, 3) if v else None, fmt(v, 3) + part))
        mb = sum(f.raw_bytes for f in frames) / 1e6
        lines.append(f"| {ds} | {len(frames)} | {mb:.2f} | " + " | ".join(mark_best(cells)) + " |")
    return "\n".join(lines)


def frame_ratio(res, codec, f):
    r = res.get((codec.name, str(f.file)))
    if not r or not r.ok:
        return None
    for fr in r.frames:
        if fr["label"] == f.label:
            return fr["raw"] / fr["comp"]
    return None


def table2(frames, codecs, res):
    lines = ["| frame | shape | BITPIX | sigma (ADU) | floor ratio | " + " | ".join(c.name for c in codecs) + " |",
             "|---|---|---:|---:|---:|" + "---:|" * len(codecs)]
    for f in frames:
        cells = []
        for c in codecs:
            v = frame_ratio(res, c, f)
            if v is None:
                cells.append("n/a")
            elif f.floor:
                cells.append(f"{v:.2f} ({100 * v / f.floor:.0f}%)")
            else:
                cells.append(f"{v:.2f}")
        shape = "x".join(map(str, f.data.shape[::-1]))
        bp = (-8 if f.data.dtype.kind == "f" else 8) * f.data.dtype.itemsize
        lines.append(f"| {f.label} | {shape} | {bp} | {fmt(f.sigma)} | {fmt(f.floor)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table3(frames, codecs, res):
    lines = ["| codec | frames | MB | enc MB/s 1 thr | enc MB/s all | dec MB/s 1 thr | dec MB/s all | enc s/frame (all) | dec s/frame (all) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in codecs:
        rs = [r for (n, _), r in res.items() if n == c.name and r.ok]
        if not rs:
            continue
        nfr = sum(len(r.frames) for r in rs)
        mb = sum(fr["raw"] for r in rs for fr in r.frames) / 1e6
        row = [c.name, str(nfr), f"{mb:.2f}"]
        for d in ("enc_s", "dec_s"):
            for k in ("1", "all"):
                ts = [getattr(r, d).get(k) for r in rs]
                row.append("–" if None in ts else f"{mb / sum(ts):.3g}")
        for d in ("enc_s", "dec_s"):
            ts = [getattr(r, d).get("all", getattr(r, d).get("1")) for r in rs]
            row.append(f"{sum(ts) / nfr:.4f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- figures

def tile_bits(codec, frame, bindir, tmp, tile=32):
    """Bits/pixel of each tile of `frame` coded by `codec` with tile x tile tiles,
    from the heap descriptors (byte counts) of the .fz."""
    fz = tmp / "tiles.fz"
    fz.unlink(missing_ok=True)
    argv = [a.replace("{bin}", str(bindir)) for a in codec.enc]
    timed(argv + ["-t", f"{tile},{tile}", "-O", str(fz), str(frame.file)])
    idx = [i for i, _, _ in image_hdus(frame.file)].index(frame.hdu)
    with fits.open(fz, disable_image_compression=True) as hdul:
        h = [x for x in hdul if x.header.get("ZIMAGE")][idx]
        nx, ny = h.header["ZNAXIS1"], h.header["ZNAXIS2"]
        cols = [n for n in h.columns.names if n in ("COMPRESSED_DATA", "GZIP_COMPRESSED_DATA")]
        nbytes = np.zeros(len(h.data), dtype=np.int64)
        for n in cols:
            for row, arr in enumerate(h.data.field(n)):
                nbytes[row] += len(arr) * np.asarray(arr).dtype.itemsize
        cmp = h.header.get("ZCMPTYPE")
    tx, ty = math.ceil(nx / tile), math.ceil(ny / tile)
    grid = np.zeros((ty, tx))
    for row in range(tx * ty):
        j, i = divmod(row, tx)
        pix = min(tile, nx - i * tile) * min(tile, ny - j * tile)
        grid[j, i] = 8 * nbytes[row] / pix
    return grid, cmp


def figures(out, frames, codecs, res, bindir, tmp):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["Figures skipped: matplotlib is not installed (scripts/install-deps.sh installs it)."]
    notes = []
    marks = "os^vD<>ph*xX+"
    used = [c for c in codecs if any(frame_ratio(res, c, f) for f in frames)]
    for fname, xattr, xlabel, title in (
            ("fig5_ratio_vs_sigma.png", "sigma", "background noise sigma (ADU, log scale)", "Ratio vs background noise"),
            ("fig2_ratio_vs_exptime.png", "exptime", "EXPTIME (s, log scale)", "Ratio vs exposure time")):
        pts = [f for f in frames if getattr(f, xattr) and getattr(f, xattr) > 0]
        if not pts:
            notes.append(f"{fname}: not drawn, no frame has a usable {xattr}.")
            continue
        fig, ax = plt.subplots(figsize=(8, 5.5))
        for k, c in enumerate(used):
            xs = [(getattr(f, xattr), frame_ratio(res, c, f)) for f in pts]
            xs = [p for p in xs if p[1]]
            if xs:
                ax.scatter(*zip(*xs), marker=marks[k % len(marks)], label=c.name, alpha=0.75)
        if xattr == "sigma":
            s = np.logspace(0, math.log10(max(f.sigma for f in pts) * 1.5), 100)
            ax.plot(s, 16 / (np.log2(s) + 2.05), "k--", label="16-bit Gaussian floor 16/(log2 σ+2.05)")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("compression ratio (image data bytes / compressed data bytes)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=90)
        plt.close(fig)
    same = [(a.name, b.name) for i, a in enumerate(used) for b in used[i + 1:]
            if all(frame_ratio(res, a, f) == frame_ratio(res, b, f) for f in frames)]
    if same:
        notes.append("Markers hide each other where codecs give identical sizes on every frame: " +
                     "; ".join(f"{a} = {b}" for a, b in same) + ".")
    # Fig. 3: the largest 2-D integer frame, best .fz codec on it (verified results only).
    cand = [f for f in frames if f.data.dtype.kind in "iu" and f.data.ndim == 2]
    if not cand:
        notes.append("fig3_tile_bits.png: not drawn, no 2-D integer frame in the inputs.")
    else:
        f = max(cand, key=lambda f: f.data.size)
        fzc = sorted([c for c in codecs if isinstance(c.enc, list) and frame_ratio(res, c, f)],
                     key=lambda c: -frame_ratio(res, c, f))
        if not fzc:
            notes.append(f"fig3_tile_bits.png: not drawn, no verified .fz codec on {f.label}.")
        for c in fzc:
            try:
                grid, cmp = tile_bits(c, f, bindir, tmp)
            except Exception as e:
                notes.append(f"fig3 with {c.name} failed ({e}); trying the next codec.")
                continue
            fig, ax = plt.subplots(figsize=(7, 6))
            im = ax.imshow(grid, origin="lower", cmap="viridis")
            fig.colorbar(im, ax=ax, label="compressed bits per pixel")
            ax.set_xlabel("tile column (32 px tiles)")
            ax.set_ylabel("tile row (32 px tiles)")
            ax.set_title(f"{f.label}\n{c.name} ({cmp}), bits/pixel per 32x32 tile", fontsize=9)
            fig.tight_layout()
            fig.savefig(out / "fig3_tile_bits.png", dpi=90)
            plt.close(fig)
            notes.append(f"fig3_tile_bits.png: {f.label} with {c.name} (best verified .fz codec on that frame), "
                         f"`-t 32,32`; bits/pixel = 8 x heap bytes of each tile's COMPRESSED_DATA "
                         f"(+ GZIP_COMPRESSED_DATA) descriptor / tile pixels; mean {grid.mean():.2f}.")
            break
    return notes


# ---------------------------------------------------------------- main

def device():
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--quick", action="store_true", help="one timing repeat, no JPEG-XL effort 10")
    ap.add_argument("--out", default="bench-report", help="report folder [bench-report]")
    ap.add_argument("--bin", default=str(DEFAULT_BIN), help=f"dir of fpack-ng/funpack-ng [{DEFAULT_BIN}]")
    ap.add_argument("--json", help="also write the raw results as JSON to this file")
    ap.add_argument("--repeat", type=int, default=None, help="timing repeats (best of) [1 quick, 3 full]")
    args = ap.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    bindir = Path(args.bin).resolve()
    for b in ("fpack-ng", "funpack-ng"):
        if not (bindir / b).is_file():
            sys.exit(f"report.py: {bindir / b} not found (build with cargo build --release, or pass --bin)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    nthreads = os.cpu_count() or 1
    codecs = [c for c in CODECS if not (args.quick and c.full_only)]

    files = find_files(args.paths)
    frames, load_err, datasets = [], [], {}
    for p in files:
        try:
            fr = load_frames(p)
        except Exception as e:
            load_err.append(f"{p}: cannot read: {e}")
            continue
        if not fr:
            load_err.append(f"{p}: no image HDU with data")
        frames += fr
        for f in fr:
            datasets.setdefault(f.dataset, []).append(f)
    has_cube = {str(p) for p in files if any(f.data.ndim >= 3 for f in frames if f.file == p)}
    codecs = [c for c in codecs if not c.cube_only or has_cube]

    res = {}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="fpackng-report-") as td:
        tmp = Path(td)
        for p in files:
            fr = [f for f in frames if f.file == p]
            if not fr:
                continue
            for c in codecs:
                if c.cube_only and str(p) not in has_cube:
                    r = Result(c.name, str(p), na="no image with NAXIS >= 3")
                elif isinstance(c.enc, list):
                    r = run_fz(c, fr, p, tmp, bindir, repeat, nthreads)
                else:
                    r = run_ic(c, fr, p, repeat)
                res[(c.name, str(p))] = r
                print(f"{p.name:45s} {c.name:26s} " + ("ok" if r.ok else r.na or "FAIL"), file=sys.stderr)
        notes = figures(out, frames, codecs, res, bindir, tmp)
    elapsed = time.time() - t0

    fails = [f"- {r.codec} on {r.file}: {r.error}" for r in res.values() if not r.ok and not r.na]
    fz_rs = [r for r in res.values() if r.ok and r.file_bytes]
    hdr_share = {}
    for c in codecs:
        rs = [r for r in fz_rs if r.codec == c.name]
        if rs:
            hdr_share[c.name] = 100 * sum(r.header_bytes for r in rs) / sum(r.file_bytes for r in rs)
    cmd = "python3 bench/report.py " + " ".join(sys.argv[1:])
    md = [f"# fpack-ng benchmark report",
          "",
          f"- Command: `{cmd}`",
          f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; run time {elapsed:.0f} s; mode: {'quick' if args.quick else 'full'}, best of {repeat} timing run(s)",
          f"- Device: {device()}",
          f"- Binaries: {bindir}; Debian fpack: {shutil.which('fpack')}; imagecodecs {getattr(imagecodecs, '__version__', 'missing')}",
          f"- Inputs: {len(files)} files, {len(frames)} image HDUs (frames), {sum(f.raw_bytes for f in frames) / 1e6:.2f} MB of image data",
          "",
          "**Ratio** = original image data bytes (NAXIS1 x NAXIS2 x ... x |BITPIX|/8 of every image HDU; headers excluded) "
          "/ compressed data bytes. For .fz outputs the compressed data bytes of each compressed HDU are NAXIS1 x NAXIS2 + PCOUNT "
          "(binary table + heap, without FITS headers and without the padding to 2880 bytes); for the imagecodecs references "
          "they are the length of the encoded stream of each 2-D plane (int16 images offset by 32768 to uint16, which with "
          "BZERO = 32768 is the physical value; images of more than 16 bits or floating point are n/a for them). "
          "Every result counts only after its output was decoded (funpack-ng, Debian funpack, or the imagecodecs decoder) "
          "and compared bit for bit with the source pixels; anything else is listed under Failures.",
          "",
          "## Table 1: compression ratio per dataset",
          "",
          "Rows: files grouped by TELESCOP/INSTRUME from the headers (the folder name when both are missing). "
          "**Bold** best, *italic* second best per row. FAIL: at least one file of the row failed (see Failures). "
          "† : some frames of the row are n/a for that codec, the ratio is over the others. "
          "A ratio over a row is total image bytes / total compressed bytes of its frames.",
          "",
          table1(datasets, codecs, res),
          "",
          "Headers' share of the .fz files (all header blocks / file bytes; not in the ratios above): " +
          ", ".join(f"{k} {v:.1f}%" for k, v in hdr_share.items()) + ".",
          "",
          "ZCMPTYPE written where it differs from the codec asked for (CUBE_1: the default `--cube auto` chose "
          "inter-plane residuals for a cube; anything else is a fallback for an image the codec does not take): " +
          (", ".join(sorted({f"{r.codec} on {fr['label']} -> {fr['cmptype']}" for r in fz_rs for fr in r.frames
                             if ("JXL" in r.codec and fr["cmptype"] != "JXL_1") or ("IDF" in r.codec and fr["cmptype"] != "IDF_1")
                             or ("PCNN" in r.codec and fr["cmptype"] != "PCNN_1")
                             or ("GZIP_2" in r.codec and fr["cmptype"] != "GZIP_2")})) or "none") + ".",
          "",
          "## Table 2: noise floor",
          "",
          "sigma: robust background noise of each frame = median absolute deviation of the first difference along rows "
          "/ 0.6745 / sqrt(2), in ADU (physical values; first plane of a cube). Floor ratio: the compression ratio of "
          "Gaussian noise of that sigma coded at its entropy, BITPIX / (log2 sigma + 2.05) (Pence, Seaman & White 2009; "
          "n/a when sigma < 1 ADU, where the formula does not hold, and for floating point). Each codec cell: its ratio "
          "on the frame and, in parentheses, that ratio as a percentage of the floor ratio (100% = at the floor; sources "
          "and structure push real frames above or below it).",
          "",
          table2(frames, codecs, res),
          "",
          "## Table 3: speed",
          "",
          f"Device: {device()}. MB = 10^6 bytes of original image data. fpack-ng and Debian tools: wall time of the whole "
          "process (start-up, FITS reading and writing; fpack-ng's encode time includes its verification that every tile "
          "decodes back identical), best of the repeats; '1 thr' = `--threads 1`, 'all' = default (all cores). Debian "
          "fpack/funpack are single-threaded (1 thr column only). imagecodecs: in-process encode/decode calls on arrays "
          "already in memory (numthreads=1 where the call takes it), so they exclude file I/O. s/frame uses the all-threads "
          "time where there is one.",
          "",
          table3(frames, codecs, res),
          "",
          "## Figures",
          "",
          *[f"![{n}]({n})\n" for n in ("fig5_ratio_vs_sigma.png", "fig2_ratio_vs_exptime.png", "fig3_tile_bits.png")
            if (out / n).is_file()],
          *[f"- {n}" for n in notes],
          "",
          "## Failures",
          "",
          *(fails or ["none"]),
          *[f"- {e}" for e in load_err],
          ""]
    (out / "report.md").write_text("\n".join(md))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "device": device(), "command": cmd,
            "frames": [dict(label=f.label, file=str(f.file), hdu=f.hdu, dataset=f.dataset, raw=f.raw_bytes,
                            sigma=f.sigma, floor=f.floor, exptime=f.exptime) for f in frames],
            "results": [r.__dict__ for r in res.values()]}, indent=1))
    print(f"wrote {out / 'report.md'}", file=sys.stderr)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
