//! libfpackng_shim: fpack-ng's tile codecs for programs that cannot link
//! Rust, through two doors.
//!
//! - [`capi`]: a small, versioned C API (include/fpackng_shim.h): list the
//!   codecs, encode and decode one tile, error strings. The astropy package
//!   in python/ calls it through ctypes.
//!   Version 2 adds whole arrays ([`array`]: the Python package's API and
//!   its numcodecs/zarr codecs) and whole files ([`files`]: fpack-ng and
//!   funpack-ng with their verification and atomic writes).
//! - [`interpose`]: with the library in LD_PRELOAD, unmodified programs
//!   linked with Debian's libcfitsio.so.10 (funpack, fitsverify, imcopy, any
//!   C or Fortran code) read tiles of the codecs cfitsio lacks.
//!
//! Both call [`core`], the only place that touches codecs, and which is
//! free of `unsafe`; every codec comes from `fpackng::codec::REGISTRY`, so a
//! newly registered codec is reachable here with no change. The library
//! crate `fpackng` itself forbids `unsafe`: all FFI lives in this crate.

pub mod array;
pub mod capi;
pub mod core;
pub mod files;
pub mod interpose;
