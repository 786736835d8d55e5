"""Start-up hook: run by fpackng_astropy.pth in every Python process.

It must cost nothing and import nothing heavy: it only puts a finder at the
front of sys.meta_path that waits for ``astropy.io.fits.hdu.compressed``.
When that module is imported, the finder lets the normal machinery find it,
wraps its loader so that the codecs are registered right after the module
has run, and then steps aside for good. Nothing here may raise: a broken
hook must never break Python start-up or an astropy import.
"""

import sys

TARGET = "astropy.io.fits.hdu.compressed"


class _RegisterAfterImport:
    def __init__(self):
        self.done = False

    def find_spec(self, fullname, path=None, target=None):
        if self.done or fullname != TARGET:
            return None
        self.done = True
        try:
            from importlib.machinery import PathFinder

            spec = PathFinder.find_spec(fullname, path)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return None
            run_module = spec.loader.exec_module

            def exec_module(module):
                run_module(module)
                _register_quietly()

            spec.loader.exec_module = exec_module
            return spec
        except Exception:  # never break the import itself
            return None

    def invalidate_caches(self):
        pass


def _register_quietly():
    import warnings

    try:
        from ._register import register_automatically

        register_automatically()
    except Exception as error:  # pragma: no cover - reported, not raised
        warnings.warn(f"fpackng_astropy: codecs not registered: {error}", stacklevel=2)


def install():
    """Register now if astropy's module is loaded, else wait for it."""
    try:
        if TARGET in sys.modules:
            _register_quietly()
        elif not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _RegisterAfterImport())
    except Exception:
        pass
