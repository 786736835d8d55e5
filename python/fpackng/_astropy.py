"""Registration of fpack-ng's non-standard codecs with astropy.io.fits.

astropy has no codec plugin API, so this patches private names, found by
feature detection (never by version number) in every astropy from 6.0 on:

- reading and writing: ``ALGORITHMS`` (name -> numcodecs-style class) in
  ``_tiled_compression``, and the ``COMPRESSION_TYPES`` tuple wherever a
  module imported it by name (``settings``, ``header``, ``compressed``);
  a name missing there falls back to RICE_1;
- astropy gives an unknown codec no settings, not even the tile shape, so
  ``_header_to_settings`` and ``_update_tile_settings`` are wrapped to pass
  ours the coded pixel type, the ZNAMEn/ZVALn pairs and the tile shape;
- ``_check_compressed_header`` compares ZVAL1/ZVAL2 with numbers: wrapped
  so that text values (IDF_1's model hash) reach the library instead;
- writing: the codec's ZNAMEn/ZVALn pairs are added where the compressed
  header is made: ``_image_header_to_empty_bintable`` (astropy 7 and
  later), or ``_image_header_to_bintable_header_and_coldefs`` (6.x, where
  CompImageHDU is itself a BinTableHDU).

Every wrapper hands any other codec to astropy's own function unchanged.
If a name is missing (a future astropy), importing astropy still works and
one warning says what is missing and what therefore does not work.
"""

import importlib
import warnings

import numpy as np

from . import _lib

_registered = None


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
    class FpackngTileCodec:
        """One tile of an fpack-ng codec, in astropy's numcodecs style."""

        codec_id = f"fpackng.{name.lower()}"

        def __init__(self, *, tile_bitpix=None, params=(), tile_shape=None, **_ignored):
            if tile_bitpix is None:
                raise ValueError(f"{name}: astropy gave no settings (the fpackng patch is incomplete)")
            self.tile_bitpix = tile_bitpix
            self.params = list(params)
            self.tile_shape = tile_shape

        def _fits_shape(self, numpy_shape):
            if numpy_shape is None:
                raise ValueError(f"{name}: astropy gave no tile shape")
            return tuple(int(n) for n in reversed(tuple(numpy_shape)))

        def decode(self, buf):
            if isinstance(buf, (bytes, bytearray, memoryview)):
                data = bytes(buf)
            else:
                data = np.ascontiguousarray(np.asarray(buf)).view(np.uint8).reshape(-1).tobytes()
            fits_shape = self._fits_shape(self.tile_shape)
            out = np.empty(int(np.prod(fits_shape)), dtype=_dtype(self.tile_bitpix))
            _lib.decode_tile(name, self.tile_bitpix, fits_shape, self.params, data, out.ctypes.data, out.nbytes)
            return out

        def encode(self, buf):
            pixels = np.asarray(buf)
            expected = _dtype(self.tile_bitpix)
            if pixels.dtype.kind not in "iuf" or pixels.dtype.itemsize != expected.itemsize:
                raise ValueError(f"{name}: tile of {pixels.dtype} where BITPIX={self.tile_bitpix} is coded")
            pixels = np.ascontiguousarray(pixels).view(pixels.dtype.newbyteorder("=")).astype(expected, copy=False)
            return _lib.encode_tile(name, self.tile_bitpix, self._fits_shape(pixels.shape), self.params,
                                    pixels.ctypes.data, pixels.nbytes)

    FpackngTileCodec.__name__ = FpackngTileCodec.__qualname__ = f"Fpackng_{name}"
    return FpackngTileCodec


def _dtype(bitpix):
    return np.dtype({8: "u1", 16: "i2", 32: "i4", 64: "i8", -32: "f4", -64: "f8"}[bitpix])


def _module(*names):
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _warn(problem):
    warnings.warn(f"fpackng: {problem}", stacklevel=3)


