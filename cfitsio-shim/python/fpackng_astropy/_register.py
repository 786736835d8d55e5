"""Registration of the new algorithms with astropy.io.fits (private API).

astropy has no codec plugin API. Its compressed-image code looks algorithms
up in four places, all patched here, and only for the names this package
adds (every other algorithm runs astropy's own code untouched):
- ``_tiled_compression.ALGORITHMS``: name -> codec class (numcodecs-style
  ``encode``/``decode``), here a class calling libfpackng_shim;
- ``COMPRESSION_TYPES``, imported by name into ``settings``, ``header`` and
  ``compressed``: names missing there silently fall back to RICE_1;
- ``_header_to_settings`` / ``_update_tile_settings``: arguments for the
  codec; ours need the ZCMPTYPE, the coded pixel type, the ZNAMEn/ZVALn
  pairs and the tile shape;
- ``_check_compressed_header``: rejects text ZVAL1/ZVAL2 (which codecs such
  as IDF_1 write); ours are checked by the C library instead;
- ``_image_header_to_empty_bintable`` (as imported into ``compressed``):
  on writing, adds the codec's ZNAMEn/ZVALn parameters.
Because these are private names, only the astropy versions in
SUPPORTED_ASTROPY (tested by the fpack-ng test suite) are patched.
"""

import os
import warnings

import numpy as np

from . import _lib

SUPPORTED_ASTROPY = ("8.0.2",)
UNTESTED_ENV = "FPACKNG_ASTROPY_UNTESTED"

_registered = None


def _check_version():
    import astropy

    if astropy.__version__ in SUPPORTED_ASTROPY or os.environ.get(UNTESTED_ENV) == "1":
        return None
    return (
        f"fpackng_astropy supports astropy {', '.join(SUPPORTED_ASTROPY)} only, not "
        f"{astropy.__version__}: the new algorithms (JXL_1, ...) are not registered. "
        f"Install a supported astropy, set {UNTESTED_ENV}=1 to try anyway, or convert "
        f"files to a standard algorithm with funpack-ng."
    )


def register_automatically():
    """Called by the start-up hook: warn (never raise) on an unsupported astropy."""
    problem = _check_version()
    if problem:
        warnings.warn(problem, stacklevel=3)
        return []
    return register()


def _tile_bitpix(header):
    """BITPIX of the pixels as coded: ZBITPIX, or 32 for quantized floats."""
    zbitpix = header["ZBITPIX"]
    if zbitpix > 0:
        return zbitpix
    columns = {header.get(f"TTYPE{i}") for i in range(1, header.get("TFIELDS", 0) + 1)}
    quantized = "ZSCALE" in columns and str(header.get("ZQUANTIZ", "")).strip() != "NONE"
    return 32 if quantized else zbitpix


def _params(header):
    params = []
    for i in range(1, 1000):
        if f"ZNAME{i}" not in header:
            break
        params.append((str(header[f"ZNAME{i}"]).strip(), header.get(f"ZVAL{i}")))
    return params


def _codec_class(name):
    class ShimCodec:
        """A tile codec of libfpackng_shim, in astropy's numcodecs style."""

        codec_id = f"FPACKNG_{name}"

        def __init__(self, *, tile_bitpix, params, tile_shape=None, **_ignored):
            self.tile_bitpix = tile_bitpix
            self.params = params
            self.tile_shape = tile_shape

        def _fits_shape(self, numpy_shape):
            if numpy_shape is None:
                raise ValueError(f"{name}: the tile shape is unknown")
            return tuple(int(n) for n in reversed(tuple(numpy_shape)))

        def decode(self, buf):
            data = np.ascontiguousarray(np.asarray(buf)).view(np.uint8).reshape(-1)
            return _lib.decode_tile(name, self.tile_bitpix, self._fits_shape(self.tile_shape), self.params, data)

        def encode(self, buf):
            pixels = np.asarray(buf)
            return _lib.encode_tile(name, self.tile_bitpix, self._fits_shape(pixels.shape), self.params, pixels)

    ShimCodec.__name__ = ShimCodec.__qualname__ = f"Shim_{name}"
    return ShimCodec


def register():
    """Patch astropy so that it reads and writes this library's new algorithms."""
    global _registered
    if _registered is not None:
        return list(_registered)
    problem = _check_version()
    if problem:
        raise RuntimeError(problem)

    from astropy.io.fits.hdu.compressed import _tiled_compression as tiled
    from astropy.io.fits.hdu.compressed import compressed, header, settings

    names = [
        info.name
        for info in _lib.codec_infos()
        if not info.cfitsio_native and info.name not in tiled.ALGORITHMS
    ]
    ours = frozenset(names)

    for name in names:
        tiled.ALGORITHMS[name] = _codec_class(name)
    extended = tuple(settings.COMPRESSION_TYPES) + tuple(names)
    for module in (settings, header, compressed):
        module.COMPRESSION_TYPES = extended

    header_to_settings = tiled._header_to_settings

    def _header_to_settings(hdr):
        name = hdr["ZCMPTYPE"]
        if name in ours:
            return {"tile_bitpix": _tile_bitpix(hdr), "params": _params(hdr)}
        return header_to_settings(hdr)

    update_tile_settings = tiled._update_tile_settings

    def _update_tile_settings(found, compression_type, actual_tile_shape):
        if compression_type in ours:
            found["tile_shape"] = tuple(actual_tile_shape)
            return found
        return update_tile_settings(found, compression_type, actual_tile_shape)

    check_compressed_header = tiled._check_compressed_header

    def _check_compressed_header(hdr):
        if hdr.get("ZCMPTYPE") in ours:
            hdr = hdr.copy()
            for i in range(1, 1000):
                if f"ZNAME{i}" not in hdr:
                    break
                hdr.remove(f"ZNAME{i}", ignore_missing=True)
                hdr.remove(f"ZVAL{i}", ignore_missing=True)
        return check_compressed_header(hdr)

    empty_bintable = compressed._image_header_to_empty_bintable

    def _image_header_to_empty_bintable(image_header, *args, **kwargs):
        bintable = empty_bintable(image_header, *args, **kwargs)
        hdr = bintable.header
        name = hdr.get("ZCMPTYPE")
        if name in ours:
            _add_codec_params(hdr, name)
        return bintable

    tiled._header_to_settings = _header_to_settings
    tiled._update_tile_settings = _update_tile_settings
    tiled._check_compressed_header = _check_compressed_header
    compressed._image_header_to_empty_bintable = _image_header_to_empty_bintable
    _registered = tuple(names)
    return list(names)


def _add_codec_params(hdr, name):
    bitpix = _tile_bitpix(hdr)
    info = _lib.find(name)
    if not info.supports(bitpix):
        raise ValueError(
            f"{name} cannot code this image (ZBITPIX={hdr['ZBITPIX']}, tiles coded as "
            f"BITPIX={bitpix}); choose a standard compression_type such as RICE_1"
        )
    index = 1
    after = "ZCMPTYPE"
    while f"ZNAME{index}" in hdr:
        after = f"ZVAL{index}" if f"ZVAL{index}" in hdr else f"ZNAME{index}"
        index += 1
    for pname, value in _lib.default_params(name, bitpix):
        hdr.set(f"ZNAME{index}", pname, "compression parameter", after=after)
        hdr.set(f"ZVAL{index}", value, "compression parameter value", after=f"ZNAME{index}")
        after = f"ZVAL{index}"
        index += 1
