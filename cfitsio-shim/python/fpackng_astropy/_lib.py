"""ctypes binding of libfpackng_shim.so (C API of include/fpackng_shim.h, v1).

The library is the one copied into this package at install time, or the one
named by $FPACKNG_SHIM_LIB. Every call's error code becomes a ShimError
carrying the library's message.
"""

import ctypes
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

API_VERSION = 1
ERR_BUFFER_SIZE = -5
PARAM_INT, PARAM_FLOAT, PARAM_TEXT = 1, 2, 3

BITPIX_DTYPES = {8: np.uint8, 16: np.int16, 32: np.int32, 64: np.int64, -32: np.float32, -64: np.float64}


class ShimError(RuntimeError):
    """An error reported by libfpackng_shim."""

    def __init__(self, code, message):
        super().__init__(f"{message} (fpng error {code})")
        self.code = code


class CodecInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("api_version", ctypes.c_uint32),
        ("zcmptype", ctypes.c_char * 24),
        ("bitpix_mask", ctypes.c_uint32),
        ("can_encode", ctypes.c_uint8),
        ("cfitsio_native", ctypes.c_uint8),
        ("heap_element", ctypes.c_char),
        ("reserved", ctypes.c_uint8),
    ]

    @property
    def name(self):
        return self.zcmptype.decode()

    def supports(self, bitpix):
        bit = [8, 16, 32, 64, -32, -64].index(bitpix)
        return bool(self.bitpix_mask >> bit & 1)


class Param(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 72),
        ("kind", ctypes.c_int32),
        ("int_value", ctypes.c_int64),
        ("float_value", ctypes.c_double),
        ("text_value", ctypes.c_char * 72),
    ]


def library_path():
    given = os.environ.get("FPACKNG_SHIM_LIB")
    return Path(given) if given else Path(__file__).with_name("libfpackng_shim.so")


@lru_cache(maxsize=None)
def lib():
    path = library_path()
    if not path.is_file():
        raise ShimError(0, f"libfpackng_shim.so not found at {path}; reinstall fpackng-astropy")
    so = ctypes.CDLL(str(path))
    so.fpng_api_version.restype = ctypes.c_uint32
    if so.fpng_api_version() != API_VERSION:
        raise ShimError(0, f"{path} has C API version {so.fpng_api_version()}, this package needs {API_VERSION}")
    so.fpng_codec_count.restype = ctypes.c_int32
    so.fpng_codec_get.argtypes = [ctypes.c_int32, ctypes.POINTER(CodecInfo)]
    so.fpng_codec_find.argtypes = [ctypes.c_char_p, ctypes.POINTER(CodecInfo)]
    so.fpng_default_params.argtypes = [
        ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(Param), ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_size_t),
    ]
    tile = [ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
            ctypes.POINTER(Param), ctypes.c_size_t]
    so.fpng_encode_tile.argtypes = tile + [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_size_t),
    ]
    so.fpng_decode_tile.argtypes = tile + [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
    for f in ("fpng_codec_get", "fpng_codec_find", "fpng_default_params", "fpng_encode_tile", "fpng_decode_tile"):
        getattr(so, f).restype = ctypes.c_int32
    so.fpng_last_error.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    so.fpng_last_error.restype = ctypes.c_size_t
    return so


def _check(code):
    if code != 0:
        buf = ctypes.create_string_buffer(1024)
        lib().fpng_last_error(buf, len(buf))
        raise ShimError(code, buf.value.decode(errors="replace"))


def _info():
    info = CodecInfo()
    info.struct_size = ctypes.sizeof(CodecInfo)
    return info


def codec_infos():
    out = []
    for i in range(lib().fpng_codec_count()):
        info = _info()
        _check(lib().fpng_codec_get(i, ctypes.byref(info)))
        out.append(info)
    return out


def find(zcmptype):
    info = _info()
    _check(lib().fpng_codec_find(zcmptype.encode(), ctypes.byref(info)))
    return info


def default_params(zcmptype, tile_bitpix):
    """[(name, value)] the codec writes as ZNAMEn/ZVALn for tiles of tile_bitpix."""
    count = ctypes.c_size_t(0)
    buf = (Param * 32)()
    _check(lib().fpng_default_params(zcmptype.encode(), tile_bitpix, buf, len(buf), ctypes.byref(count)))
    return [(p.name.decode(), _param_value(p)) for p in buf[: count.value]]


def _param_value(p):
    if p.kind == PARAM_INT:
        return p.int_value
    if p.kind == PARAM_FLOAT:
        return p.float_value
    return p.text_value.decode()


def _c_params(params):
    arr = (Param * max(len(params), 1))()
    for slot, (name, value) in zip(arr, params):
        slot.name = str(name).encode()
        if isinstance(value, bool) or isinstance(value, (int, np.integer)):
            slot.kind, slot.int_value = PARAM_INT, int(value)
        elif isinstance(value, (float, np.floating)):
            slot.kind, slot.float_value = PARAM_FLOAT, float(value)
        else:
            text = str(value).encode()
            if len(text) >= 72:
                raise ShimError(-2, f"ZVAL for {name} is too long")
            slot.kind, slot.text_value = PARAM_TEXT, text
    return arr


def _c_shape(fits_shape):
    return (ctypes.c_size_t * len(fits_shape))(*fits_shape)


def decode_tile(zcmptype, tile_bitpix, fits_shape, params, data):
    """Decode one tile; fits_shape is fastest axis first. Returns a flat native array."""
    data = np.ascontiguousarray(np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8))
    out = np.empty(int(np.prod(fits_shape)), dtype=BITPIX_DTYPES[tile_bitpix])
    _check(lib().fpng_decode_tile(
        zcmptype.encode(), tile_bitpix, _c_shape(fits_shape), len(fits_shape),
        _c_params(params), len(params), data.ctypes.data, data.nbytes, out.ctypes.data, out.nbytes,
    ))
    return out


def encode_tile(zcmptype, tile_bitpix, fits_shape, params, pixels):
    """Encode one tile of pixels (already of the tile's dtype); returns bytes."""
    pixels = np.ascontiguousarray(pixels)
    expected = np.dtype(BITPIX_DTYPES[tile_bitpix])
    if pixels.dtype.newbyteorder("=") != expected:
        raise ShimError(-2, f"{zcmptype}: tile pixels are {pixels.dtype}, BITPIX={tile_bitpix} needs {expected}")
    pixels = pixels.astype(expected, copy=False)
    capacity = pixels.nbytes + pixels.nbytes // 2 + 4096
    for _ in range(2):
        out = np.empty(capacity, dtype=np.uint8)
        size = ctypes.c_size_t(0)
        code = lib().fpng_encode_tile(
            zcmptype.encode(), tile_bitpix, _c_shape(fits_shape), len(fits_shape),
            _c_params(params), len(params), pixels.ctypes.data, pixels.nbytes,
            out.ctypes.data, out.nbytes, ctypes.byref(size),
        )
        if code == ERR_BUFFER_SIZE and size.value > capacity:
            capacity = size.value
            continue
        _check(code)
        return out[: size.value].tobytes()
    raise ShimError(ERR_BUFFER_SIZE, "encoded tile size changed between two calls")
