"""ctypes binding of libfpackng_shim.so (the C API of
cfitsio-shim/include/fpackng_shim.h, version 2).

Why ctypes: the C API already exists for cfitsio programs, so the Python
package needs no second native build system and one wheel serves every
Python version; ctypes releases the GIL for the length of every foreign
call, and the library codes tiles in parallel on its own threads.

This module imports nothing but the standard library (setup.py loads it to
list the codecs for the entry points). Buffers are passed as addresses and
sizes; the numpy side lives in fpackng/__init__.py.
"""

import ctypes
import os
from functools import lru_cache
from pathlib import Path

API_VERSION = 2
LIBRARY_NAME = "libfpackng_shim.so"
ERR_BUFFER_SIZE = -5
PARAM_INT, PARAM_FLOAT, PARAM_TEXT = 1, 2, 3
FILE_OVERWRITE, FILE_DELETE_INPUT, FILE_NO_CHECKSUMS = 1, 2, 4
BITPIXES = (8, 16, 32, 64, -32, -64)  # the order of fpng_codec_info.bitpix_mask's bits
TEXT_MAX = 71  # fpng_param's fixed fields hold 71 characters and a NUL


class FpackngError(RuntimeError):
    """An error reported by the fpack-ng library; ``code`` is its FPNG_ERR_* code."""

    def __init__(self, message, code=0):
        super().__init__(message)
        self.code = code


class CorruptDataError(FpackngError, ValueError):
    """Compressed data is damaged or not what it claims to be."""


class UnsupportedError(FpackngError, ValueError):
    """The codec cannot code this data (pixel type, shape, parameter)."""


class FileError(FpackngError, OSError):
    """Reading or writing a file failed."""


class VerificationError(FpackngError):
    """A written file did not read back as its source; nothing was replaced."""


_ERRORS = {-3: UnsupportedError, -4: UnsupportedError, -6: CorruptDataError,
           -7: UnsupportedError, -11: FileError, -12: VerificationError}


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
        ("is_standard", ctypes.c_uint8),
        ("reserved2", ctypes.c_uint8 * 3),
        ("strip_rows", ctypes.c_uint32),
        ("strip_pixels", ctypes.c_uint32),
    ]

    @property
    def name(self):
        return self.zcmptype.decode()

    def supports(self, bitpix):
        return bool(self.bitpix_mask >> BITPIXES.index(bitpix) & 1)


class Param(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 72),
        ("kind", ctypes.c_int32),
        ("int_value", ctypes.c_int64),
        ("float_value", ctypes.c_double),
        ("text_value", ctypes.c_char * 72),
    ]


class ArrayInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("ndim", ctypes.c_uint32),
        ("dtype", ctypes.c_char * 4),
        ("zcmptype", ctypes.c_char * 24),
        ("shape", ctypes.c_uint64 * 8),
        ("tile", ctypes.c_uint64 * 8),
        ("ntiles", ctypes.c_uint64),
        ("nbytes", ctypes.c_uint64),
    ]


def library_path():
    given = os.environ.get("FPACKNG_SHIM_LIB")
    return Path(given) if given else Path(__file__).with_name(LIBRARY_NAME)


_SIGNATURES = {
    "fpng_api_version": ([], ctypes.c_uint32),
    "fpng_codec_count": ([], ctypes.c_int32),
    "fpng_codec_get": ([ctypes.c_int32, ctypes.POINTER(CodecInfo)], ctypes.c_int32),
    "fpng_codec_find": ([ctypes.c_char_p, ctypes.POINTER(CodecInfo)], ctypes.c_int32),
    "fpng_default_params": ([ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(Param), ctypes.c_size_t,
                             ctypes.POINTER(ctypes.c_size_t)], ctypes.c_int32),
    "fpng_encode_tile": ([ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
                          ctypes.POINTER(Param), ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                          ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)], ctypes.c_int32),
    "fpng_decode_tile": ([ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
                          ctypes.POINTER(Param), ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                          ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int32),
    "fpng_encode_array": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
                           ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(Param), ctypes.c_size_t,
                           ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p),
                           ctypes.POINTER(ctypes.c_size_t)], ctypes.c_int32),
    "fpng_free": ([ctypes.c_void_p, ctypes.c_size_t], None),
    "fpng_get_array_info": ([ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ArrayInfo)], ctypes.c_int32),
    "fpng_decode_array": ([ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int32),
    "fpng_compress_file": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t),
                            ctypes.c_size_t, ctypes.c_double, ctypes.c_uint32], ctypes.c_int32),
    "fpng_decompress_file": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int32),
    "fpng_last_error": ([ctypes.c_char_p, ctypes.c_size_t], ctypes.c_size_t),
}


@lru_cache(maxsize=None)
def lib():
    path = library_path()
    if not path.is_file():
        raise FpackngError(f"{LIBRARY_NAME} not found at {path}; reinstall fpack-ng")
    so = ctypes.CDLL(str(path))
    so.fpng_api_version.restype = ctypes.c_uint32
    if so.fpng_api_version() < API_VERSION:
        raise FpackngError(f"{path} has C API version {so.fpng_api_version()}; this package needs {API_VERSION}")
    for name, (args, result) in _SIGNATURES.items():
        function = getattr(so, name)
        function.argtypes, function.restype = args, result
    return so


