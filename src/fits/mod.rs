//! The FITS container.

pub mod checksum;
