"""fpack-ng from Python: every codec of the library for numpy arrays and FITS
files, astropy.io.fits (CompImageHDU) and numcodecs/zarr.

    >>> import fpackng
    >>> [c.name for c in fpackng.codecs() if not c.standard]
    >>> data = fpackng.encode(image, "JXL_1")          # bytes (self-describing)
    >>> image2 = fpackng.decode(data)                  # numpy array, identical
    >>> fpackng.compress_file("frame.fits", codec="MIXPRED_1")   # frame.fits.fz

Arrays are coded tile by tile (by default the strips fpack-ng uses for the
codec) on the library's own threads; the GIL is released meanwhile.
Errors of the library are raised as FpackngError (or one of its subclasses)
carrying the library's message; argument types and values are checked here
first.
"""

import os
from pathlib import Path
from typing import NamedTuple, Optional, Tuple

import numpy as np

from ._lib import CorruptDataError, FileError, FpackngError, UnsupportedError, VerificationError
from . import _lib

__version__ = "0.2.0"
__all__ = [
    "Codec", "codecs", "codec", "encode", "decode", "info", "compress_file", "decompress_file",
    "register_astropy", "FpackngError", "CorruptDataError", "UnsupportedError", "FileError",
    "VerificationError",
]

# How each numpy element type is coded: FITS's BITPIX, with the BZERO
# convention for unsigned integers and signed bytes (done by the library).
_DTYPE_BITPIX = {"u1": 8, "i1": 8, "i2": 16, "u2": 16, "i4": 32, "u4": 32, "i8": 64, "u8": 64,
                 "f4": -32, "f8": -64}


class Codec(NamedTuple):
    """A codec of the library's registry."""

    name: str                  # the ZCMPTYPE value
    standard: bool             # one of the FITS standard's algorithms
    can_encode: bool           # this build writes it (else read-only)
    cfitsio_native: bool       # Debian's libcfitsio decodes it without the shim
    dtypes: Tuple[str, ...]    # numpy dtypes (e.g. "uint16") it codes
    default_strip: Optional[Tuple[int, int]]  # (min rows, min pixels) of its default strips, or None: rows

    @property
    def numcodecs_id(self):
        """Its id for numcodecs (and its codec name for zarr 3)."""
        return "fpackng." + self.name.lower()


def _codec_from_info(info):
    dtypes = tuple(str(np.dtype(code)) for code, bitpix in _DTYPE_BITPIX.items() if info.supports(bitpix))
    strip = (int(info.strip_rows), int(info.strip_pixels)) if info.strip_rows else None
    return Codec(info.name, bool(info.is_standard), bool(info.can_encode), bool(info.cfitsio_native), dtypes, strip)


_CODECS = None


def codecs():
    """Every codec of the library, in the order ``fpack-ng -L`` lists them."""
    global _CODECS
    if _CODECS is None:
        _CODECS = tuple(_codec_from_info(i) for i in _lib.codec_infos())
    return list(_CODECS)


def codec(name):
    """The codec for a ZCMPTYPE name (case-insensitive); ValueError if unknown."""
    if not isinstance(name, str):
        raise TypeError(f"codec name must be a str, not {type(name).__name__}")
    for c in codecs():
        if c.name == name.strip().upper():
            return c
    raise ValueError(f"unknown codec {name!r}; this build has {', '.join(c.name for c in codecs())}")


_codec_named = codec  # for functions whose `codec` argument hides it


def _params_list(params):
    if params is None:
        return []
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of ZNAMEn -> ZVALn, not {type(params).__name__}")
    return [(str(k).upper(), v) for k, v in params.items()]


def _shape_arg(value, ndim, what):
    if value is None:
        return None
    shape = tuple(int(v) for v in value)
    if len(shape) != ndim or any(v < 0 for v in shape):
        raise ValueError(f"{what} {tuple(value)} must have {ndim} non-negative values (0: whole axis)")
    return shape