def register():
    """Patches astropy so that it reads and writes every non-standard codec
    of the library. Returns the names registered (empty, with one warning
    saying what is missing, if this astropy lacks what reading needs)."""
    global _registered
    if _registered is not None:
        return list(_registered)
    package = "astropy.io.fits.hdu.compressed"
    tiled = _module(f"{package}._tiled_compression", "astropy.io.fits._tiled_compression")
    modules = [m for m in (_module(f"{package}.settings"), _module(f"{package}.header"),
                           _module(f"{package}.compressed")) if m is not None]
    compressed = _module(f"{package}.compressed")
    import astropy

    missing = []
    if tiled is None or not hasattr(tiled, "ALGORITHMS"):
        missing.append("_tiled_compression.ALGORITHMS")
    if not any(hasattr(m, "COMPRESSION_TYPES") for m in modules):
        missing.append("COMPRESSION_TYPES")
    for function in ("_header_to_settings", "_update_tile_settings"):
        if tiled is None or not callable(getattr(tiled, function, None)):
            missing.append(f"_tiled_compression.{function}")
    write_hook = next((h for h in ("_image_header_to_empty_bintable", "_image_header_to_bintable_header_and_coldefs")
                       if callable(getattr(compressed, h, None))), None)
    if missing:
        _registered = ()
        _warn(f"astropy {astropy.__version__} lacks {', '.join(missing)}: fpack-ng's codecs are not "
              f"registered (read such files after `funpack-ng`, or use fpackng.decompress_file)")
        return []

    names = [c.name for c in _lib.codec_infos() if not c.is_standard and c.name not in tiled.ALGORITHMS]
    ours = frozenset(names)
    for name in names:
        tiled.ALGORITHMS[name] = _codec_class(name)
    for module in modules:
        if hasattr(module, "COMPRESSION_TYPES"):
            module.COMPRESSION_TYPES = tuple(module.COMPRESSION_TYPES) + tuple(
                n for n in names if n not in module.COMPRESSION_TYPES)

    header_to_settings = tiled._header_to_settings

    def _header_to_settings(hdr):
        if hdr["ZCMPTYPE"] in ours:
            return {"tile_bitpix": _tile_bitpix(hdr), "params": _params(hdr)}
        return header_to_settings(hdr)

    update_tile_settings = tiled._update_tile_settings

    def _update_tile_settings(found, compression_type, actual_tile_shape):
        if compression_type in ours:
            found["tile_shape"] = tuple(actual_tile_shape)
            return found
        return update_tile_settings(found, compression_type, actual_tile_shape)

    tiled._header_to_settings = _header_to_settings
    tiled._update_tile_settings = _update_tile_settings

    check_compressed_header = getattr(tiled, "_check_compressed_header", None)
    if callable(check_compressed_header):
        def _check_compressed_header(hdr):
            if hdr.get("ZCMPTYPE") in ours:
                hdr = hdr.copy()
                for i in range(1, 1000):
                    if f"ZNAME{i}" not in hdr:
                        break
                    hdr.remove(f"ZVAL{i}", ignore_missing=True)
            return check_compressed_header(hdr)

        tiled._check_compressed_header = _check_compressed_header

    if write_hook is None:
        _warn(f"astropy {astropy.__version__} lacks compressed._image_header_to_empty_bintable (and 6.x's "
              f"_image_header_to_bintable_header_and_coldefs): fpack-ng's codecs are read, not written")
    else:
        make_header = getattr(compressed, write_hook)

        def _with_codec_params(*args, **kwargs):
            result = make_header(*args, **kwargs)
            hdr = result[0] if isinstance(result, tuple) else result.header
            if hdr.get("ZCMPTYPE") in ours:
                _add_codec_params(hdr, hdr["ZCMPTYPE"])
            return result

        setattr(compressed, write_hook, _with_codec_params)
    _registered = tuple(names)
    return list(names)


def _add_codec_params(hdr, name):
    """Writes the codec's ZNAMEn/ZVALn pairs (idempotent: astropy 6.x remakes
    the header on every update)."""
    bitpix = _tile_bitpix(hdr)
    info = next(c for c in _lib.codec_infos() if c.name == name)
    if bitpix not in _lib.BITPIXES or not info.supports(bitpix):
        raise ValueError(
            f"{name} cannot code this image (ZBITPIX={hdr['ZBITPIX']}, tiles coded as BITPIX={bitpix}); "
            f"choose a standard compression_type such as RICE_1")
    existing = {str(hdr[f"ZNAME{i}"]).strip(): i for i in range(1, 1000) if f"ZNAME{i}" in hdr}
    index = max(existing.values(), default=0) + 1
    after = f"ZVAL{index - 1}" if f"ZVAL{index - 1}" in hdr else (f"ZNAME{index - 1}" if index > 1 else "ZCMPTYPE")
    for pname, value in _lib.default_params(name, bitpix):
        if pname in existing:
            hdr[f"ZVAL{existing[pname]}"] = value
            continue
        hdr.set(f"ZNAME{index}", pname, "compression parameter", after=after)
        comment = None if isinstance(value, str) else "compression parameter value"  # text fills the card
        hdr.set(f"ZVAL{index}", value, comment, after=f"ZNAME{index}")
        after = f"ZVAL{index}"
        index += 1
