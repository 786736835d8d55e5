#!/usr/bin/env python3
"""Comparison helper for fpack-ng's interoperability tests (tests/cli/interop.rs).

Needs python3 with numpy and astropy. Two ways to use it:

    python3 interop_check.py serve
        Reads one job per line on stdin, tab-separated:  ID <TAB> KIND <TAB> ARG...
        and answers one line per job on stdout:          ID <TAB> OK|FAIL|SKIP <TAB> failure or skip reason <TAB> notes
        (texts have tabs/newlines replaced). "ping" answers "OK" (used to check
        that numpy/astropy import). The process exits at end of input.

    python3 interop_check.py KIND ARG...
        Runs one job and prints its answer (for reproducing a failure by hand).

Kinds:
    restored ORIG BACK
        BACK is a decompressed file (e.g. cfitsio funpack's output) that should
        hold ORIG losslessly. Per HDU: header cards identical in order, except
        structural, CHECKSUM/DATASUM and quantization-related cards; data units
        byte-identical, except that for floating-point images only NaN
        *positions* must agree (cfitsio canonicalises NaN bits); astropy's
        scaled arrays equal (dtype, shape, values, NaN positions).
    values A B [FZ]
        Two decompressions of the same .fz (funpack-ng's and cfitsio funpack's):
        same HDUs, same BITPIX/NAXISn/BSCALE/BZERO; data bit-identical except
        NaN bits (NaN positions must agree). Header card differences are notes.
        With FZ: if A and B differ but astropy's own decoding of FZ equals A
        exactly, answer SKIP (B's decoder, cfitsio funpack, is the odd one).
    astropy_fz FZ REF [strict_nan]
        astropy opens the compressed file FZ (decompressing it itself); each
        image array must equal REF's (an original, or funpack-ng's output of a
        quantized file): dtype, shape, NaN positions, non-NaN bits; with
        strict_nan NaN bits too. An empty primary that fpack adds in front of
        an image primary is skipped.
    quant_error ORIG BACK
        Notes (never fails) the largest |difference| between float images.
"""

import sys
import traceback
import warnings

import numpy as np

warnings.simplefilter("ignore")

from astropy.io import fits  # noqa: E402

BLOCK = 2880

STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT",
              "GCOUNT", "END"}
CHECKSUMS = {"CHECKSUM", "DATASUM"}
QUANT = {"ZQUANTIZ", "ZDITHER0"}
# funpack writes these HISTORY cards after dequantizing a quantized image.
QUANT_HISTORY = ("scaled integer quantization", "quantized level scaling parameter",
                 "Pixel Quantization Algorithm")


def keyword_of(card):
    if card.startswith("HIERARCH "):
        return "HIERARCH"
    return card[:8].rstrip()


def is_structural(kw):
    if kw in STRUCTURAL:
        return True
    if kw.startswith("NAXIS") and kw[5:].isdigit():
        return True
    return False


def quant_history(card):
    return keyword_of(card) == "HISTORY" and any(h in card for h in QUANT_HISTORY)


class RawHdu:
    def __init__(self, cards, data, fill, index):
        self.cards = cards
        self.data = data
        self.fill = fill
        self.index = index
        self.kv = {}
        for c in cards:
            kw = keyword_of(c)
            if kw in self.kv or "=" != c[8:9]:
                continue
            v = c[10:].split("/")[0].strip() if not c[10:].lstrip().startswith("'") else c[10:].strip()
            self.kv[kw] = v

    def num(self, kw, default=None):
        v = self.kv.get(kw)
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            try:
                return float(v.replace("D", "E"))
            except ValueError:
                return v

    @property
    def bitpix(self):
        return self.num("BITPIX")

    @property
    def axes(self):
        n = self.num("NAXIS", 0)
        return [self.num("NAXIS%d" % i, 0) for i in range(1, n + 1)]

    def is_image(self):
        if self.index == 0:
            return True
        x = self.kv.get("XTENSION", "").strip("' ").upper()
        return x == "IMAGE"


