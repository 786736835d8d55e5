#!/usr/bin/env python3
"""JPEG-XL (JXL_1) benchmark for fpack-ng: ratio, tiling, effort and speed.

Measurement only (nothing is trained or tuned on the frames). Prints markdown:

 1. Per frame, train and test separately: ratio = raw pixel bytes / compressed
    table bytes (NAXIS1*NAXIS2+PCOUNT of each ZIMAGE HDU, read with astropy) of
    fpack-ng JXL_1 whole image as one tile (-w) at effort 7 and 9, next to
    imagecodecs' JPEG-XL lossless on the same pixels and efforts; fpack-ng with
    the default JXL_1 tiling; Debian fpack Rice; file ratio (FITS / .fz).
 2. Tiling: aggregate ratio, encode/decode MB/s (1 and 2 threads) for the
    whole image, 2048², 1024², 512², 256² tiles and 256-row strips, effort 7.
 3. Effort 1, 3, 5, 7, 9 (--efforts adds 10) with the default tiling.
 4. Encode/decode MB/s of JXL_1 next to Rice (fpack-ng and Debian fpack).

imagecodecs sizes are codestream bytes (its ISO-BMFF container boxes, ~49
bytes per image, are not counted: JXL_1 stores bare codestreams). The pixels
given to imagecodecs are what JXL_1 codes: the stored integers of
16-bit images plus 32768, as uint16 (for BZERO=32768 data these are the
physical values astropy returns; for signed int16 without BZERO it is the
same +32768 offset); 8-bit images as they are. Every fpack-ng output is
decoded with funpack-ng and compared with the source (stored integers and
shape of every image HDU, numpy array_equal) before its numbers count;
failures are listed at the end and left out of every figure.

Speeds are MB/s of raw pixel data (1e6 bytes), whole processes timed, best of
--repeat; fpack-ng's encode time includes its own verification (every tile
decoded again before the output is renamed into place). imagecodecs times are
in-process, one thread, no file I/O.

Usage:
    python3 bench/jxl_bench.py [--quick] [--no-build] [--repeat N]
                               [--efforts 1,3,5,7,9] [PATH...]
PATH: FITS files or directories (default: the shared corpus train/ and test/);
frames are grouped by the name of their directory. --quick: two small frames.
--no-build: use the binaries already in the target directory.
--codec FLAG replaces --jxl (e.g. -r) to test the plumbing without JXL_1.
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
import bench  # noqa: E402  (find_bins, best_time, fits_files: one way of building and timing)

ROOT = bench.ROOT
QUICK = ["train/saao1m_ste3_a8280271.fits", "test/hst_stis_ocoa03q2q_raw.fits"]
THREADS = (1, 2)


def corpus_dir():
    for d in [ROOT, *ROOT.parents]:
        if (d / "shared/corpus").is_dir():
            return d / "shared/corpus"
    sys.exit("no shared/corpus found above the repository; give PATHs")


def target_bins(build):
    if build:
        return bench.find_bins()
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/fpack-ng/target")) / "release"
    return target / "fpack-ng", target / "funpack-ng"


# ---------------------------------------------------------------- FITS access

def source_images(path):
    """Stored integers of every image HDU with data, in file order."""
    out = []
    with fits.open(path, do_not_scale_image_data=True, memmap=False) as hdul:
        for h in hdul:
            if h.is_image and h.header.get("NAXIS", 0) > 0 and h.data is not None:
                out.append(np.array(h.data))
    return out


def zimage_hdus(fz):
    """Per compressed image HDU: algorithm, shape (numpy order), raw and table bytes, tile."""
    out = []
    with fits.open(fz, disable_image_compression=True) as hdul:
        for h in hdul:
            hd = h.header
            if not hd.get("ZIMAGE"):
                continue
            n = hd["ZNAXIS"]
            shape = tuple(hd[f"ZNAXIS{i}"] for i in range(n, 0, -1))
            tile = tuple(hd.get(f"ZTILE{i}", 1) for i in range(1, n + 1))
            out.append(dict(cmp=hd["ZCMPTYPE"].strip(), shape=shape, tile=tile,
                            raw=int(np.prod(shape)) * abs(hd["ZBITPIX"]) // 8,
                            data=hd["NAXIS1"] * hd["NAXIS2"] + hd.get("PCOUNT", 0)))
    return out


def compare(src_images, decoded):
    """None when every image HDU of `decoded` equals the source, else why not."""
    got = source_images(decoded)
    if len(got) != len(src_images):
        return f"{len(got)} image HDUs decoded, {len(src_images)} in the source"
    for i, (a, b) in enumerate(zip(src_images, got)):
        if a.shape != b.shape or a.dtype.itemsize != b.dtype.itemsize or a.dtype.kind != b.dtype.kind:
            return f"image {i}: {b.dtype}{b.shape} decoded, {a.dtype}{a.shape} in the source"
        if not np.array_equal(a, b):
            return f"image {i}: {(a != b).sum()} pixels differ"
    return None


def jxl_pixels(a):
    """What JXL_1 codes: 16-bit stored integers + 32768 as uint16, 8-bit as is; else None."""
    if a.dtype.itemsize == 2 and a.dtype.kind == "i":
        return (a.astype(np.int32) + 32768).astype(np.uint16)
    if a.dtype.itemsize == 2 and a.dtype.kind == "u":
        return a.astype(np.uint16)
    if a.dtype.itemsize == 1:
        return a.astype(np.uint8)
    return None


def codestream_bytes(c):
    """Bytes of the JPEG-XL codestream in `c`, without ISO-BMFF container boxes (imagecodecs
    always writes a container for 16-bit images; JXL_1 stores bare codestreams)."""
    if c[:2] == b"\xff\x0a":
        return len(c)
    n, i = 0, 0
    while i + 8 <= len(c):
        size, kind, head = int.from_bytes(c[i:i + 4], "big"), c[i + 4:i + 8], 8
        if size == 1:
            size, head = int.from_bytes(c[i + 8:i + 16], "big"), 16
        elif size == 0:
            size = len(c) - i
        if kind == b"jxlc":
            n += size - head
        elif kind == b"jxlp":
            n += size - head - 4
        i += size
    return n


# ------------------------------------------------------------------- runners

class Runner:
    def __init__(self, args, work, fpack_ng, funpack_ng):
        self.args, self.work = args, work
        self.fpack_ng, self.funpack_ng = fpack_ng, funpack_ng
        self.cache = {}
        self.failures = []
        self.src = {}

    def images(self, f):
        if f not in self.src:
            self.src[f] = source_images(f)
        return self.src[f]

    def timed(self, cmd, out):
        def rm():
            out.unlink(missing_ok=True)
        return bench.best_time(cmd, self.args.repeat, rm)

    def fpack_ng_run(self, key, files, flags, speed=True):
        """Compress every file with fpack-ng `flags` (a function of the file), decode with
        funpack-ng, verify. Cached by key. Returns {file: result}; failed files are absent."""
        if key in self.cache:
            return self.cache[key]
        res = {}
        for f in files:
            fz, back = self.work / (f.stem + ".fz"), self.work / (f.stem + ".back.fits")
            enc, dec = {}, {}
            try:
                for t in (2, 1) if speed else (2,):
                    enc[t] = self.timed([self.fpack_ng, *flags(f), "--threads", str(t), "-O", fz, f], fz)
                for t in (2, 1) if speed else (2,):
                    dec[t] = self.timed([self.funpack_ng, "--threads", str(t), "-O", back, fz], back)
            except subprocess.CalledProcessError as e:
                err = (e.stderr or b"").decode(errors="replace").strip().splitlines()
                self.failures.append((key, f.name, f"{Path(e.cmd[0]).name} exit {e.returncode}: "
                                      + (err[-1] if err else "")))
                continue
            why = compare(self.images(f), back)
            if why:
                self.failures.append((key, f.name, why))
                continue
            hdus = zimage_hdus(fz)
            res[f] = dict(hdus=hdus, raw=sum(h["raw"] for h in hdus), data=sum(h["data"] for h in hdus),
                          fsize=f.stat().st_size, fzsize=fz.stat().st_size, enc=enc, dec=dec)
            fz.unlink(missing_ok=True)
            back.unlink(missing_ok=True)
        self.cache[key] = res
        return res

    def jxl(self, key, files, tile_flags, effort, speed=True):
        def flags(f):
            extra = ["--jxl-effort", str(effort)] if self.args.codec == "--jxl" else []
            return [self.args.codec, *extra, *tile_flags(f)]
        return self.fpack_ng_run(key, files, flags, speed)

    def debian_rice(self, files):
        """Debian fpack -r / funpack, one thread; verified like fpack-ng's outputs."""
        if "fpack" in self.cache:
            return self.cache["fpack"]
        res = {}
        for f in files:
            fz, back = self.work / (f.stem + ".ref.fz"), self.work / (f.stem + ".ref.fits")
            try:
                te = self.timed(["fpack", "-r", "-O", fz, f], fz)
                td = self.timed(["funpack", "-O", back, fz], back)
            except subprocess.CalledProcessError as e:
                self.failures.append(("Debian fpack -r", f.name, f"exit {e.returncode}"))
                continue
            why = compare(self.images(f), back)
            if why:
                self.failures.append(("Debian fpack -r", f.name, why))
                continue
            hdus = zimage_hdus(fz)
            res[f] = dict(hdus=hdus, raw=sum(h["raw"] for h in hdus), data=sum(h["data"] for h in hdus),
                          fsize=f.stat().st_size, fzsize=fz.stat().st_size, enc={1: te}, dec={1: td})
            fz.unlink(missing_ok=True)
            back.unlink(missing_ok=True)
        self.cache["fpack"] = res
        return res

    def imagecodecs(self, f, effort):
        """Per image HDU: (raw bytes, codestream bytes, encode s, decode s) or None if not coded."""
        import imagecodecs
        key = ("ic", f, effort)
        if key in self.cache:
            return self.cache[key]
        out = []
        for a in self.images(f):
            p = jxl_pixels(a)
            if p is None:
                out.append(None)
                continue
            planes = p.reshape(-1, *p.shape[-2:]) if p.ndim > 2 else [p]
            size = te = td = 0
            for pl in planes:
                pl = np.ascontiguousarray(pl)
                best_e = best_d = float("inf")
                for _ in range(self.args.repeat):
                    t = time.perf_counter()
                    c = imagecodecs.jpegxl_encode(pl, lossless=True, effort=effort, numthreads=1)
                    best_e = min(best_e, time.perf_counter() - t)
                    t = time.perf_counter()
                    d = imagecodecs.jpegxl_decode(c, numthreads=1)
                    best_d = min(best_d, time.perf_counter() - t)
                if not np.array_equal(d, pl):
                    self.failures.append((f"imagecodecs e{effort}", f.name, "round trip differs"))
                size += codestream_bytes(c)
                te += best_e
                td += best_d
            out.append((p.nbytes, size, te, td))
        self.cache[key] = out
        return out


