"""astropy.io.fits reads and writes fpack-ng's non-standard codecs, with no
import of fpackng: the start-up hook registers them (run in every astropy
venv of scripts/test-python.sh: 6.0, 6.1, newest 7.x, newest 8.x)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import warnings

import numpy as np
import astropy
import pytest
from astropy.io import fits

import fpackng
from conftest import CORPUS, CUBE, IMAGES, REPO, frame
from test_api import cube_only

NEW = [c for c in fpackng.codecs() if not c.standard]


def images(path, **kw):
    hdul = fits.open(path, **kw)
    return hdul, [h for h in hdul if h.is_image and h.data is not None and h.data.size]


def assert_same_images(original, other):
    for kw in ({"do_not_scale_image_data": True}, {}):
        ha, a = images(original, **kw)
        hb, b = images(other, **kw)
        with ha, hb:
            assert len(a) == len(b) > 0, (original, other)
            for x, y in zip(a, b):
                assert x.data.shape == y.data.shape and x.data.dtype.newbyteorder("=") == y.data.dtype.newbyteorder("=")
                assert np.array_equal(x.data, y.data, equal_nan=x.data.dtype.kind == "f"), other


def test_hook_registers_at_astropy_import():
    code = ("import sys; assert 'fpackng' not in sys.modules and 'astropy' not in sys.modules\n"
            "from astropy.io import fits\n"
            "from astropy.io.fits.hdu.compressed import _tiled_compression as t\n"
            "print(' '.join(sorted(t.ALGORITHMS)))")
    out = subprocess.run([sys.executable, "-W", "error:fpackng", "-c", code], check=True,
                         capture_output=True, text=True).stdout.split()
    assert NEW and all(c.name in out for c in NEW), out


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """Files written by fpack-ng (the library's compress_file) from corpus
    frames with each non-standard codec: [(original, packed, ZCMPTYPE)]."""
    out = []
    d = tmp_path_factory.mktemp("packed")
    for c in NEW:
        for name in [CUBE] if cube_only(c) else IMAGES:
            # Tiles smaller than the images, so that sections cross tile edges.
            tile = None if name == CUBE else (40, 33)
            target = fpackng.compress_file(frame(name), d / f"{c.name}-{os.path.basename(name)}.fz",
                                           codec=c.name, tile_shape=tile)
            with fits.open(target, disable_image_compression=True) as h:
                types = {x.header.get("ZCMPTYPE") for x in h if x.header.get("ZIMAGE")}
            out += [(frame(name), target, t) for t in types]
    return out


def test_reads_every_codec_identically_with_sections(packed):
    seen = {t for _, _, t in packed}
    assert {c.name for c in NEW} <= seen, seen
    for original, target, _ in packed:
        assert_same_images(original, target)
        ha, a = images(original, do_not_scale_image_data=True)
        hb, b = images(target, do_not_scale_image_data=True)
        with ha, hb:
            for x, y in zip(a, b):
                assert isinstance(y, fits.CompImageHDU)
                shape = x.data.shape
                for sl in [tuple(slice(n // 4, n - n // 3) for n in shape),
                           tuple(slice(1, n, 3) for n in shape),
                           (min(5, shape[0] - 1),) + tuple(slice(3, 9) for _ in shape[1:])]:
                    assert np.array_equal(x.data[sl], y.section[sl]), (target, sl)


@pytest.mark.parametrize("codec", [c.name for c in NEW if c.can_encode and "uint16" in c.dtypes])
def test_writes_through_compimagehdu(codec, tmp_path):
    c = fpackng.codec(codec)
    name, tile = (CUBE, (6, 2, 32, 128)) if cube_only(c) else (IMAGES[0], (33, 40))
    _, originals = images(frame(name))
    written = tmp_path / f"astropy-{codec}.fits.fz"
    hdus = [fits.PrimaryHDU()] + [fits.CompImageHDU(x.data, x.header, compression_type=codec, tile_shape=tile)
                                  for x in originals]
    fits.HDUList(hdus).writeto(written)
    assert f"ZCMPTYPE= '{codec}".encode() in written.read_bytes()
    assert_same_images(frame(name), written)                       # astropy reads its own file
    restored = fpackng.decompress_file(written, tmp_path / "restored.fits")   # funpack-ng's library
    assert_same_images(frame(name), restored)
    binary = os.environ.get("FUNPACK_NG")
    if binary:                                                     # and its command line
        subprocess.run([binary, "-O", str(tmp_path / "cli.fits"), str(written)], check=True)
        assert_same_images(frame(name), tmp_path / "cli.fits")
    # Debian's funpack (libcfitsio) with the library of the wheel preloaded,
    # wherever it reads this astropy's RICE_1 file written the same way (it
    # does not read astropy 6.x's: "Extension doesn't start with XTENSION").
    funpack = shutil.which("funpack")
    assert funpack, "Debian's funpack is missing (scripts/install-deps.sh installs it)"
    control = tmp_path / "rice.fits.fz"
    fits.HDUList([fits.PrimaryHDU()] + [fits.CompImageHDU(x.data, x.header, compression_type="RICE_1", tile_shape=tile)
                                        for x in originals]).writeto(control)
    if subprocess.run([funpack, "-O", str(tmp_path / "control.fits"), str(control)], capture_output=True).returncode == 0:
        subprocess.run([funpack, "-O", str(tmp_path / "debian.fits"), str(written)], check=True,
                       env={**os.environ, "LD_PRELOAD": str(fpackng._lib.library_path())})
        assert_same_images(frame(name), tmp_path / "debian.fits")
    else:
        print(f"Debian funpack does not read astropy {astropy.__version__}'s RICE_1 either: not compared")
    # A pixel type the codec cannot code: a clear error, not a silent RICE_1.
    with pytest.raises((ValueError, fpackng.FpackngError), match=codec):
        fits.CompImageHDU(np.zeros((8, 8), np.float64), compression_type=codec,
                          quantize_level=0).writeto(tmp_path / "bad.fz")


@pytest.mark.parametrize("codec", ["JXL_1", "MIXPRED_1"])
def test_reads_what_cfitsio_programs_write_through_the_shim(codec, tmp_path):
    """Debian's fpack and imcopy as `fpack-ng shim --write CODEC` runs them
    (the wheel's library preloaded, FPACKNG_SHIM_WRITE=CODEC) write CODEC
    tiles, which astropy reads back identically."""
    fpack, imcopy = shutil.which("fpack"), shutil.which("imcopy")
    assert fpack and imcopy, "Debian's fpack/imcopy are missing (scripts/install-deps.sh installs them)"
    env = {**os.environ, "LD_PRELOAD": str(fpackng._lib.library_path()), "FPACKNG_SHIM_WRITE": codec}
    for name in IMAGES:
        by_fpack = tmp_path / f"fpack-{codec}-{os.path.basename(name)}.fz"
        subprocess.run([fpack, "-O", str(by_fpack), str(frame(name))], check=True, env=env)
        by_imcopy = tmp_path / f"imcopy-{codec}-{os.path.basename(name)}.fz"
        single = tmp_path / f"single-{os.path.basename(name)}"
        with fits.open(frame(name)) as h:
            first = next(k for k, x in enumerate(h) if x.is_image and x.data is not None and x.data.size)
        subprocess.run([imcopy, f"{frame(name)}[{first}]", str(single)], check=True)
        subprocess.run([imcopy, f"{frame(name)}[{first}]", f"{by_imcopy}[compress]"], check=True, env=env)
        for written, original in [(by_fpack, frame(name)), (by_imcopy, single)]:
            with fits.open(written, disable_image_compression=True) as h:
                assert {x.header.get("ZCMPTYPE") for x in h if x.header.get("ZIMAGE")} == {codec}, written
            assert_same_images(original, written)


# 8- and 16-bit fixtures (the 4-axis cube goes through fpack only: cfitsio
# writes images of at most 3 axes itself).
FIXTURES_8_16 = ["bitpix8.fits", "bitpix16.fits", "uint16.fits", "cube3d.fits", "cube4d.fits",
                 "flat_constant.fits", "headers.fits", "onecol.fits", "onerow.fits",
                 "plio_mask.fits", "tiny.fits", "mef_tables.fits", "primary_plus_ext.fits"]


def first_image(path):
    with fits.open(path, do_not_scale_image_data=True) as h:
        return next((k, x.data.ndim, x.header["BITPIX"]) for k, x in enumerate(h)
                    if x.is_image and x.data is not None and x.data.size)


@pytest.mark.parametrize("codec", ["JXL_1", "MIXPRED_1"])
def test_reads_every_frame_that_cfitsio_programs_write_through_the_shim(codec, tmp_path):
    """Every corpus frame and 8/16-bit fixture (for MIXPRED_1 also the 32-bit
    and floating-point ones) written under `fpack-ng shim
    --write CODEC` by Debian fpack, imcopy and a C program calling
    fits_set_compression_type reads back identically in astropy. JXL_1 at
    effort 1 (the same decoder; effort 7 would take minutes per astropy
    line); JXL_1 only where the first image has 8 or 16 bits. In the newest
    astropy line only (minutes of work); the older lines read two frames
    written so in the test above."""
    if int(astropy.__version__.split(".")[0]) < 8:
        pytest.skip("every frame in the newest astropy line only")
    fpack, imcopy, gcc = shutil.which("fpack"), shutil.which("imcopy"), shutil.which("gcc")
    assert fpack and imcopy and gcc, "Debian's fpack/imcopy and gcc are missing (scripts/install-deps.sh)"
    writer = tmp_path / "write_image"
    source = REPO / "cfitsio-shim" / "tests" / "c" / "write_image.c"
    subprocess.run([gcc, "-O1", "-o", str(writer), str(source), "-lcfitsio"], check=True)
    choice = "JXL_1,effort=1" if codec == "JXL_1" else codec
    env = {**os.environ, "LD_PRELOAD": str(fpackng._lib.library_path()), "FPACKNG_SHIM_WRITE": choice}
    inputs = sorted(p for d in ("test", "train", "cubes") for p in (CORPUS / d).glob("*.fits"))
    assert len(inputs) >= 38, inputs
    inputs += [REPO / "fixtures" / f for f in FIXTURES_8_16]
    if codec == "MIXPRED_1":
        # The fast codec also codes 32-bit integers and quantized floats.
        inputs += [REPO / "fixtures" / f for f in ("bitpix32.fits", "int32_bzero.fits", "float32.fits",
                                                    "float64.fits", "float32_noise_only.fits")]
    checked = 0
    for path in inputs:
        first, ndim, bitpix = first_image(path)
        if codec == "JXL_1" and bitpix not in (8, 16):
            continue
        written = []
        by_c = tmp_path / f"c-{path.name}.fz"
        by_fpack = tmp_path / f"fpack-{path.name}.fz"
        subprocess.run([fpack, "-O", str(by_fpack), str(path)], check=True, env=env)
        written.append((by_fpack, path))
        if ndim <= 3:
            single = tmp_path / f"single-{path.name}"
            subprocess.run([imcopy, f"{path}[{first}]", str(single)], check=True)
            by_imcopy = tmp_path / f"imcopy-{path.name}.fz"
            subprocess.run([imcopy, f"{path}[{first}]", f"{by_imcopy}[compress]"], check=True, env=env)
            subprocess.run([str(writer), f"{path}[{first}]", str(by_c)], check=True, env=env)
            written += [(by_imcopy, single), (by_c, single)]
        for out, original in written:
            with fits.open(out, disable_image_compression=True) as h:
                names = {x.header.get("ZCMPTYPE") for x in h if x.header.get("ZIMAGE")}
            assert codec in names, (out, names)
            # Stored integers (the C program writes them without BSCALE);
            # floating-point images are quantized with a clock-seeded dither
            # by cfitsio, so only their shape is compared.
            ha, a = images(original, do_not_scale_image_data=True)
            hb, b = images(out, do_not_scale_image_data=True)
            with ha, hb:
                assert len(a) == len(b) > 0, out
                for x, y in zip(a, b):
                    assert x.data.shape == y.data.shape, out
                    if x.header["BITPIX"] > 0:
                        assert np.array_equal(x.data, y.data), out
            if out != by_c and not any(x.header["BITPIX"] < 0 for x in a):
                assert_same_images(original, out)
            checked += 1
        for out, _ in written:
            out.unlink()
    assert checked >= 100, checked


def test_a_renamed_astropy_name_warns_once_and_import_works(tmp_path):
    """Simulates a future astropy: without the start-up hook (-S), remove a
    name the plugin needs, then register: one warning naming it, nothing
    registered, and astropy's own error for the file."""
    target = fpackng.compress_file(frame(IMAGES[0]), tmp_path / "x.fz", codec=next(c for c in NEW if not cube_only(c)).name)
    code = f"""
import sys, warnings
sys.path.append({sysconfig.get_paths()["purelib"]!r}); sys.path.append({sysconfig.get_paths()["platlib"]!r})
from astropy.io import fits
from astropy.io.fits.hdu.compressed import _tiled_compression as t
kept = t._update_tile_settings
del t._update_tile_settings
import fpackng
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    assert fpackng.register_astropy() == []
t._update_tile_settings = kept
assert len(caught) == 1 and "_update_tile_settings" in str(caught[0].message), [str(w.message) for w in caught]
try:
    fits.open({str(target)!r})[1].data
except (ValueError, TypeError) as e:
    print("astropy refused:", e)
else:
    raise SystemExit("read without the plugin")
"""
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "astropy refused" in result.stdout
