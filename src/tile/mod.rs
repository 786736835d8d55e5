//! Tiles: geometry, typed pixels, quantization, and the compressed table.
//!
//! This layer sits between the FITS container and the codecs: it knows how
//! an image is cut into tiles and how a compressed image is laid out as a
//! binary table, but not how any codec works.

pub mod geometry;
pub mod pixels;
pub mod quantize;
pub mod table;

pub use geometry::TileGrid;
pub use pixels::{PixelType, Pixels};