# -------------------------------------------------------------------- tables

def fmt(x, spec=".3f"):
    return "—" if x is None else format(x, spec)


def pct(x):
    return "—" if x is None else f"{x:.2f}%"


def ratio(results, files=None):
    rs = [results[f] for f in (files or results) if f in results]
    if not rs:
        return None
    return sum(r["raw"] for r in rs) / sum(r["data"] for r in rs)


def mbps(results, which, t, files=None):
    rs = [results[f] for f in (files or results) if f in results]
    if not rs or any(t not in r[which] for r in rs):
        return None
    return sum(r["raw"] for r in rs) / 1e6 / sum(r[which][t] for r in rs)


def jxl_vs_ic(run, r, f, effort):
    """(JXL_1 raw, JXL_1 bytes, imagecodecs raw, imagecodecs bytes) over the image HDUs that
    fpack-ng coded with JXL_1; over every HDU imagecodecs can code when fpack-ng's result is
    missing (then the fpack-ng sums are 0)."""
    ic = run.imagecodecs(f, effort)
    if r is None:
        got = [x for x in ic if x]
        return 0, 0, sum(x[0] for x in got), sum(x[1] for x in got)
    if len(r["hdus"]) != len(ic):
        run.failures.append((f"JXL_1 e{effort}", f.name, f"{len(r['hdus'])} ZIMAGE HDUs, {len(ic)} images"))
        return 0, 0, 0, 0
    pairs = [(h, x) for h, x in zip(r["hdus"], ic) if h["cmp"] == "JXL_1" and x]
    return (sum(h["raw"] for h, _ in pairs), sum(h["data"] for h, _ in pairs),
            sum(x[0] for _, x in pairs), sum(x[1] for _, x in pairs))


