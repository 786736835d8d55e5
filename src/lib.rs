//! fpackng: FITS tiled-image compression (FITS 4.0 §10), the library behind
//! the `fpack-ng` and `funpack-ng` commands.
//!
//! Layers, each knowing only the ones above it in this list:
//! - [`fits`]: the container: 80-character cards, headers, HDUs, 2880-byte
//!   blocks, checksums. Knows nothing of compression.
//! - [`tile`]: tile geometry, typed pixel buffers, quantization and dither,
//!   and the binary-table layout of a compressed image.
//! - [`neural`]: integer networks for the neural codecs: the integer
//!   semantics, engines (CPU; tch behind a feature), entropy coding from
//!   integer CDF tables, model files. Knows pixels, not FITS.
//! - [`codec`]: the codec interface and one module per ZCMPTYPE.
//! - [`pack`]: whole HDUs and files: compress, decompress, verify, and write
//!   safely (temporary file, re-read, rename).
//! - [`archive`]: jobs over whole archives: discovery, sharding, a journal
//!   to resume from, parallel recompression and its report.

#![forbid(unsafe_code)]
// Errors carry their context (file, HDU, tile) and the codec's own error by
// value; they are created once per failed file, never in a loop, so their
// size costs nothing measurable and boxing them would only add noise.
#![allow(clippy::result_large_err)]
// Numeric code walks parallel arrays (planes and offsets, axes and strides)
// by index; iterator chains would hide which array drives the loop.
#![allow(clippy::needless_range_loop)]

pub mod archive;
pub mod codec;
pub mod error;
pub mod fits;
pub mod limits;
pub mod neural;
pub mod pack;
pub mod tile;

pub use error::{CodecError, Context, Error, Result};

#[cfg(test)]
mod test_rng;
pub use limits::Limits;
