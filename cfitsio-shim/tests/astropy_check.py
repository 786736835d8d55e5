"""Run by tests/astropy.rs with the python of a fresh virtual environment in
which fpackng-astropy was pip-installed. Nothing imports fpackng_astropy
here: the .pth hook must register the codecs by itself.

usage: astropy_check.py read ORIGINAL PACKED [ORIGINAL PACKED ...]
       astropy_check.py write CODEC TILE ORIGINAL OUT   (TILE: numpy order, a,b,...)
       astropy_check.py unsupported-version PACKED
       astropy_check.py without-package PACKED
"""

import sys
import warnings

import numpy as np

assert "astropy" not in sys.modules, "astropy was imported at start-up"
mode = sys.argv[1]


def standard_failure(fits, path):
    """astropy's own refusal of an algorithm it does not know: its header
    check raises ValueError (unknown ZCMPTYPE) or, for codecs with text
    ZVAL1/ZVAL2 such as IDF_1, TypeError (it compares them with 0)."""
    try:
        fits.open(path)[1].data
    except ValueError as e:
        assert "Unrecognized compression type" in str(e), e
    except TypeError as e:
        assert "not supported between instances of 'str' and 'int'" in str(e), e
    else:
        raise SystemExit("astropy read a new algorithm without fpackng_astropy")


def images(path):
    from astropy.io import fits

    hdul = fits.open(path, do_not_scale_image_data=True)
    return hdul, [h for h in hdul if h.is_image and h.data is not None and h.data.size]


if mode == "read":
    from astropy.io import fits

    args = sys.argv[2:]
    for original, packed in zip(args[0::2], args[1::2]):
        hdul_a, a = images(original)
        hdul_b, b = images(packed)
        assert len(a) == len(b), (original, len(a), len(b))
        for x, y in zip(a, b):
            assert isinstance(y, fits.CompImageHDU), type(y)
            assert np.array_equal(x.data, y.data), packed
            assert x.data.dtype.newbyteorder("=") == y.data.dtype.newbyteorder("="), (x.data.dtype, y.data.dtype)
            shape = x.data.shape
            for sl in [
                tuple(slice(n // 4, n - n // 3) for n in shape),
                tuple(slice(1, n, 3) for n in shape),
                tuple(slice(n - 1, n) for n in shape[:-1]) + (slice(None),),
                (min(5, shape[0] - 1),) + tuple(slice(3, 9) for n in shape[1:]),
            ]:
                assert np.array_equal(x.data[sl], y.section[sl]), (packed, sl)
        # scaled (physical) values too
        with fits.open(original) as fa, fits.open(packed) as fb:
            for x, y in zip([h for h in fa if h.is_image and h.data is not None and h.data.size],
                            [h for h in fb if h.is_image and h.data is not None and h.data.size]):
                assert np.array_equal(x.data, y.data), packed
        print("read ok", packed)

elif mode == "write":
    from astropy.io import fits

    codec, tile, original, out = sys.argv[2:6]
    tile = tuple(int(t) for t in tile.split(","))
    _, a = images(original)
    hdus = [fits.PrimaryHDU()]
    for x in a:
        hdus.append(fits.CompImageHDU(x.data, x.header, compression_type=codec, tile_shape=tile))
    fits.HDUList(hdus).writeto(out, overwrite=True)
    # read back by astropy itself
    _, b = images(out)
    for x, y in zip(a, b):
        assert y._bintable.header["ZCMPTYPE"] == codec
        assert np.array_equal(x.data, y.data), out
    # a pixel type the codec cannot code: a clear error, not a silent RICE_1
    try:
        fits.CompImageHDU(np.zeros((8, 8), np.float64), compression_type=codec,
                          quantize_level=0).writeto(out + ".bad", overwrite=True)
        raise SystemExit("float64 written with " + codec)
    except (ValueError, RuntimeError) as e:
        assert codec in str(e), e
    print("write ok", out)

elif mode == "unsupported-version":
    import astropy

    astropy.__version__ = "0.0.1"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from astropy.io import fits
    assert any("supports astropy 8.0.2 only" in str(w.message) for w in caught), [str(w.message) for w in caught]
    import fpackng_astropy

    try:
        fpackng_astropy.register()
        raise SystemExit("registered on an unsupported astropy")
    except RuntimeError as e:
        assert "not 0.0.1" in str(e), e
    standard_failure(fits, sys.argv[2])
    print("unsupported ok")

elif mode == "without-package":
    from astropy.io import fits

    standard_failure(fits, sys.argv[2])
    print("standard error ok")