def encode(array, codec_name, params=None, tile_shape=None):
    """Codes a numpy array (2-D or 3-D images and cubes; 1 to 8 axes) with a
    codec into a self-describing ``bytes`` stream that :func:`decode` restores
    bit-exactly.

    params: ZNAMEn -> ZVALn pairs overriding the codec's defaults (e.g.
    ``{"EFFORT": 3}`` for JXL_1). tile_shape: in numpy order (0 = whole
    axis); by default the tiles fpack-ng would choose for an image.
    """
    c = codec(codec_name)
    if not c.can_encode:
        raise ValueError(f"{c.name} is read-only in this library")
    array = np.asarray(array)
    if not 1 <= array.ndim <= 8 or array.size == 0:
        raise ValueError(f"an array of 1 to 8 axes with pixels is needed, not shape {array.shape}")
    code = f"{array.dtype.kind}{array.dtype.itemsize}"
    if code not in _DTYPE_BITPIX or str(np.dtype(code)) not in c.dtypes:
        raise TypeError(f"{c.name} codes {', '.join(c.dtypes)} arrays, not {array.dtype}")
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    tile = _shape_arg(tile_shape, array.ndim, "tile_shape")
    return _lib.encode_array(c.name, code, array.shape, tile, _params_list(params),
                             array.ctypes.data, array.nbytes)


def _as_bytes_array(data):
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = np.frombuffer(data, dtype=np.uint8)
    data = np.asarray(data)
    if data.dtype == object:
        raise TypeError("data must be bytes or a buffer")
    return np.ascontiguousarray(data).reshape(-1).view(np.uint8)


def info(data):
    """What a stream of :func:`encode` holds: codec, dtype, shape, tile_shape, tiles."""
    buf = _as_bytes_array(data)
    meta = _lib.array_info(buf.ctypes.data, buf.nbytes)
    meta["dtype"] = np.dtype(meta["dtype"])
    return meta


def decode(data, out=None):
    """The array in a stream of :func:`encode`. ``out``, if given, is a
    contiguous array of the same number of bytes to decode into (returned)."""
    buf = _as_bytes_array(data)
    meta = _lib.array_info(buf.ctypes.data, buf.nbytes)
    if out is None:
        out = np.empty(meta["shape"], dtype=np.dtype(meta["dtype"]))
    elif not (isinstance(out, np.ndarray) and out.flags.c_contiguous and out.flags.writeable):
        raise TypeError("out must be a writable C-contiguous numpy array")
    if out.nbytes != meta["nbytes"]:
        raise ValueError(f"out has {out.nbytes} bytes; the stream holds {meta['nbytes']}")
    _lib.decode_array(buf.ctypes.data, buf.nbytes, out.ctypes.data, out.nbytes)
    return out


def _flags(overwrite, delete_input, checksums):
    return ((_lib.FILE_OVERWRITE if overwrite else 0) | (_lib.FILE_DELETE_INPUT if delete_input else 0)
            | (0 if checksums else _lib.FILE_NO_CHECKSUMS))


def _path(value, what):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{what} must be a path, not {type(value).__name__}")
    return Path(value)


def compress_file(source, target=None, codec="RICE_1", tile_shape=None, quantize_level=None,
                  overwrite=False, delete_input=False, checksums=True):
    """``fpack-ng``: compresses every image HDU of a FITS file with a codec.

    target defaults to source + ".fz". As the command line does, every tile is
    verified and the output is written through a temporary file that is read
    back before it takes its name (on error nothing is left behind).
    tile_shape is in numpy order (slowest axis first), e.g. (100, 0): strips of
    100 rows; by default the codec's. quantize_level: fpack's -q for
    floating-point images (None: lossless). Returns the output path.
    """
    source = _path(source, "source")
    target = _path(target, "target") if target is not None else source.with_name(source.name + ".fz")
    name = _codec_named(codec).name
    fits_tile = None
    if tile_shape is not None:
        fits_tile = tuple(int(t) for t in reversed(tuple(tile_shape)))
        if not fits_tile or any(t < 0 for t in fits_tile):
            raise ValueError(f"tile_shape {tuple(tile_shape)} must be non-negative axis lengths")
    if quantize_level is not None and not float(quantize_level) > 0:
        raise ValueError("quantize_level must be positive (None: lossless)")
    _lib.compress_file(source, target, name, fits_tile, quantize_level,
                       _flags(overwrite, delete_input, checksums))
    return target


def decompress_file(source, target=None, overwrite=False, delete_input=False, checksums=True):
    """``funpack-ng``: restores a tile-compressed FITS file (target defaults to
    source without ".fz"), verified and written atomically. Returns the path."""
    source = _path(source, "source")
    if target is None:
        if source.suffix != ".fz":
            raise ValueError(f"{source} does not end in .fz: give target")
        target = source.with_suffix("")
    target = _path(target, "target")
    _lib.decompress_file(source, target, _flags(overwrite, delete_input, checksums))
    return target


def register_astropy():
    """Registers the non-standard codecs with astropy.io.fits now (done
    automatically when astropy.io.fits is imported). Returns their names."""
    from ._astropy import register

    return register()
