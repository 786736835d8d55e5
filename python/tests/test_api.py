"""The Python API: codec list, array round trips for every codec and dtype,
errors as Python exceptions, files with the command line's semantics."""

import numpy as np
import pytest

import fpackng
from conftest import frame, sample


def cube_only(codec):
    """Codecs that code integer cubes as a whole (inter-plane prediction)
    refuse 2-D arrays: asked of the library, never by name."""
    try:
        fpackng.encode(sample(codec.dtypes[0], (8, 8)), codec.name)
        return False
    except fpackng.UnsupportedError:
        return True


def test_codec_list_comes_from_the_library():
    codecs = fpackng.codecs()
    names = [c.name for c in codecs]
    assert len(names) == len(set(names)) >= 2
    assert any(c.standard for c in codecs) and any(not c.standard for c in codecs)
    for c in codecs:
        assert fpackng.codec(c.name.lower()) == c
        assert c.dtypes, c
    with pytest.raises(ValueError, match="unknown codec"):
        fpackng.codec("NO_SUCH_CODEC")


@pytest.mark.parametrize("ndim", [2, 3])
def test_round_trip_every_codec_and_dtype(writable_codecs, ndim):
    done = 0
    for c in writable_codecs:
        if ndim == 2 and cube_only(c):
            continue
        shape = (37, 53) if ndim == 2 else (3, 29, 31)
        for dtype in c.dtypes:
            a = sample(dtype, shape, seed=done)
            data = fpackng.encode(a, c.name)
            assert isinstance(data, bytes)
            meta = fpackng.info(data)
            assert (meta["codec"], meta["dtype"], meta["shape"]) == (c.name, a.dtype, shape)
            b = fpackng.decode(data)
            assert b.dtype == a.dtype and b.shape == a.shape, (c.name, dtype)
            assert np.array_equal(a, b), (c.name, dtype)
            done += 1
    assert done >= len(writable_codecs) * (1 if ndim == 3 else 0) + 5


def test_tiles_params_and_out(writable_codecs):
    a = sample("uint16", (64, 48))
    c = next(c for c in writable_codecs if "uint16" in c.dtypes and not cube_only(c))
    data = fpackng.encode(a, c.name, tile_shape=(10, 0))
    assert fpackng.info(data)["tile_shape"] == (10, 48) and fpackng.info(data)["tiles"] == 7
    out = np.zeros_like(a)
    assert fpackng.decode(memoryview(data), out=out) is out and np.array_equal(out, a)
    # Non-contiguous and byte-swapped input is coded as its values.
    swapped = a[::2, ::3].astype(">u2")
    assert np.array_equal(fpackng.decode(fpackng.encode(swapped, c.name)), swapped)


def test_argument_errors_are_checked_in_python(writable_codecs):
    c = next(c for c in writable_codecs if not c.standard and "float64" not in c.dtypes)
    with pytest.raises(TypeError, match=c.name):
        fpackng.encode(np.zeros((8, 8)), c.name)
    with pytest.raises(TypeError):
        fpackng.encode(np.zeros((8, 8), np.uint8), 42)
    with pytest.raises(ValueError):
        fpackng.encode(np.zeros((0, 8), np.uint8), c.name)
    with pytest.raises(ValueError):
        fpackng.encode(np.zeros((8, 8), np.uint8), c.name, tile_shape=(1,))
    with pytest.raises(TypeError):
        fpackng.encode(np.zeros((8, 8), np.uint8), c.name, params={"X": [1]})
    with pytest.raises(TypeError):
        fpackng.encode(np.zeros((8, 8), np.uint8), c.name, params=[("X", 1)])


