//! Quantization of floating-point tiles (stub: to be implemented).

/// How quantized values are dithered (ZQUANTIZ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantizeMethod {
    /// ZQUANTIZ = 'NO_DITHER'
    NoDither,
    /// ZQUANTIZ = 'SUBTRACTIVE_DITHER_1'
    SubtractiveDither1,
    /// ZQUANTIZ = 'SUBTRACTIVE_DITHER_2' (exact zeros are preserved)
    SubtractiveDither2,
}

/// What the user asked for (fpack -q and friends).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantizeSpec {
    pub method: QuantizeMethod,
    /// > 0: quantization step = measured noise / level (fpack `-q 4`);
    /// < 0: step = -level, absolute (fpack `-q -0.01`).
    pub level: f32,
}

/// A quantized tile: integers plus the per-tile ZSCALE and ZZERO.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedTile {
    pub values: Vec<i32>,
    pub scale: f64,
    pub zero: f64,
}

/// The integer written for NaN pixels (ZBLANK), as cfitsio uses.
pub const NULL_VALUE: i32 = -2147483647;

/// Quantize one tile of floats. `tile_row` is the 1-based tile number and
/// `dither_seed` ZDITHER0 (1..=10000). Returns `None` when the tile cannot be
/// quantized (e.g. zero noise); the caller then stores it losslessly.
pub fn quantize_f32(
    _data: &[f32],
    _width: usize,
    _height: usize,
    _tile_row: usize,
    _dither_seed: i32,
    _spec: &QuantizeSpec,
) -> Option<QuantizedTile> {
    None
}

pub fn quantize_f64(
    _data: &[f64],
    _width: usize,
    _height: usize,
    _tile_row: usize,
    _dither_seed: i32,
    _spec: &QuantizeSpec,
) -> Option<QuantizedTile> {
    None
}

/// Restore floats from quantized integers, exactly as cfitsio does.
/// `zblank`: integers equal to it become NaN.
pub fn dequantize_f32(
    values: &[i32],
    scale: f64,
    zero: f64,
    _method: QuantizeMethod,
    _tile_row: usize,
    _dither_seed: i32,
    _zblank: Option<i32>,
) -> Vec<f32> {
    values.iter().map(|&v| (v as f64 * scale + zero) as f32).collect()
}

pub fn dequantize_f64(
    values: &[i32],
    scale: f64,
    zero: f64,
    _method: QuantizeMethod,
    _tile_row: usize,
    _dither_seed: i32,
    _zblank: Option<i32>,
) -> Vec<f64> {
    values.iter().map(|&v| v as f64 * scale + zero).collect()
}

pub fn dither_seed_from_clock() -> i32 {
    1
}

pub fn dither_seed_from_bytes(_first_tile: &[u8]) -> i32 {
    1
}
