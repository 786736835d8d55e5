"""zarr 3 codecs (zarr_format=3), one per codec of the library that can
write: array-to-bytes codecs named like their numcodecs ids
("fpackng.jxl_1"), found through the ``zarr.codecs`` entry points of this
package, used as ``serializer=fpackng.zarr.JXL_1()``.

(zarr_format=2 arrays use the numcodecs codecs of fpackng.numcodecs as
their compressor.) The configuration is the codec's ZNAMEn/ZVALn
parameters and, optionally, ``tile_shape`` (numpy order, within a chunk).
"""

import asyncio
from dataclasses import dataclass
from typing import Optional, Tuple

from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration

import fpackng


@dataclass(frozen=True)
class FpackngZarrCodec(ArrayBytesCodec):
    """Base class; use the per-codec subclasses (``fpackng.zarr.JXL_1``, ...)."""

    is_fixed_size = False
    codec_name = None
    zcmptype = None

    params: Tuple[Tuple[str, object], ...] = ()
    tile_shape: Optional[Tuple[int, ...]] = None

    def __init__(self, *, tile_shape=None, **params):
        if self.zcmptype is None:
            raise TypeError("use a codec subclass such as fpackng.zarr.JXL_1")
        for name, value in params.items():
            if not isinstance(value, (int, float, str)):
                raise TypeError(f"{self.codec_name}: parameter {name} is {type(value).__name__}, not int, float or str")
        object.__setattr__(self, "params", tuple(sorted((str(k).upper(), v) for k, v in params.items())))
        object.__setattr__(self, "tile_shape", None if tile_shape is None else tuple(int(t) for t in tile_shape))

    @classmethod
    def from_dict(cls, data):
        _, configuration = parse_named_configuration(data, cls.codec_name, require_configuration=False)
        return cls(**(configuration or {}))

    def to_dict(self):
        configuration = dict(self.params)
        if self.tile_shape is not None:
            configuration["tile_shape"] = list(self.tile_shape)
        return {"name": self.codec_name, "configuration": configuration}

    def _encode(self, array):
        return fpackng.encode(array, self.zcmptype, dict(self.params), self.tile_shape)

    async def _encode_single(self, chunk_array, chunk_spec):
        data = await asyncio.to_thread(self._encode, chunk_array.as_ndarray_like())
        return chunk_spec.prototype.buffer.from_bytes(data)

    async def _decode_single(self, chunk_bytes, chunk_spec):
        array = await asyncio.to_thread(fpackng.decode, chunk_bytes.to_bytes())
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(array.reshape(chunk_spec.shape))

    def compute_encoded_size(self, input_byte_length, chunk_spec):
        raise NotImplementedError


def _make(codec):
    return type(codec.name, (FpackngZarrCodec,), {
        "codec_name": codec.numcodecs_id, "zcmptype": codec.name, "__module__": __name__,
        "__doc__": f"fpack-ng's {codec.name} as a zarr 3 array-to-bytes codec.",
    })


CODECS = {c.name: _make(c) for c in fpackng.codecs() if c.can_encode}
globals().update(CODECS)