def test_damaged_streams_raise_never_crash(writable_codecs):
    for c in writable_codecs:
        shape = (3, 24, 20)
        a = sample(c.dtypes[0], shape)
        data = fpackng.encode(a, c.name, tile_shape=(0 if cube_only(c) else 1, 8, 0))
        for cut in sorted({0, 3, 10, 40, len(data) // 2, len(data) - 5, len(data) - 1}):
            with pytest.raises(fpackng.CorruptDataError):
                fpackng.decode(data[:cut])
        for at in range(0, len(data), max(1, len(data) // 40)):
            bad = bytearray(data)
            bad[at] ^= 0xA5
            with pytest.raises(fpackng.FpackngError) as caught:
                fpackng.decode(bytes(bad))
            assert str(caught.value)
    with pytest.raises(fpackng.CorruptDataError, match="FPNGAR"):
        fpackng.decode(b"not a stream at all")
    with pytest.raises(ValueError):
        fpackng.decode(data, out=np.zeros(3, np.uint8))


def test_files_like_the_command_line(tmp_path):
    source = tmp_path / "frame.fits"
    source.write_bytes(frame("test/hst_stis_ocoa03q2q_raw.fits").read_bytes())
    for c in (c for c in fpackng.codecs() if not c.standard and c.can_encode and "uint16" in c.dtypes):
        packed = fpackng.compress_file(source, tmp_path / f"{c.name}.fz", codec=c.name)
        assert f"ZCMPTYPE= '{c.name}" in packed.read_bytes().decode("latin-1") or cube_only(c)
        restored = fpackng.decompress_file(packed, tmp_path / f"{c.name}.fits")
        assert pixels(restored) == pixels(source), c.name
    # The default name, and no overwrite without asking.
    packed = fpackng.compress_file(source)
    assert packed == tmp_path / "frame.fits.fz"
    before = packed.read_bytes()
    with pytest.raises(fpackng.FpackngError, match="exists"):
        fpackng.compress_file(source, packed, codec=fpackng.codecs()[0].name)
    assert packed.read_bytes() == before
    # A damaged input fails and leaves nothing behind.
    damaged = tmp_path / "damaged.fits.fz"
    damaged.write_bytes(before[: len(before) - 3000])
    with pytest.raises(fpackng.FpackngError):
        fpackng.decompress_file(damaged)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".damaged", "damaged"))) == ["damaged.fits.fz"]
    with pytest.raises(fpackng.FileError):
        fpackng.compress_file(tmp_path / "missing.fits", tmp_path / "x.fz")


def pixels(path):
    """The data units of a FITS file, HDU by HDU (headers may differ in
    CHECKSUM cards)."""
    raw = path.read_bytes()
    out, at = [], 0
    while at < len(raw):
        cards, end = [], False
        while not end:
            block = raw[at:at + 2880]
            at += 2880
            for i in range(0, 2880, 80):
                card = block[i:i + 80].decode("ascii")
                cards.append(card)
                end = end or card.startswith("END     ")
        values = {c[:8].strip(): c[10:].split("/")[0].strip() for c in cards if c[8:10] == "= "}
        naxis = int(values.get("NAXIS", 0))
        size = abs(int(values["BITPIX"])) // 8 * int(np.prod([int(values[f"NAXIS{i}"]) for i in range(1, naxis + 1)])) if naxis else 0
        size = (size + int(values.get("PCOUNT", 0))) * int(values.get("GCOUNT", 1)) if naxis else 0
        out.append(raw[at:at + size])
        at += (size + 2879) // 2880 * 2880
    return out


def test_threads_code_concurrently_and_identically(writable_codecs):
    """Calls from several Python threads at once (the GIL is released while
    the library codes) give the same bytes as one after another."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(c.name, sample(c.dtypes[0], (3, 64, 48), seed=i)) for i, c in enumerate(writable_codecs)]
    alone = [fpackng.encode(a, name) for name, a in jobs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda job: fpackng.encode(job[1], job[0]), jobs * 2))
        decoded = list(pool.map(fpackng.decode, together))
    assert together == alone * 2
    assert all(np.array_equal(b, a) for b, (_, a) in zip(decoded, jobs * 2))