def raw_hdus(path):
    with open(path, "rb") as f:
        blob = f.read()
    out = []
    pos = 0
    while pos < len(blob):
        if blob[pos:pos + BLOCK].strip(b"\0 ") == b"" and out:
            break  # trailing padding
        cards = []
        end = None
        p = pos
        while p + 80 <= len(blob):
            c = blob[p:p + 80].decode("ascii", "replace")
            p += 80
            if c.startswith("END") and c[3:].strip() == "":
                end = p
                break
            cards.append(c)
        if end is None:
            raise ValueError("%s: no END card in HDU %d" % (path, len(out)))
        hdr_end = (end + BLOCK - 1) // BLOCK * BLOCK
        h = RawHdu(cards, b"", b"", len(out))
        axes = h.axes
        n = 1
        for a in axes:
            n *= a
        if not axes:
            n = 0
        size = abs(h.bitpix) // 8 * h.num("GCOUNT", 1) * (h.num("PCOUNT", 0) + n)
        h.data = blob[hdr_end:hdr_end + size]
        if len(h.data) != size:
            raise ValueError("%s: HDU %d data unit truncated" % (path, len(out)))
        dend = (hdr_end + size + BLOCK - 1) // BLOCK * BLOCK
        h.fill = blob[hdr_end + size:dend]
        out.append(h)
        pos = dend
    return out


def float_dtype(bitpix):
    return {-32: (">f4", ">u4"), -64: (">f8", ">u8")}[bitpix]


def compare_float_bytes(da, db, bitpix, strict_nan, where):
    fdt, udt = float_dtype(bitpix)
    x = np.frombuffer(da, fdt)
    y = np.frombuffer(db, fdt)
    if x.shape != y.shape:
        return ["%s: %d vs %d values" % (where, x.size, y.size)], []
    nx, ny = np.isnan(x), np.isnan(y)
    fails, notes = [], []
    if not np.array_equal(nx, ny):
        fails.append("%s: NaN positions differ (%d vs %d NaNs, first mismatch at flat index %d)" % (
            where, nx.sum(), ny.sum(), int(np.argmax(nx != ny))))
        return fails, notes
    ux = np.frombuffer(da, udt)
    uy = np.frombuffer(db, udt)
    bad = (ux != uy) & ~nx
    if bad.any():
        i = int(np.argmax(bad))
        fails.append("%s: %d non-NaN values differ (first at flat index %d: %r vs %r)" % (
            where, int(bad.sum()), i, x[i], y[i]))
    nanbits = (ux != uy) & nx
    if nanbits.any():
        msg = "%s: NaN bit patterns differ (%d NaNs, e.g. 0x%x vs 0x%x)" % (
            where, int(nanbits.sum()), int(ux[np.argmax(nanbits)]), int(uy[np.argmax(nanbits)]))
        (fails if strict_nan else notes).append(msg)
    return fails, notes


def first_diff(a, b):
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.frombuffer(a[:n], np.uint8)
    y = np.frombuffer(b[:n], np.uint8)
    d = np.nonzero(x != y)[0]
    return int(d[0]) if d.size else n


def compare_data(ha, hb, strict_nan, where):
    if ha.is_image() and ha.bitpix in (-32, -64) and hb.bitpix == ha.bitpix:
        return compare_float_bytes(ha.data, hb.data, ha.bitpix, strict_nan, where)
    if ha.data != hb.data:
        return ["%s: data unit differs (%d vs %d bytes, first differing byte %d)" % (
            where, len(ha.data), len(hb.data), first_diff(ha.data, hb.data))], []
    return [], []


class Skip(Exception):
    """The comparison cannot be made (a known limitation of a reference tool)."""


