//! Limits on what a header may ask us to allocate.
//!
//! Every size read from a file (NAXISn, ZTILEn, PCOUNT, heap descriptors) is
//! checked against these limits before anything is allocated, so a damaged or
//! hostile header gives an error instead of an out-of-memory abort or a hang
//! (Debian's fpack hangs on absurd headers; we must not).

/// Allocation limits. The defaults suit a workstation; archive operators
/// with bigger images raise them explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest data unit (bytes) of one HDU we will read into memory.
    pub max_hdu_bytes: u64,
    /// Largest number of header cards in one HDU.
    pub max_header_cards: usize,
    /// Largest number of pixels in one tile.
    pub max_tile_pixels: u64,
    /// Largest number of tiles in one compressed image.
    pub max_tiles: u64,
    /// Largest number of axes.
    pub max_axes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_hdu_bytes: 16 << 30,
            max_header_cards: 100_000,
            max_tile_pixels: 1 << 31,
            max_tiles: 1 << 28,
            max_axes: 999,
        }
    }
}
