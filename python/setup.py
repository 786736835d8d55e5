"""Build step: puts the compiled library, the start-up hook and the entry
points into the wheel.

- libfpackng_shim.so (the C API of cfitsio-shim/include/fpackng_shim.h) is
  copied into fpackng/: from $FPACKNG_SHIM_LIB if set, otherwise built with
  `cargo build --release -p cfitsio-shim` in the checkout this file is in
  (CARGO_TARGET_DIR is honoured).
- fpackng.pth goes to the root of site-packages, where Python runs its one
  import line at start-up (see _fpackng_hook.py).
- The numcodecs.codecs and zarr.codecs entry points are generated from the
  library's registry (every codec it can write), so a codec added to the
  library needs no change here.
"""

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
LIBRARY = "libfpackng_shim.so"


def shim_library() -> Path:
    given = os.environ.get("FPACKNG_SHIM_LIB")
    if given:
        path = Path(given)
        if not path.is_file():
            raise SystemExit(f"FPACKNG_SHIM_LIB={given} is not a file")
        return path
    repo = HERE.parent
    if not (repo / "cfitsio-shim" / "Cargo.toml").is_file():
        raise SystemExit("set FPACKNG_SHIM_LIB to a built libfpackng_shim.so, or install from an "
                         "fpack-ng checkout (pip install ./python) so that cargo can build it")
    subprocess.run(["cargo", "build", "--release", "-p", "cfitsio-shim"], cwd=repo, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", repo / "target"))
    return target / "release" / LIBRARY


def entry_points(library: Path):
    """numcodecs.codecs and zarr.codecs entries, one per codec that can write."""
    spec = importlib.util.spec_from_file_location("_fpackng_build_lib", HERE / "fpackng" / "_lib.py")
    lib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lib)
    os.environ["FPACKNG_SHIM_LIB"] = str(library)
    names = [c.name for c in lib.codec_infos() if c.can_encode]
    return {
        "numcodecs.codecs": [f"fpackng.{n.lower()} = fpackng.numcodecs:{n}" for n in names],
        "zarr.codecs": [f"fpackng.{n.lower()} = fpackng.zarr:{n}" for n in names],
    }


LIBRARY_PATH = shim_library()


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        package_dir = Path(self.build_lib) / "fpackng"
        package_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(LIBRARY_PATH, package_dir / LIBRARY)
        shutil.copy2(HERE / "fpackng.pth", Path(self.build_lib) / "fpackng.pth")


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


commands = {"build_py": BuildWithLibrary}
try:  # setuptools >= 70.1 has its own bdist_wheel; older ones use wheel's
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:
    from wheel.bdist_wheel import bdist_wheel


class PlatformWheel(bdist_wheel):
    """py3-none-<platform>: the library is loaded with ctypes, so one wheel
    serves every Python 3 on this platform."""

    def get_tag(self):
        return ("py3", "none", super().get_tag()[2])


commands["bdist_wheel"] = PlatformWheel

setup(cmdclass=commands, distclass=BinaryDistribution,
      entry_points=entry_points(LIBRARY_PATH))