def strip_trailing_blanks(cards):
    # cfitsio treats blank cards at the end of a header as free space and
    # writes new keywords (CHECKSUM) over them.
    while cards and cards[-1].strip() == "":
        cards = cards[:-1]
    return cards


def filtered_cards(h):
    out = []
    dropped = []
    for c in h.cards:
        kw = keyword_of(c)
        if is_structural(kw) or kw in CHECKSUMS or kw in QUANT:
            continue
        if quant_history(c):
            dropped.append(c.rstrip())
            continue
        out.append(c.rstrip())
    return strip_trailing_blanks(out), dropped


def card_diff(ca, cb):
    sa, sb = set(ca), set(cb)
    only_a = [c for c in ca if c not in sb]
    only_b = [c for c in cb if c not in sa]
    if not only_a and not only_b:
        for i, (x, y) in enumerate(zip(ca, cb)):
            if x != y:
                return "card order differs at filtered card %d: %r vs %r" % (i, x, y)
        return "card counts differ (%d vs %d: duplicates?)" % (len(ca), len(cb))
    return "missing %r; extra %r" % (only_a[:4], only_b[:4])


def astropy_arrays(path, hdus_expected=None):
    """[(index, kind, array or None)] for every HDU; kind 'image' or 'other'."""
    out = []
    with fits.open(path, memmap=False) as hl:
        for i, h in enumerate(hl):
            if h.is_image:
                d = h.data
                out.append((i, "image", None if d is None else np.array(d)))
            else:
                out.append((i, "other", None))
    return out


def compare_arrays(a, b, strict_nan, where):
    fails, notes = [], []
    if a is None or b is None:
        if (a is None) != (b is None):
            fails.append("%s: one array is empty (%s vs %s)" % (
                where, None if a is None else a.shape, None if b is None else b.shape))
        return fails, notes
    a = a.astype(a.dtype.newbyteorder("="), copy=False)
    b = b.astype(b.dtype.newbyteorder("="), copy=False)
    if a.dtype != b.dtype:
        fails.append("%s: dtype %s vs %s" % (where, a.dtype, b.dtype))
        return fails, notes
    if a.shape != b.shape:
        fails.append("%s: shape %s vs %s" % (where, a.shape, b.shape))
        return fails, notes
    if a.dtype.kind == "f":
        x = np.ascontiguousarray(a).ravel()
        y = np.ascontiguousarray(b).ravel()
        nx, ny = np.isnan(x), np.isnan(y)
        if not np.array_equal(nx, ny):
            fails.append("%s: NaN positions differ (%d vs %d NaNs)" % (where, nx.sum(), ny.sum()))
            return fails, notes
        ui = np.dtype("u%d" % x.dtype.itemsize)
        ux, uy = x.view(ui), y.view(ui)
        bad = (ux != uy) & ~nx
        if bad.any():
            i = int(np.argmax(bad))
            fails.append("%s: %d of %d values differ (first at flat index %d: %r vs %r)" % (
                where, int(bad.sum()), x.size, i, x[i], y[i]))
        nb = (ux != uy) & nx
        if nb.any():
            (fails if strict_nan else notes).append("%s: NaN bit patterns differ" % where)
    else:
        if not np.array_equal(a, b):
            bad = np.ascontiguousarray(a).ravel() != np.ascontiguousarray(b).ravel()
            i = int(np.argmax(bad))
            fails.append("%s: %d of %d values differ (first at flat index %d: %r vs %r)" % (
                where, int(bad.sum()), a.size, i, a.ravel()[i], b.ravel()[i]))
    return fails, notes


