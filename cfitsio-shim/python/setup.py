"""Build step that puts the C library and the start-up hook into the wheel.

- libfpackng_shim.so (the C API of ../include/fpackng_shim.h) is copied into
  the package: from $FPACKNG_SHIM_LIB if set, otherwise built with
  `cargo build --release -p cfitsio-shim` in the checkout this file is in
  (CARGO_TARGET_DIR is honoured).
- fpackng_astropy.pth goes to the root of site-packages, where Python runs
  its one import line at start-up (see fpackng_astropy/_hook.py).
"""

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
    repo = HERE.parent.parent
    if not (repo / "Cargo.toml").is_file():
        raise SystemExit(
            "set FPACKNG_SHIM_LIB to a built libfpackng_shim.so, or install from an "
            "fpack-ng checkout (pip install cfitsio-shim/python) so that cargo can build it"
        )
    subprocess.run(
        ["cargo", "build", "--release", "-p", "cfitsio-shim"], cwd=repo, check=True
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", repo / "target"))
    return target / "release" / LIBRARY


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        package_dir = Path(self.build_lib) / "fpackng_astropy"
        package_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shim_library(), package_dir / LIBRARY)
        shutil.copy2(HERE / "fpackng_astropy.pth", Path(self.build_lib) / "fpackng_astropy.pth")


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
