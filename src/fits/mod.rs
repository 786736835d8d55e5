//! The FITS container: cards, headers, HDUs, 2880-byte blocks, checksums.
//!
//! This layer knows nothing about compression. It reads a file one HDU at a
//! time and writes HDUs back, keeping every card and every byte of the HDUs
//! it is not asked to change.

pub mod card;
pub mod checksum;
pub mod hdu;
pub mod header;

pub use card::{Card, Value};
pub use hdu::{FitsReader, FitsWriter, Hdu, HduKind};
pub use header::Header;

/// FITS files are made of 2880-byte blocks.
pub const BLOCK_LEN: usize = 2880;