def job_restored(orig, back):
    fails, notes = [], []
    a, b = raw_hdus(orig), raw_hdus(back)
    if len(a) != len(b):
        return ["HDU count %d in original vs %d restored" % (len(a), len(b))], notes
    for ha, hb in zip(a, b):
        where = "HDU %d" % ha.index
        for kw in ("BITPIX",):
            if ha.num(kw) != hb.num(kw):
                fails.append("%s: %s %r vs %r" % (where, kw, ha.num(kw), hb.num(kw)))
        if ha.axes != hb.axes:
            fails.append("%s: axes %r vs %r" % (where, ha.axes, hb.axes))
        ca, da = filtered_cards(ha)
        cb, db = filtered_cards(hb)
        if ca != cb:
            fails.append("%s: header cards differ: %s" % (where, card_diff(ca, cb)))
        if db and not da:
            notes.append("%s: restored header has quantization HISTORY cards: %r" % (where, db))
        if not fails:
            f, n = compare_data(ha, hb, False, where)
            fails += f
            notes += n
    if fails:
        return fails, notes
    # Scaled arrays through astropy (dtype after BSCALE/BZERO, NaN positions).
    xa, xb = astropy_arrays(orig), astropy_arrays(back)
    for (i, ka, aa), (_, kb, ab) in zip(xa, xb):
        if ka == "image":
            f, n = compare_arrays(aa, ab, False, "HDU %d (astropy, scaled)" % i)
            fails += f
            notes += n
    return fails, notes


def job_values(a_path, b_path):
    fails, notes = [], []
    a, b = raw_hdus(a_path), raw_hdus(b_path)
    if len(a) != len(b):
        return ["HDU count %d vs %d" % (len(a), len(b))], notes
    for ha, hb in zip(a, b):
        where = "HDU %d" % ha.index
        bad = False
        for kw in ("BITPIX", "BSCALE", "BZERO", "BLANK"):
            if ha.num(kw) != hb.num(kw):
                fails.append("%s: %s %r vs %r" % (where, kw, ha.num(kw), hb.num(kw)))
                bad = True
        if ha.axes != hb.axes:
            fails.append("%s: axes %r vs %r" % (where, ha.axes, hb.axes))
            bad = True
        if not bad:
            f, n = compare_data(ha, hb, False, where)
            fails += f
            notes += n
        ca = strip_trailing_blanks([c.rstrip() for c in ha.cards if keyword_of(c) not in CHECKSUMS])
        cb = strip_trailing_blanks([c.rstrip() for c in hb.cards if keyword_of(c) not in CHECKSUMS])
        if ca != cb:
            notes.append("%s: header cards differ from cfitsio funpack's: %s" % (where, card_diff(ca, cb)))
    return fails, notes


def plio_bzero_hdus(fz):
    """Indices of PLIO_1 tiles with BZERO=32768: cfitsio stores those as unsigned
    values, astropy (8.0) decodes them as raw int16 and adds BZERO again."""
    out = set()
    with fits.open(fz, disable_image_compression=True) as hl:
        for i, h in enumerate(hl):
            hd = h.header
            if hd.get("ZCMPTYPE", "").strip() == "PLIO_1" and hd.get("ZBITPIX") == 16 \
                    and hd.get("BZERO") == 32768:
                out.add(i)
    return out


def has_64bit_uncompressed_column(fz):
    with fits.open(fz, disable_image_compression=True) as hl:
        for h in hl:
            if h.header.get("ZIMAGE") and h.header.get("ZBITPIX") == 64:
                for c in h.columns:
                    if c.name == "UNCOMPRESSED_DATA" and "K" in str(c.format):
                        return True
    return False


def job_values_tiebreak(ours, ref, fz):
    """values(ours, ref); when they differ and FZ is given, ask astropy as a
    third decoder: if astropy's reading of FZ is bit-identical to OURS (NaN
    bits aside), cfitsio funpack is the odd one out: SKIP with the details."""
    fails, notes = job_values(ours, ref)
    if not fails or fz is None:
        return fails, notes
    try:
        f2, _ = job_astropy_fz(fz, ours)
    except Skip:
        return fails, notes
    except Exception:
        return fails, notes
    if not f2:
        raise Skip("cfitsio funpack disagrees with funpack-ng, but astropy's decoding of the same "
                   ".fz is identical to funpack-ng's (cfitsio funpack quirk): %s" % "; ".join(fails))
    return fails, notes