def check(code):
    """Raises the library's last error (of this thread) for a non-zero code."""
    if code != 0:
        buf = ctypes.create_string_buffer(4096)
        lib().fpng_last_error(buf, len(buf))
        raise _ERRORS.get(code, FpackngError)(buf.value.decode(errors="replace"), code)


def _new(struct):
    value = struct()
    value.struct_size = ctypes.sizeof(struct)
    return value


def codec_infos():
    """Every codec of the library's registry, in its order."""
    out = []
    for i in range(lib().fpng_codec_count()):
        info = _new(CodecInfo)
        check(lib().fpng_codec_get(i, ctypes.byref(info)))
        out.append(info)
    return out


def default_params(zcmptype, tile_bitpix):
    """[(name, value)]: the ZNAMEn/ZVALn pairs the codec writes for tiles of tile_bitpix."""
    count = ctypes.c_size_t(0)
    buf = (Param * 64)()
    check(lib().fpng_default_params(zcmptype.encode(), tile_bitpix, buf, len(buf), ctypes.byref(count)))
    return [(p.name.decode(), param_value(p)) for p in buf[: count.value]]


def param_value(p):
    if p.kind == PARAM_INT:
        return p.int_value
    if p.kind == PARAM_FLOAT:
        return p.float_value
    return p.text_value.decode()


def c_params(params):
    """A C array of fpng_param from [(name, value)] (values int, float or str)."""
    arr = (Param * max(len(params), 1))()
    for slot, (name, value) in zip(arr, params):
        name = str(name).strip().encode()
        if not name or len(name) > TEXT_MAX:
            raise ValueError(f"parameter name {name!r} must have 1 to {TEXT_MAX} characters")
        slot.name = name
        if isinstance(value, bool) or isinstance(value, int) or type(value).__name__.startswith(("int", "uint")):
            slot.kind, slot.int_value = PARAM_INT, int(value)
        elif isinstance(value, float) or type(value).__name__.startswith("float"):
            slot.kind, slot.float_value = PARAM_FLOAT, float(value)
        elif isinstance(value, str):
            text = value.encode()
            if len(text) > TEXT_MAX:
                raise ValueError(f"value of parameter {name.decode()} is longer than {TEXT_MAX} characters")
            slot.kind, slot.text_value = PARAM_TEXT, text
        else:
            raise TypeError(f"parameter {name.decode()}: {type(value).__name__} is not int, float or str")
    return arr


def c_sizes(values):
    return (ctypes.c_size_t * max(len(values), 1))(*values)


def encode_tile(zcmptype, tile_bitpix, fits_shape, params, address, nbytes):
    """Encodes one FITS tile (fits_shape fastest axis first) at address; returns bytes."""
    capacity = nbytes + nbytes // 2 + 4096
    for _ in range(2):
        out = ctypes.create_string_buffer(capacity)
        size = ctypes.c_size_t(0)
        code = lib().fpng_encode_tile(
            zcmptype.encode(), tile_bitpix, c_sizes(fits_shape), len(fits_shape), c_params(params), len(params),
            address, nbytes, out, capacity, ctypes.byref(size))
        if code == ERR_BUFFER_SIZE and size.value > capacity:
            capacity = size.value
            continue
        check(code)
        return out.raw[: size.value]
    raise FpackngError("encoded tile size changed between two calls")


def decode_tile(zcmptype, tile_bitpix, fits_shape, params, data, address, nbytes):
    """Decodes one FITS tile (bytes) into nbytes at address."""
    check(lib().fpng_decode_tile(
        zcmptype.encode(), tile_bitpix, c_sizes(fits_shape), len(fits_shape), c_params(params), len(params),
        data, len(data), address, nbytes))


def encode_array(zcmptype, dtype_code, shape, tile, params, address, nbytes):
    """Codes a whole array (numpy order) into an FPNGAR stream; returns bytes."""
    out = ctypes.c_void_p()
    size = ctypes.c_size_t(0)
    check(lib().fpng_encode_array(
        zcmptype.encode(), dtype_code.encode(), c_sizes(shape), len(shape),
        c_sizes(tile) if tile is not None else None, c_params(params), len(params),
        address, nbytes, ctypes.byref(out), ctypes.byref(size)))
    try:
        return ctypes.string_at(out, size.value)
    finally:
        lib().fpng_free(out, size.value)


def array_info(address, nbytes):
    info = _new(ArrayInfo)
    check(lib().fpng_get_array_info(address, nbytes, ctypes.byref(info)))
    return {
        "codec": info.zcmptype.decode(),
        "dtype": info.dtype.decode(),
        "shape": tuple(int(n) for n in info.shape[: info.ndim]),
        "tile_shape": tuple(int(n) for n in info.tile[: info.ndim]),
        "tiles": int(info.ntiles),
        "nbytes": int(info.nbytes),
    }


def decode_array(address, nbytes, out_address, out_nbytes):
    check(lib().fpng_decode_array(address, nbytes, out_address, out_nbytes))


def compress_file(source, target, zcmptype, fits_tile, quantize_level, flags):
    tile = fits_tile or ()
    check(lib().fpng_compress_file(
        os.fsencode(source), os.fsencode(target), zcmptype.encode(), c_sizes(tile), len(tile),
        float(quantize_level or 0.0), flags))


def decompress_file(source, target, flags):
    check(lib().fpng_decompress_file(os.fsencode(source), os.fsencode(target), flags))
