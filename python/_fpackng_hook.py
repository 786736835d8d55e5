"""Start-up hook of the fpack-ng package, run by fpackng.pth in every Python
process: registers fpack-ng's codecs with astropy.io.fits as soon as that
is imported, so that users import nothing.

It must cost nothing and import nothing heavy (not even fpackng): it only
puts a finder at the front of sys.meta_path that waits for
``astropy.io.fits``. When that package is imported, the finder lets the
normal machinery find it, wraps its loader so that the codecs are
registered right after the package has run (by then its compressed-image
modules are loaded), and steps aside. Nothing here may raise: a broken
hook must never break Python start-up or an astropy import.
"""

import sys

TARGET = "astropy.io.fits"


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
    try:
        from fpackng._astropy import register

        register()
    except Exception as error:  # reported, never raised
        import warnings

        warnings.warn(f"fpackng: codecs not registered with astropy: {error}", stacklevel=2)


def install():
    """Register now if astropy.io.fits is loaded, else wait for it."""
    try:
        if TARGET in sys.modules:
            _register_quietly()
        elif not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _RegisterAfterImport())
    except Exception:
        pass