def job_astropy_fz(fz, ref, strict_nan=False):
    fails, notes = [], []
    try:
        xf = astropy_arrays(fz)
    except UnboundLocalError:
        if has_64bit_uncompressed_column(fz):
            raise Skip("astropy 8.0 cannot read 64-bit tiles stored in an UNCOMPRESSED_DATA "
                       "1PK column (UnboundLocalError in _column_dtype)")
        raise
    xr = astropy_arrays(ref)
    plio = plio_bzero_hdus(fz)
    # fpack puts an empty primary in front when the original primary has data.
    if (len(xf) == len(xr) + 1 and xf[0][2] is None and xr and xr[0][1] == "image"
            and xr[0][2] is not None):
        xf = xf[1:]
    if len(xf) != len(xr):
        return ["astropy sees %d HDUs in the .fz, reference has %d" % (len(xf), len(xr))], notes
    for (i, kf, af), (j, kr, ar) in zip(xf, xr):
        where = "fz HDU %d vs HDU %d" % (i, j)
        if kf != kr:
            fails.append("%s: kinds %s vs %s" % (where, kf, kr))
            continue
        if kf == "image":
            f, n = compare_arrays(af, ar, strict_nan, where)
            if f and i in plio and af is not None and ar is not None and af.shape == ar.shape:
                d = np.unique(af.astype(np.int64) - ar.astype(np.int64))
                if set(d.tolist()) <= {-32768, 0, 32768}:
                    raise Skip("%s: astropy misreads PLIO_1 with BZERO=32768 (values off by "
                               "exactly 32768; cfitsio's convention stores unsigned values)" % where)
            fails += f
            notes += n
    return fails, notes


def job_quant_error(orig, back):
    notes = []
    xa, xb = astropy_arrays(orig), astropy_arrays(back)
    for (i, ka, aa), (_, kb, ab) in zip(xa, xb):
        if ka == "image" and aa is not None and ab is not None and aa.dtype.kind == "f" \
                and aa.shape == ab.shape:
            fin = np.isfinite(aa) & np.isfinite(ab)
            if fin.any():
                notes.append("HDU %d max|err| %.4g" % (i, float(np.max(np.abs(
                    aa[fin].astype(np.float64) - ab[fin].astype(np.float64))))))
    return [], notes


JOBS = {
    "restored": lambda args: job_restored(args[0], args[1]),
    "values": lambda args: job_values_tiebreak(args[0], args[1], args[2] if len(args) > 2 else None),
    "astropy_fz": lambda args: job_astropy_fz(args[0], args[1], len(args) > 2 and args[2] == "strict_nan"),
    "quant_error": lambda args: job_quant_error(args[0], args[1]),
    "ping": lambda args: ([], []),
}


def clean(s):
    return s.replace("\t", " ").replace("\n", " | ").replace("\r", " ")


def answer(job_id, kind, args):
    try:
        fails, notes = JOBS[kind](args)
    except Skip as e:
        return "%s\tSKIP\t%s\t" % (job_id, clean(str(e)))
    except Exception as e:  # a crash in the comparison is a failure of the job
        fails, notes = ["comparison crashed: %s: %s (%s)" % (
            type(e).__name__, e, traceback.format_exc(limit=3))], []
    status = "FAIL" if fails else "OK"
    return "%s\t%s\t%s\t%s" % (job_id, status, clean("; ".join(fails)), clean("; ".join(notes)))


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        for line in sys.stdin:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            print(answer(parts[0], parts[1], parts[2:]), flush=True)
        return 0
    if len(sys.argv) >= 2 and sys.argv[1] in JOBS:
        line = answer("cli", sys.argv[1], sys.argv[2:])
        print(line.replace("\t", "\n"))
        return 1 if "\tFAIL\t" in line else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
