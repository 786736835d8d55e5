"""Shared by the package's tests (run by scripts/test-python.sh in fresh
virtual environments where the wheel was pip-installed)."""

import os
from pathlib import Path

import numpy as np
import pytest

import fpackng

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("FPACKNG_CORPUS", REPO.parent / "shared" / "corpus"))

# Corpus frames the astropy tests read and write, a few per codec (small
# ones: every astropy line reads them, and the neural codecs decode slowly):
# 2-D uint16 HST frames (4 images, 30x30 to 104x104, 62x44) and, for the
# codecs that code cubes as a whole, the JWST ramp (6x2x128x128).
IMAGES = ["test/hst_stis_ocoa03q2q_raw.fits", "test/hst_stis_o4sp040b0_raw_sci1.fits"]
CUBE = "cubes/jwst_fgs_acq1_jw01019001001_uncal.fits"

# FITS's BZERO convention: the value added to the coded (signed) integers.
BZERO = {"int8": -128, "uint16": 1 << 15, "uint32": 1 << 31, "uint64": 1 << 63}


def frame(name):
    path = CORPUS / name
    assert path.is_file(), f"corpus frame {path} missing (set FPACKNG_CORPUS)"
    return path


def sample(dtype, shape, seed=0):
    """An image-like array (smooth background, sources, noise) whose coded
    values lie in 0..4095 (0..255 for bytes), so that every codec, PLIO_1
    included, takes it; floats are plain noise."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.normal(100, 15, shape).astype(dtype)
    top = 255 if dtype.itemsize == 1 else 4095
    grid = np.indices(shape).sum(axis=0)
    values = (grid * 7 % (top // 2) + rng.integers(0, top // 2, shape)).clip(0, top)
    bzero = BZERO.get(dtype.name, 0)
    if bzero < 0:
        return (values - 128).astype(dtype)
    return values.astype(dtype) + dtype.type(bzero)


@pytest.fixture(scope="session")
def writable_codecs():
    return [c for c in fpackng.codecs() if c.can_encode]
