"""fpack-ng's tile-compression algorithms (JXL_1, ...) for astropy.io.fits.

Installed, it registers itself when astropy's compressed-image module is
imported (see _hook.py). This module stays free of heavy imports because the
start-up hook imports it in every Python process.
"""

__version__ = "0.1.0"


def register():
    """Register the new algorithms with astropy.io.fits now.

    Raises RuntimeError on an astropy version this package is not tested
    with (set FPACKNG_ASTROPY_UNTESTED=1 to try anyway). Returns the names
    registered.
    """
    from ._register import register as _register

    return _register()


def codecs():
    """The algorithms of the C library: list of (ZCMPTYPE, cfitsio_native)."""
    from . import _lib

    return [(info.name, info.cfitsio_native) for info in _lib.codec_infos()]