def div(a, b):
    return a / b if a and b else None


def table_frames(run, groups, whole7, whole9, deflt, rice):
    print("## 1. Per frame: JXL_1 (fpack-ng) vs imagecodecs JPEG-XL, default tiling, Rice\n")
    print("Ratio = raw pixel bytes / compressed table bytes (file ratio = FITS file / .fz in brackets). "
          "`w` = whole image as one tile (-w). `ng/ic` must be within 1% of 1 (✗ when not). "
          "Default-tiling loss = 1 − ratio(default)/ratio(w), effort 7.\n")
    flagged = []
    for name, files in groups.items():
        print(f"### {name}/\n")
        print("| frame | Mpix | JXL_1 w e7 | imagecodecs e7 | ng/ic e7 | JXL_1 w e9 | imagecodecs e9 | ng/ic e9 "
              "| JXL_1 default e7 (tile) | loss vs w | Rice (fpack) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        agg = {k: [0, 0] for k in ("w7", "ic7", "w9", "ic9", "d7", "rice")}
        for f in files:
            cells = [f.stem, f"{sum(a.size for a in run.images(f)) / 1e6:.2f}"]
            for eff, res in ((7, whole7), (9, whole9)):
                r = res.get(f)
                sums = jxl_vs_ic(run, r, f, eff)
                ng, ic = div(sums[0], sums[1]), div(sums[2], sums[3])
                q = div(ng, ic)
                bad = q is not None and abs(q - 1) > 0.01
                if bad:
                    flagged.append(f"{f.stem} e{eff}: {q:.4f}")
                cells += [(f"{fmt(ng)} ({r['fsize'] / r['fzsize']:.3f})" if r else "pending/failed"),
                          fmt(ic), fmt(q, ".4f") + (" ✗" if bad else "")]
                for k, v in zip((f"w{eff}", f"ic{eff}"), ((sums[0], sums[1]), (sums[2], sums[3]))):
                    agg[k][0] += v[0]; agg[k][1] += v[1]
            d, w = deflt.get(f), whole7.get(f)
            tile = "×".join(map(str, d["hdus"][0]["tile"][:2])) if d and d["hdus"] else ""
            cells.append(f"{fmt(ratio(deflt, [f]))} ({tile})" if d else "pending/failed")
            cells.append(pct(100 * (1 - ratio(deflt, [f]) / ratio(whole7, [f])) if d and w else None))
            cells.append(fmt(ratio(rice, [f])))
            if d:
                agg["d7"][0] += d["raw"]; agg["d7"][1] += d["data"]
            if f in rice:
                agg["rice"][0] += rice[f]["raw"]; agg["rice"][1] += rice[f]["data"]
            print("| " + " | ".join(cells) + " |")
        a = {k: (v[0] / v[1] if v[1] else None) for k, v in agg.items()}
        q7 = a["w7"] / a["ic7"] if a["w7"] and a["ic7"] else None
        q9 = a["w9"] / a["ic9"] if a["w9"] and a["ic9"] else None
        rd, rw = ratio(deflt, files), ratio(whole7, files)
        loss = 100 * (1 - rd / rw) if rd and rw else None
        print(f"| **all {name}** | {sum(a.size for f in files for a in run.images(f)) / 1e6:.2f} "
              f"| {fmt(a['w7'])} | {fmt(a['ic7'])} | {fmt(q7, '.4f')} | {fmt(a['w9'])} | {fmt(a['ic9'])} "
              f"| {fmt(q9, '.4f')} | {fmt(a['d7'])} | {pct(loss)} | {fmt(a['rice'])} |\n")
    print("ng/ic outside 1%: " + (", ".join(flagged) if flagged else "none") + "\n")


def speed_row(label, res, base=None):
    r = ratio(res)
    loss = f"{100 * (1 - r / base):.2f}%" if r and base else "—"
    return (f"| {label} | {fmt(r)} | {loss} | {fmt(mbps(res, 'enc', 1), '.2f')} | {fmt(mbps(res, 'enc', 2), '.2f')} "
            f"| {fmt(mbps(res, 'dec', 1), '.1f')} | {fmt(mbps(res, 'dec', 2), '.1f')} | {len(res)} |")


SPEED_HEAD = ("| {what} | ratio | {loss} | encode 1T | encode 2T | decode 1T | decode 2T | frames ok |\n"
              "|---|---|---|---|---|---|---|---|")


def recommend(rows, whole):
    """Tiling with ratio loss <= 2% vs whole image and the best 2-thread encode+decode time."""
    best = None
    for label, res in rows:
        r, e2, d2 = ratio(res), mbps(res, "enc", 2), mbps(res, "dec", 2)
        if not (r and whole and e2 and d2) or 1 - r / whole > 0.02:
            continue
        cost = 1 / e2 + 1 / d2  # seconds per MB to encode then decode
        if best is None or cost < best[1]:
            best = (label, cost, 100 * (1 - r / whole), e2, d2)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--quick", action="store_true", help="two small frames, one repeat")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--efforts", default="1,3,5,7,9")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--codec", default="--jxl", help="fpack-ng codec flag (default --jxl)")
    args = ap.parse_args()
    corpus = None if args.paths else corpus_dir()
    if args.quick:
        files = [corpus / q for q in QUICK] if corpus else list(bench.fits_files(args.paths))[:2]
    else:
        files = list(bench.fits_files(args.paths or [corpus / "train", corpus / "test"]))
    groups = {}
    for f in files:
        groups.setdefault(f.parent.name, []).append(f)
    fpack_ng, funpack_ng = target_bins(not args.no_build)
    work = Path(tempfile.mkdtemp(prefix="jxlbench-"))
    run = Runner(args, work, fpack_ng, funpack_ng)
    import imagecodecs
    fpack_v = subprocess.run(["fpack", "-V"], capture_output=True, text=True).stdout.strip()
    ng_v = subprocess.run([fpack_ng, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"# JXL_1 benchmark — {ng_v}, imagecodecs {imagecodecs.__version__} "
          f"({imagecodecs.jpegxl_version()}), Debian {fpack_v}\n")
    print(f"{len(files)} files, {os.cpu_count()} CPUs, best of {args.repeat}, "
          f"load average at start {os.getloadavg()[0]:.2f}, codec flag `{args.codec}`\n")

    def whole(f):
        return ["-w"]

    def default(f):
        return []

    def square(n):
        return lambda f: ["-t", f"{n},{n}"]

    def strips(f):
        width = max(a.shape[-1] for a in run.images(f))
        return ["-t", f"{width},256"]

    whole7 = run.jxl("JXL_1 -w e7", files, whole, 7)
    whole9 = run.jxl("JXL_1 -w e9", files, whole, 9, speed=False)
    deflt = run.jxl("JXL_1 default e7", files, default, 7)
    rice = run.debian_rice(files)
    table_frames(run, groups, whole7, whole9, deflt, rice)

    print("## 2. Tiling, effort 7, all frames\n")
    print("MB/s of raw pixel data; encode includes fpack-ng's verification decode. "
          "Tiles larger than an image are clipped to it.\n")
    print(SPEED_HEAD.format(what="tiling", loss="loss vs whole"))
    tilings = [("whole image (-w)", whole7)]
    for n in (2048, 1024, 512, 256):
        tilings.append((f"{n}×{n}", run.jxl(f"JXL_1 -t {n},{n} e7", files, square(n), 7)))
    tilings.append(("256-row strips", run.jxl("JXL_1 strips e7", files, strips, 7)))
    base = ratio(whole7)
    for label, res in tilings + [("default (no -t/-w)", deflt)]:
        print(speed_row(label, res, base))
    best = recommend(tilings, base)
    print("\nRecommended default tiling (loss ≤ 2% vs whole, fastest encode+decode on 2 threads): "
          + (f"**{best[0]}** (loss {best[2]:.2f}%, encode {best[3]:.2f} MB/s, decode {best[4]:.1f} MB/s on 2T)"
             if best else "none measured") + "\n")

    print("## 3. Effort, default tiling, all frames\n")
    print(SPEED_HEAD.format(what="effort", loss="loss vs e7"))
    e7 = ratio(deflt)
    for e in map(int, args.efforts.split(",")):
        res = deflt if e == 7 else run.jxl(f"JXL_1 default e{e}", files, default, e)
        print(speed_row(f"e{e}", res, e7))
    print()

    print("## 4. Speed: JXL_1 vs Rice, all frames\n")
    ng_rice = run.fpack_ng_run("fpack-ng -r", files, lambda f: ["-r"])
    print(SPEED_HEAD.format(what="codec", loss="—"))
    print(speed_row("fpack-ng JXL_1 default e7", deflt))
    print(speed_row("fpack-ng JXL_1 -w e7", whole7))
    print(speed_row("fpack-ng Rice", ng_rice))
    print(speed_row("Debian fpack Rice (1 thread)", rice))
    ic = [x for f in files for x in run.imagecodecs(f, 7) if x]
    if ic:
        raw, size, te, td = (sum(x[i] for x in ic) for i in range(4))
        print(f"| imagecodecs JPEG-XL e7 whole (in-process) | {raw / size:.3f} | — | {raw / 1e6 / te:.2f} | — "
              f"| {raw / 1e6 / td:.1f} | — | {len(files)} |")
    print(f"\nLoad average at end {os.getloadavg()[0]:.2f}.\n")

    print("## Failures (left out of every figure above)\n")
    grouped = {}
    for key, name, why in run.failures:
        grouped.setdefault((key, why), []).append(name)
    for (key, why), names in grouped.items():
        print(f"- {key}: {why} — " + (f"all {len(files)} files" if len(names) == len(files) else ", ".join(names)))
    if not run.failures:
        print("none")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
