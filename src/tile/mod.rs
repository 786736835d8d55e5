//! Tiles: geometry, typed pixels, quantization, and the compressed table.

pub mod pixels;
pub mod quantize;

pub use pixels::{PixelType, Pixels};
