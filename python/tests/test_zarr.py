"""numcodecs finds every codec through the entry points; zarr 3 arrays of
zarr_format 2 (numcodecs compressor) and 3 (array-to-bytes serializer)
written and read with them are identical."""

import warnings
from importlib.metadata import entry_points

import numcodecs
import numpy as np
import pytest
import zarr

import fpackng
from conftest import sample
from test_api import cube_only

WRITABLE = [c for c in fpackng.codecs() if c.can_encode]


def test_entry_points_are_the_registry():
    for group in ("numcodecs.codecs", "zarr.codecs"):
        names = {e.name for e in entry_points(group=group) if e.value.startswith("fpackng.")}
        assert names == {c.numcodecs_id for c in WRITABLE}, group


@pytest.mark.parametrize("codec", WRITABLE, ids=lambda c: c.name)
def test_numcodecs_get_codec_and_config(codec):
    # Found through the entry point (nothing registered it by hand).
    assert codec.numcodecs_id not in numcodecs.registry.codec_registry or \
        numcodecs.registry.codec_registry[codec.numcodecs_id].__module__ == "fpackng.numcodecs"
    found = numcodecs.get_codec({"id": codec.numcodecs_id})
    assert type(found).__module__ == "fpackng.numcodecs" and found.zcmptype == codec.name
    # Cube codecs' tiles span the planes; the others take one plane at a time.
    config = {"id": codec.numcodecs_id, "tile_shape": [0 if cube_only(codec) else 1, 16, 0], "EXTRAPAR": 3}
    again = numcodecs.get_codec(dict(config))
    assert again.get_config() == config and again.params == {"EXTRAPAR": 3}
    a = sample(codec.dtypes[0], (3, 32, 24))
    data = again.encode(a)
    assert fpackng.info(data)["tile_shape"] == (3 if cube_only(codec) else 1, 16, 24)
    assert np.array_equal(found.decode(data), a)
    out = np.empty_like(a)
    found.decode(data, out=out)
    assert np.array_equal(out, a)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("codec", WRITABLE, ids=lambda c: c.name)
def test_zarr_arrays_round_trip(codec, zarr_format, tmp_path):
    dtype = "uint16" if "uint16" in codec.dtypes else codec.dtypes[0]
    a = sample(dtype, (4, 40, 30), seed=zarr_format)
    store = str(tmp_path / "array.zarr")
    if zarr_format == 2:
        coding = {"compressors": numcodecs.get_codec({"id": codec.numcodecs_id}), "filters": None}
    else:
        coding = {"serializer": {"name": codec.numcodecs_id, "configuration": {}}, "compressors": None}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unknown codec" or fallback warnings
        z = zarr.create_array(store, shape=a.shape, chunks=(4, 20, 30), dtype=a.dtype,
                              zarr_format=zarr_format, **coding)
        z[...] = a
        back = zarr.open_array(store, mode="r")
        assert np.array_equal(back[...], a) and back.dtype == a.dtype
        assert np.array_equal(back[1:3, 5:25, 7], a[1:3, 5:25, 7])
    text = "".join(p.read_text() for p in (tmp_path / "array.zarr").glob("*.*json") if p.is_file()) + \
        "".join(p.read_text() for p in (tmp_path / "array.zarr").glob(".z*"))
    assert codec.numcodecs_id in text
