"""numcodecs codecs, one per codec of the library that can write, found by
``numcodecs.get_codec({"id": "fpackng.jxl_1", ...})`` through the
``numcodecs.codecs`` entry points of this package (also as classes here:
``fpackng.numcodecs.JXL_1``).

The config is the codec's ZNAMEn/ZVALn parameters (overriding its
defaults; e.g. ``{"id": "fpackng.jxl_1", "EFFORT": 3}``) and, optionally,
``tile_shape`` (numpy order). ``encode`` takes an array of any dtype the
codec codes (zarr hands it whole chunks) and returns the self-describing
stream of :func:`fpackng.encode`, so ``decode`` needs nothing else.
"""

import numpy as np
from numcodecs.abc import Codec as _NumcodecsCodec
from numcodecs.compat import ensure_contiguous_ndarray

import fpackng


class FpackngCodec(_NumcodecsCodec):
    """Base class; use the per-codec subclasses (``fpackng.numcodecs.JXL_1``, ...)."""

    codec_id = None
    zcmptype = None

    def __init__(self, tile_shape=None, **params):
        if self.zcmptype is None:
            raise TypeError("use a codec subclass such as fpackng.numcodecs.JXL_1")
        self.tile_shape = None if tile_shape is None else [int(t) for t in tile_shape]
        for name, value in params.items():
            if not isinstance(value, (int, float, str)):
                raise TypeError(f"{self.codec_id}: parameter {name} is {type(value).__name__}, not int, float or str")
        self.params = {str(k).upper(): v for k, v in params.items()}

    def encode(self, buf):
        array = np.asarray(buf)
        if array.ndim == 0:
            array = array.reshape(1)
        return fpackng.encode(array, self.zcmptype, self.params, self.tile_shape)

    def decode(self, buf, out=None):
        array = fpackng.decode(ensure_contiguous_ndarray(buf))
        if out is None:
            return array
        target = ensure_contiguous_ndarray(out)
        if target.nbytes != array.nbytes:
            raise ValueError(f"out has {target.nbytes} bytes; the stream holds {array.nbytes}")
        target.reshape(-1).view(np.uint8)[:] = array.reshape(-1).view(np.uint8)
        return out

    def get_config(self):
        config = {"id": self.codec_id, **self.params}
        if self.tile_shape is not None:
            config["tile_shape"] = list(self.tile_shape)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("id", None)
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "id")
        return f"{type(self).__name__}({args})"


def _make(codec):
    return type(codec.name, (FpackngCodec,), {
        "codec_id": codec.numcodecs_id, "zcmptype": codec.name, "__module__": __name__,
        "__doc__": f"fpack-ng's {codec.name} ({'FITS standard' if codec.standard else 'non-standard'}) "
                   f"for {', '.join(codec.dtypes)} arrays.",
    })


CODECS = {c.name: _make(c) for c in fpackng.codecs() if c.can_encode}
globals().update(CODECS)


def register():
    """Registers every codec with numcodecs' registry (the entry points make
    this unnecessary when the package is installed)."""
    from numcodecs import register_codec

    for cls in CODECS.values():
        register_codec(cls)
    return [cls.codec_id for cls in CODECS.values()]
