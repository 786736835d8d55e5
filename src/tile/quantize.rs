//! Quantization of floating-point tiles into integers, and its inverse.
//!
//! Why this module exists: fpack stores a BITPIX -32/-64 image lossily by
//! turning each tile into scaled integers (ZSCALE, ZZERO per tile) with a
//! subtractive dither (ZQUANTIZ, ZDITHER0), and funpack undoes it. A file
//! written by us must decompress with cfitsio to the very same floats, and a
//! file written by cfitsio must decompress here to the very same floats as
//! funpack gives. So every routine below is bit-exact with cfitsio 4.x
//! (`quantize.c`, `imcompress.c`):
//!
//! - The dither uses cfitsio's fixed sequence of 10000 pseudo-random floats
//!   (Park & Miller's minimal standard generator). The sequence is part of
//!   the file format: a reader subtracts the same numbers the writer added,
//!   so it can never change. The tile number plus ZDITHER0 picks where in
//!   the sequence a tile starts.
//! - The noise estimate (the median of 2nd, 3rd and 5th order absolute pixel
//!   differences, row by row) follows cfitsio's `FnNoise5` including its
//!   quirks: the arithmetic is done in the pixel type, rows with fewer than
//!   9 good pixels are skipped, and the 2nd-order median is taken over as
//!   many entries as the 3rd-order one (reusing stale entries from earlier
//!   rows), with the same quick-select permutation.
//! - Rounding is cfitsio's `NINT` with the x86-64 meaning of C's
//!   float-to-int conversion (out of range gives `i32::MIN`), and every
//!   expression keeps C's evaluation order and precision (no fused
//!   multiply-add, float arithmetic stays in `f32` where C uses `float`).
//! - Input pixels are first seen the way fpack's reader (`ffgsve`) hands
//!   them to the quantizer: NaN and ±Inf become null, subnormals and -0
//!   become +0.
//!
//! Invariant: for any input, `quantize_*` returns `Some` exactly when
//! cfitsio's `fits_quantize_*` returns 1, with identical integers, ZSCALE
//! and ZZERO; `dequantize_*` equals cfitsio's unquantize routines bit for
//! bit, with null pixels as NaN.

use std::borrow::Cow;
use std::ops::{Add, Mul, Sub};
use std::sync::OnceLock;

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

impl QuantizeMethod {
    /// The ZQUANTIZ keyword value.
    pub fn keyword_value(self) -> &'static str {
        match self {
            QuantizeMethod::NoDither => "NO_DITHER",
            QuantizeMethod::SubtractiveDither1 => "SUBTRACTIVE_DITHER_1",
            QuantizeMethod::SubtractiveDither2 => "SUBTRACTIVE_DITHER_2",
        }
    }

    /// Parse a ZQUANTIZ value (cfitsio compares case-sensitively, after
    /// trailing blanks are dropped by the card parser).
    pub fn from_keyword_value(value: &str) -> Option<Self> {
        match value.trim_end() {
            "NO_DITHER" => Some(QuantizeMethod::NoDither),
            "SUBTRACTIVE_DITHER_1" => Some(QuantizeMethod::SubtractiveDither1),
            "SUBTRACTIVE_DITHER_2" => Some(QuantizeMethod::SubtractiveDither2),
            _ => None,
        }
    }

    fn dithers(self) -> bool {
        !matches!(self, QuantizeMethod::NoDither)
    }
}

/// What the user asked for (fpack -q and friends).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantizeSpec {
    pub method: QuantizeMethod,
    /// - `> 0`: quantization step = measured noise / level (fpack `-q 4`);
    /// - `< 0`: step = -level, absolute (fpack `-q -0.01`);
    /// - `= 0`: step = measured noise / 4 (cfitsio's default).
    pub level: f32,
}

/// A quantized tile: integers plus the per-tile ZSCALE and ZZERO.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedTile {
    pub values: Vec<i32>,
    pub scale: f64,
    pub zero: f64,
    /// True when some pixel was null (NaN/Inf) and so was written as
    /// [`NULL_VALUE`]; the caller must then write `ZBLANK = -2147483647`.
    pub any_null: bool,
}

/// The integer written for NaN pixels (ZBLANK), as cfitsio uses.
pub const NULL_VALUE: i32 = -2147483647;

/// The integer SUBTRACTIVE_DITHER_2 writes for pixels that are exactly 0.0.
pub const ZERO_VALUE: i32 = -2147483646;

/// Integers at and above [`NULL_VALUE`] kept free for markers, so that
/// quantized pixels never collide with ZBLANK or [`ZERO_VALUE`].
const RESERVED_VALUE_COUNT: i32 = 10;

/// Length of cfitsio's dither sequence. Fixed by the format.
pub const RANDOM_SEQUENCE_LENGTH: usize = 10_000;

/// The in-band null marker cfitsio's reader substitutes for NaN/Inf in f32
/// tiles. When a tile holds any null, pixels equal to it are null as well.
pub const FLOAT_NULL_VALUE: f32 = -9.11912E-36;

/// The f64 counterpart of [`FLOAT_NULL_VALUE`].
pub const DOUBLE_NULL_VALUE: f64 = -9.1191291391491E-36;

/// The random sequence cfitsio dithers with, plus the generator's final
/// state (cfitsio checks it equals 1043618065 to catch a wrong port).
fn generate_random_sequence() -> (Vec<f32>, f64) {
    const MULTIPLIER: f64 = 16807.0;
    const MODULUS: f64 = 2147483647.0;
    let mut seed = 1.0f64;
    let mut values = Vec::with_capacity(RANDOM_SEQUENCE_LENGTH);
    for _ in 0..RANDOM_SEQUENCE_LENGTH {
        let product = MULTIPLIER * seed;
        // The quotient is below 16807, so the truncation to i32 is exact.
        seed = product - MODULUS * ((product / MODULUS) as i32 as f64);
        values.push((seed / MODULUS) as f32);
    }
    (values, seed)
}

/// cfitsio's 10000 dither values in [0, 1), computed once.
pub fn random_sequence() -> &'static [f32] {
    static SEQUENCE: OnceLock<Vec<f32>> = OnceLock::new();
    SEQUENCE.get_or_init(|| generate_random_sequence().0)
}

/// Walks the random sequence the way cfitsio does: a tile starts at an
/// offset chosen by its (dithered) row number, and every time the end of
/// the sequence is reached a new offset is drawn from the next seed.
struct DitherCursor {
    sequence: &'static [f32],
    seed_index: usize,
    next: usize,
}

impl DitherCursor {
    /// `dither_row` is cfitsio's `row` argument: tile number + ZDITHER0 - 1.
    fn new(dither_row: i64) -> Self {
        let sequence = random_sequence();
        // cfitsio computes (row - 1) % N with C's signed remainder; rows
        // below 1 never happen for valid ZDITHER0 and would index out of
        // bounds in C, so the Euclidean remainder is only a safety net.
        let seed_index = (dither_row - 1).rem_euclid(RANDOM_SEQUENCE_LENGTH as i64) as usize;
        DitherCursor {
            sequence,
            seed_index,
            next: Self::start_offset(sequence, seed_index),
        }
    }

    fn start_offset(sequence: &[f32], seed_index: usize) -> usize {
        // cfitsio multiplies by 500 in float here, and in double at one
        // call site; a unit test checks both truncate identically for every
        // entry, so one form serves all.
        (sequence[seed_index] * 500.0f32) as usize
    }

    /// The random values for the next `wanted` pixels: a contiguous slice,
    /// possibly shorter than asked for when the sequence wraps.
    fn take(&mut self, wanted: usize) -> &'static [f32] {
        let run = wanted.min(RANDOM_SEQUENCE_LENGTH - self.next);
        let slice = &self.sequence[self.next..self.next + run];
        self.next += run;
        if self.next == RANDOM_SEQUENCE_LENGTH {
            self.seed_index = (self.seed_index + 1) % RANDOM_SEQUENCE_LENGTH;
            self.next = Self::start_offset(self.sequence, self.seed_index);
        }
        slice
    }
}

/// C's `(int) x` as compiled for x86-64 (`cvttsd2si`): truncation, and
/// `i32::MIN` for NaN or anything out of range. Rust's `as` saturates
/// instead, which would differ from cfitsio in those corner cases.
#[inline(always)]
pub(crate) fn c_truncate_to_i32(x: f64) -> i32 {
    if x > -2147483649.0 && x < 2147483648.0 {
        x as i32
    } else {
        i32::MIN
    }
}

/// The 64-bit counterpart of [`c_truncate_to_i32`].
#[inline(always)]
fn c_truncate_to_i64(x: f64) -> i64 {
    if (-9223372036854775808.0..9223372036854775808.0).contains(&x) {
        x as i64
    } else {
        i64::MIN
    }
}

/// cfitsio's `NINT`: round half away from zero, then C truncation.
#[inline(always)]
fn nearest_int(x: f64) -> i32 {
    if x >= 0.0 {
        c_truncate_to_i32(x + 0.5)
    } else {
        c_truncate_to_i32(x - 0.5)
    }
}

/// The pixel types cfitsio quantizes. Arithmetic on `Self` is done in the
/// pixel type, as cfitsio's `float` and `double` code paths do.
trait Sample: Copy + PartialOrd + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> {
    const ZERO: Self;
    const ONE: Self;
    const TWO: Self;
    const FOUR: Self;
    const SIX: Self;
    const GREATEST: Self;
    const NULL_MARKER: Self;
    fn absolute(self) -> Self;
    fn widen(self) -> f64;
    /// NaN or infinite: cfitsio's reader reports these as null.
    fn is_non_finite(self) -> bool;
    /// Zero exponent (±0 and subnormals): cfitsio's reader stores +0.
    fn has_zero_exponent(self) -> bool;
}

impl Sample for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const TWO: Self = 2.0;
    const FOUR: Self = 4.0;
    const SIX: Self = 6.0;
    const GREATEST: Self = f32::MAX;
    const NULL_MARKER: Self = FLOAT_NULL_VALUE;
    fn absolute(self) -> Self {
        self.abs()
    }
    fn widen(self) -> f64 {
        self as f64
    }
    fn is_non_finite(self) -> bool {
        self.to_bits() & 0x7F80_0000 == 0x7F80_0000
    }
    fn has_zero_exponent(self) -> bool {
        self.to_bits() & 0x7F80_0000 == 0
    }
}

impl Sample for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const TWO: Self = 2.0;
    const FOUR: Self = 4.0;
    const SIX: Self = 6.0;
    const GREATEST: Self = f64::MAX;
    const NULL_MARKER: Self = DOUBLE_NULL_VALUE;
    fn absolute(self) -> Self {
        self.abs()
    }
    fn widen(self) -> f64 {
        self
    }
    fn is_non_finite(self) -> bool {
        self.to_bits() & 0x7FF0_0000_0000_0000 == 0x7FF0_0000_0000_0000
    }
    fn has_zero_exponent(self) -> bool {
        self.to_bits() & 0x7FF0_0000_0000_0000 == 0
    }
}

/// The tile as fpack's reader hands it to the quantizer, and whether it
/// holds any null. Borrowed when nothing needed changing (the usual case).
fn normalize_like_reader<T: Sample>(data: &[T]) -> (Cow<'_, [T]>, bool) {
    let needs_change = |v: &T| v.is_non_finite() || v.has_zero_exponent();
    let Some(first) = data.iter().position(needs_change) else {
        return (Cow::Borrowed(data), false);
    };
    let mut any_null = false;
    let mut copy = data.to_vec();
    for v in &mut copy[first..] {
        if v.is_non_finite() {
            *v = T::NULL_MARKER;
            any_null = true;
        } else if v.has_zero_exponent() {
            *v = T::ZERO;
        }
    }
    (Cow::Owned(copy), any_null)
}

/// The f32 tile exactly as cfitsio's reader (`ffgsve` with a null value)
/// gives it to the compressor: NaN/±Inf replaced by [`FLOAT_NULL_VALUE`],
/// subnormals and -0 by +0; plus whether any null was found. The tile
/// driver needs this view for the lossless fallback (cfitsio then writes
/// null pixels as the all-ones NaN pattern `0xFFFFFFFF`).
pub fn normalize_like_cfitsio_reader_f32(data: &[f32]) -> (Cow<'_, [f32]>, bool) {
    normalize_like_reader(data)
}

/// The f64 counterpart of [`normalize_like_cfitsio_reader_f32`] (nulls
/// become [`DOUBLE_NULL_VALUE`]; the lossless fallback writes them as
/// `0xFFFFFFFFFFFFFFFF`).
pub fn normalize_like_cfitsio_reader_f64(data: &[f64]) -> (Cow<'_, [f64]>, bool) {
    normalize_like_reader(data)
}

/// Numerical Recipes' quick-select as cfitsio has it: returns the element
/// of rank (n-1)/2 and leaves `values` in the same permutation as cfitsio,
/// which matters because cfitsio later reads stale entries of this buffer.
// `!(a > b)` is deliberate: it is C's loop condition, and differs from
// `a <= b` when NaN is involved.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn quick_select<T: Sample>(values: &mut [T]) -> T {
    let mut low = 0usize;
    let mut high = values.len() - 1;
    let median = high / 2;
    loop {
        if high <= low {
            return values[median];
        }
        if high == low + 1 {
            if values[low] > values[high] {
                values.swap(low, high);
            }
            return values[median];
        }
        let middle = (low + high) / 2;
        if values[middle] > values[high] {
            values.swap(middle, high);
        }
        if values[low] > values[high] {
            values.swap(low, high);
        }
        if values[middle] > values[low] {
            values.swap(middle, low);
        }
        values.swap(middle, low + 1);

        let mut up = low + 1;
        let mut down = high;
        loop {
            // The median-of-three step leaves sentinels at low+1 and high;
            // the bounds tests only guard against NaN-induced misordering
            // (undefined in C) and never fire for ordered values.
            loop {
                up += 1;
                if up >= high || !(values[low] > values[up]) {
                    break;
                }
            }
            loop {
                down -= 1;
                if down <= low + 1 || !(values[down] > values[low]) {
                    break;
                }
            }
            if down < up {
                break;
            }
            values.swap(up, down);
        }
        values.swap(low, down);
        if down <= median {
            low = up;
        }
        if down >= median {
            high = down - 1;
        }
    }
}

/// Median of the per-row medians, as cfitsio: the mean of the two middle
/// entries after sorting.
fn median_of_rows(mut row_values: Vec<f64>) -> f64 {
    match row_values.len() {
        0 => 0.0,
        1 => row_values[0],
        count => {
            // cfitsio's qsort comparator uses < and >; for the non-negative,
            // non-NaN values seen here total_cmp sorts identically (NaN can
            // only arise from overflowing differences, where cfitsio's
            // order depends on the C library anyway).
            row_values.sort_unstable_by(|a, b| a.total_cmp(b));
            (row_values[(count - 1) / 2] + row_values[count / 2]) / 2.
        }
    }
}

/// The 2nd, 3rd and 5th order noise estimates (cfitsio's `FnNoise5`).
struct NoiseEstimate {
    second_order: f64,
    third_order: f64,
    fifth_order: f64,
}

fn estimate_noise<T: Sample>(
    pixels: &[T],
    width: usize,
    height: usize,
    null_check: bool,
) -> NoiseEstimate {
    let (row_length, row_count) = if width < 9 {
        (width * height, 1)
    } else {
        (width, height)
    };
    let zero_noise = NoiseEstimate {
        second_order: 0.0,
        third_order: 0.0,
        fifth_order: 0.0,
    };
    if row_length < 9 {
        return zero_noise;
    }
    let is_good = |v: &T| !(null_check && *v == T::NULL_MARKER);

    // Allocated once per tile and never cleared between rows: cfitsio takes
    // the 2nd-order median over `third_count` entries, so entries beyond
    // `second_count` are left over from earlier rows (or zero).
    let mut second = vec![T::ZERO; row_length];
    let mut third = vec![T::ZERO; row_length];
    let mut fifth = vec![T::ZERO; row_length];
    let mut row_medians_second = Vec::new();
    let mut row_medians_third = Vec::new();
    let mut row_medians_fifth = Vec::new();

    'rows: for row in pixels.chunks_exact(row_length).take(row_count) {
        let mut good = row.iter().copied().filter(is_good);
        // The sliding window v1..v9 of consecutive good pixels.
        let mut window = [T::ZERO; 8];
        for slot in window.iter_mut() {
            match good.next() {
                Some(v) => *slot = v,
                None => continue 'rows,
            }
        }
        let [mut v1, mut v2, mut v3, mut v4, mut v5, mut v6, mut v7, mut v8] = window;
        let mut second_count = 0usize;
        let mut third_count = 0usize;
        for v9 in good {
            if !(v5 == v6 && v6 == v7) {
                second[second_count] = (v5 - v7).absolute();
                second_count += 1;
            }
            // Constant stretches (sky clipped to a value) say nothing about
            // the noise, so cfitsio leaves them out.
            if !(v3 == v4 && v4 == v5 && v5 == v6 && v6 == v7) {
                third[third_count] = (T::TWO * v5 - v3 - v7).absolute();
                fifth[third_count] =
                    (T::SIX * v5 - T::FOUR * v3 - T::FOUR * v7 + v1 + v9).absolute();
                third_count += 1;
            }
            v1 = v2;
            v2 = v3;
            v3 = v4;
            v4 = v5;
            v5 = v6;
            v6 = v7;
            v7 = v8;
            v8 = v9;
        }
        match third_count {
            0 => continue 'rows,
            1 => {
                if second_count == 1 {
                    row_medians_second.push(second[0].widen());
                }
                row_medians_third.push(third[0].widen());
                row_medians_fifth.push(fifth[0].widen());
            }
            _ => {
                if second_count > 1 {
                    row_medians_second.push(quick_select(&mut second[..third_count]).widen());
                }
                row_medians_third.push(quick_select(&mut third[..third_count]).widen());
                row_medians_fifth.push(quick_select(&mut fifth[..third_count]).widen());
            }
        }
    }

    NoiseEstimate {
        second_order: 1.0483579 * median_of_rows(row_medians_second),
        third_order: 0.6052697 * median_of_rows(row_medians_third),
        fifth_order: 0.1772048 * median_of_rows(row_medians_fifth),
    }
}

/// Minimum, maximum and number of good pixels. cfitsio gathers these while
/// estimating the noise; the results are the same whatever the order, as
/// good pixels are finite and ±0 were normalized away.
fn range_and_good_count<T: Sample>(pixels: &[T], null_check: bool) -> (T, T, usize) {
    let mut minimum = T::GREATEST;
    let mut maximum = T::ZERO - T::GREATEST;
    let mut good = 0usize;
    for &v in pixels {
        if null_check && v == T::NULL_MARKER {
            continue;
        }
        if v < minimum {
            minimum = v;
        }
        if v > maximum {
            maximum = v;
        }
        good += 1;
    }
    (minimum, maximum, good)
}

fn quantize_tile<T: Sample>(
    data: &[T],
    width: usize,
    height: usize,
    tile_row: usize,
    dither_seed: i32,
    spec: &QuantizeSpec,
) -> Option<QuantizedTile> {
    let pixel_count = width * height;
    assert_eq!(
        data.len(),
        pixel_count,
        "tile data length must be width * height"
    );
    if pixel_count <= 1 {
        return None;
    }
    let (pixels, null_check) = normalize_like_reader(data);
    let pixels: &[T] = &pixels;
    let (mut minimum, mut maximum, good_count) = range_and_good_count(pixels, null_check);

    let level = spec.level;
    let step: f64 = if level >= 0.0 {
        let standard_deviation = if null_check && good_count == 0 {
            // All pixels null: cfitsio picks harmless dummies.
            minimum = T::ZERO;
            maximum = T::ONE;
            1.0
        } else {
            let noise = estimate_noise(pixels, width, height, null_check);
            let mut best = noise.third_order;
            if noise.second_order != 0.0 && noise.second_order < best {
                best = noise.second_order;
            }
            if noise.fifth_order != 0.0 && noise.fifth_order < best {
                best = noise.fifth_order;
            }
            best
        };
        let step = if level == 0.0 {
            standard_deviation / 4.0
        } else {
            standard_deviation / level as f64
        };
        if step == 0.0 {
            return None;
        }
        step
    } else {
        (-level) as f64
    };

    // The levels must fit an i32 (less the reserved markers).
    if (maximum - minimum).widen() / step > 2.0 * 2147483647.0 - RESERVED_VALUE_COUNT as f64 {
        return None;
    }

    // Offset that puts the lowest level just above the reserved markers.
    let zero_near_markers = || minimum.widen() - step * (NULL_VALUE + RESERVED_VALUE_COUNT) as f64;
    let any_null = good_count != pixel_count;
    let zero = if any_null || spec.method == QuantizeMethod::SubtractiveDither2 {
        zero_near_markers()
    } else if (maximum - minimum).widen() / step < 2147483647.0 - RESERVED_VALUE_COUNT as f64 {
        // Non-negative integers compress best; rounding the offset to a
        // whole number of steps keeps repeated fpack/funpack cycles stable.
        let steps = c_truncate_to_i64(minimum.widen() / step + 0.5);
        steps as f64 * step
    } else {
        (minimum + maximum).widen() / 2.
    };

    let mut values = Vec::with_capacity(pixel_count);
    let dither_row = if spec.method.dithers() {
        tile_row as i64 + dither_seed as i64 - 1
    } else {
        0
    };
    if dither_row > 0 {
        let keep_zeros = spec.method == QuantizeMethod::SubtractiveDither2;
        let mut cursor = DitherCursor::new(dither_row);
        let mut done = 0;
        while done < pixel_count {
            let randoms = cursor.take(pixel_count - done);
            let chunk = &pixels[done..done + randoms.len()];
            values.extend(chunk.iter().zip(randoms).map(|(&v, &random)| {
                if any_null && v == T::NULL_MARKER {
                    NULL_VALUE
                } else if keep_zeros && v == T::ZERO {
                    ZERO_VALUE
                } else {
                    nearest_int((v.widen() - zero) / step + random as f64 - 0.5)
                }
            }));
            done += randoms.len();
        }
    } else {
        values.extend(pixels.iter().map(|&v| {
            if any_null && v == T::NULL_MARKER {
                NULL_VALUE
            } else {
                nearest_int((v.widen() - zero) / step)
            }
        }));
    }

    Some(QuantizedTile {
        values,
        scale: step,
        zero,
        any_null,
    })
}

/// Quantize one tile of floats. `tile_row` is the 1-based tile number and
/// `dither_seed` ZDITHER0 (1..=10000). Returns `None` when the tile cannot be
/// quantized (e.g. zero noise); the caller then stores it losslessly.
///
/// `width` × `height` is the tile as cfitsio's quantizer sees it: the first
/// tile axis longer than 1 by the product of the others. NaN and ±Inf
/// pixels are null; subnormals count as 0 (see
/// [`normalize_like_cfitsio_reader_f32`]).
///
/// Panics if `data.len() != width * height`.
pub fn quantize_f32(
    data: &[f32],
    width: usize,
    height: usize,
    tile_row: usize,
    dither_seed: i32,
    spec: &QuantizeSpec,
) -> Option<QuantizedTile> {
    quantize_tile(data, width, height, tile_row, dither_seed, spec)
}

/// The f64 counterpart of [`quantize_f32`] (cfitsio's
/// `fits_quantize_double`): same rules, arithmetic in double.
pub fn quantize_f64(
    data: &[f64],
    width: usize,
    height: usize,
    tile_row: usize,
    dither_seed: i32,
    spec: &QuantizeSpec,
) -> Option<QuantizedTile> {
    quantize_tile(data, width, height, tile_row, dither_seed, spec)
}

/// Shared body of the unquantize routines; `narrow` is the final C cast.
#[allow(clippy::too_many_arguments)]
fn dequantize_tile<T: Copy>(
    values: &[i32],
    scale: f64,
    zero: f64,
    method: QuantizeMethod,
    tile_row: usize,
    dither_seed: i32,
    zblank: Option<i32>,
    narrow: impl Fn(f64) -> T,
    not_a_number: T,
    zero_pixel: T,
) -> Vec<T> {
    let mut output = Vec::with_capacity(values.len());
    if !method.dithers() {
        // cfitsio's plain linear scaling (fffi4r4 / fffi4r8).
        match zblank {
            None => output.extend(values.iter().map(|&v| narrow(v as f64 * scale + zero))),
            Some(blank) => output.extend(values.iter().map(|&v| {
                if v == blank {
                    not_a_number
                } else {
                    narrow(v as f64 * scale + zero)
                }
            })),
        }
        return output;
    }

    let keep_zeros = method == QuantizeMethod::SubtractiveDither2;
    let mut cursor = DitherCursor::new(tile_row as i64 + dither_seed as i64 - 1);
    let mut done = 0;
    while done < values.len() {
        let randoms = cursor.take(values.len() - done);
        let chunk = &values[done..done + randoms.len()];
        let restore = |v: i32, random: f32| ((v as f64 - random as f64) + 0.5) * scale + zero;
        match (zblank, keep_zeros) {
            (None, false) => output.extend(
                chunk
                    .iter()
                    .zip(randoms)
                    .map(|(&v, &random)| narrow(restore(v, random))),
            ),
            _ => output.extend(chunk.iter().zip(randoms).map(|(&v, &random)| {
                if Some(v) == zblank {
                    not_a_number
                } else if keep_zeros && v == ZERO_VALUE {
                    zero_pixel
                } else {
                    narrow(restore(v, random))
                }
            })),
        }
        done += randoms.len();
    }
    output
}

/// Restore floats from quantized integers, exactly as cfitsio does.
/// `zblank`: integers equal to it become NaN.
pub fn dequantize_f32(
    values: &[i32],
    scale: f64,
    zero: f64,
    method: QuantizeMethod,
    tile_row: usize,
    dither_seed: i32,
    zblank: Option<i32>,
) -> Vec<f32> {
    dequantize_tile(
        values,
        scale,
        zero,
        method,
        tile_row,
        dither_seed,
        zblank,
        |x| x as f32,
        f32::NAN,
        0.0,
    )
}

/// The f64 counterpart of [`dequantize_f32`] (cfitsio's `unquantize_i4r8`).
pub fn dequantize_f64(
    values: &[i32],
    scale: f64,
    zero: f64,
    method: QuantizeMethod,
    tile_row: usize,
    dither_seed: i32,
    zblank: Option<i32>,
) -> Vec<f64> {
    dequantize_tile(
        values,
        scale,
        zero,
        method,
        tile_row,
        dither_seed,
        zblank,
        |x| x,
        f64::NAN,
        0.0,
    )
}

/// ZDITHER0 from the bytes of the first tile to be quantized (fpack
/// `-qt`, cfitsio's negative requested seed): the byte sum modulo 10000,
/// plus 1. The same image always gets the same seed this way. The bytes
/// are those of the tile as the reader delivered it; byte order does not
/// matter for a sum. See [`dither_seed_from_f32_tile`].
pub fn dither_seed_from_bytes(first_tile: &[u8]) -> i32 {
    let sum = first_tile
        .iter()
        .fold(0u64, |sum, &byte| sum.wrapping_add(byte as u64));
    (sum % 10_000) as i32 + 1
}

/// [`dither_seed_from_bytes`] over an f32 tile after the reader's
/// normalization, which is what cfitsio sums.
pub fn dither_seed_from_f32_tile(first_tile: &[f32]) -> i32 {
    let (pixels, _) = normalize_like_reader(first_tile);
    let bytes: Vec<u8> = pixels.iter().flat_map(|v| v.to_ne_bytes()).collect();
    dither_seed_from_bytes(&bytes)
}

/// [`dither_seed_from_bytes`] over an f64 tile after the reader's
/// normalization.
pub fn dither_seed_from_f64_tile(first_tile: &[f64]) -> i32 {
    let (pixels, _) = normalize_like_reader(first_tile);
    let bytes: Vec<u8> = pixels.iter().flat_map(|v| v.to_ne_bytes()).collect();
    dither_seed_from_bytes(&bytes)
}

/// cfitsio's time-based seed formula: (seconds + CPU hundredths + HDU
/// number) mod 10000, plus 1. Kept separate so the arithmetic is testable.
pub fn dither_seed_from_time(unix_seconds: i64, hundredths: i64, hdu_number: i64) -> i32 {
    // cfitsio sums C ints; the Euclidean remainder keeps the result in
    // range even where that sum would have wrapped.
    ((unix_seconds + hundredths + hdu_number).rem_euclid(10_000)) as i32 + 1
}

/// ZDITHER0 chosen from the clock, as fpack does by default (requested
/// seed 0). cfitsio adds the process CPU time in hundredths of a second and
/// the HDU number to the wall-clock seconds so parallel runs differ; the
/// standard library has no CPU clock, so the sub-second part of the wall
/// clock stands in for it. The value is meant to be unpredictable, so this
/// changes nothing a reader can observe.
pub fn dither_seed_from_clock() -> i32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    dither_seed_from_time(now.as_secs() as i64, (now.subsec_millis() / 10) as i64, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_sequence_matches_cfitsio_self_check() {
        let (values, final_state) = generate_random_sequence();
        // cfitsio refuses to run unless the 10000th state is this number.
        assert_eq!(final_state as i64, 1043618065);
        assert_eq!(values.len(), RANDOM_SEQUENCE_LENGTH);
        assert_eq!(random_sequence(), &values[..]);
        // First state is 16807.
        assert_eq!(values[0], (16807.0f64 / 2147483647.0) as f32);
        assert!(values.iter().all(|&v| (0.0..1.0).contains(&v)));
    }

    #[test]
    fn start_offset_same_in_float_and_double() {
        for &v in random_sequence() {
            let in_float = (v * 500.0f32) as i32;
            let in_double = (v as f64 * 500.0) as i32;
            assert_eq!(in_float, in_double);
            assert!((0..500).contains(&in_float));
        }
    }

    #[test]
    fn c_conversions_behave_like_x86() {
        assert_eq!(nearest_int(2.5), 3);
        assert_eq!(nearest_int(-2.5), -3);
        assert_eq!(nearest_int(-0.4), 0);
        assert_eq!(nearest_int(f64::NAN), i32::MIN);
        assert_eq!(nearest_int(3e9), i32::MIN);
        assert_eq!(nearest_int(2147483647.2), 2147483647);
        assert_eq!(c_truncate_to_i64(1e30), i64::MIN);
    }

    #[test]
    fn quick_select_returns_lower_median() {
        let mut v = vec![5.0f32, 1.0, 4.0, 2.0, 3.0, 9.0];
        assert_eq!(quick_select(&mut v), 3.0);
        let mut w = vec![2.0f64, 1.0];
        assert_eq!(quick_select(&mut w), 1.0);
    }

    fn noisy_tile(width: usize, height: usize) -> Vec<f32> {
        // A small deterministic generator: no dependency, same every run.
        let mut state = 12345u64;
        (0..width * height)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
                100.0 + (i % width) as f32 * 0.1 + noise * 3.0
            })
            .collect()
    }

    #[test]
    fn round_trip_stays_within_one_step() {
        for method in [
            QuantizeMethod::NoDither,
            QuantizeMethod::SubtractiveDither1,
            QuantizeMethod::SubtractiveDither2,
        ] {
            let data = noisy_tile(50, 20);
            let spec = QuantizeSpec { method, level: 4.0 };
            let q = quantize_f32(&data, 50, 20, 3, 17, &spec).expect("noisy tile quantizes");
            assert!(!q.any_null);
            let back = dequantize_f32(&q.values, q.scale, q.zero, method, 3, 17, None);
            for (a, b) in data.iter().zip(&back) {
                assert!(((a - b).abs() as f64) <= q.scale, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn constant_tile_is_refused_and_nulls_flagged() {
        let spec = QuantizeSpec {
            method: QuantizeMethod::SubtractiveDither1,
            level: 4.0,
        };
        assert!(quantize_f32(&[7.0; 100], 10, 10, 1, 1, &spec).is_none());
        assert!(quantize_f32(&[7.0], 1, 1, 1, 1, &spec).is_none());

        let mut data = noisy_tile(20, 5);
        data[7] = f32::NAN;
        data[8] = f32::INFINITY;
        let q = quantize_f32(&data, 20, 5, 1, 1, &spec).unwrap();
        assert!(q.any_null);
        assert_eq!(q.values[7], NULL_VALUE);
        assert_eq!(q.values[8], NULL_VALUE);
        let back = dequantize_f32(
            &q.values,
            q.scale,
            q.zero,
            spec.method,
            1,
            1,
            Some(NULL_VALUE),
        );
        assert!(back[7].is_nan() && back[8].is_nan() && !back[9].is_nan());
    }

    #[test]
    fn subtractive_dither_2_keeps_exact_zeros() {
        let mut data = noisy_tile(30, 4);
        data[5] = 0.0;
        let spec = QuantizeSpec {
            method: QuantizeMethod::SubtractiveDither2,
            level: 4.0,
        };
        let q = quantize_f32(&data, 30, 4, 2, 5, &spec).unwrap();
        assert_eq!(q.values[5], ZERO_VALUE);
        let back = dequantize_f32(&q.values, q.scale, q.zero, spec.method, 2, 5, None);
        assert_eq!(back[5].to_bits(), 0.0f32.to_bits());
    }

    #[test]
    fn dither_seeds_are_in_range() {
        assert_eq!(dither_seed_from_bytes(&[]), 1);
        assert_eq!(dither_seed_from_bytes(&[255; 40]), 10_200 % 10_000 + 1);
        assert_eq!(
            dither_seed_from_time(1_700_000_000, 37, 1),
            (1_700_000_038 % 10_000) + 1
        );
        assert_eq!(dither_seed_from_time(-5, 0, 0), 9_996);
        let seed = dither_seed_from_clock();
        assert!((1..=10_000).contains(&seed));
        // NaN is summed as cfitsio's null marker, not as NaN bytes.
        assert_eq!(
            dither_seed_from_f32_tile(&[f32::NAN, 1.0]),
            dither_seed_from_f32_tile(&[FLOAT_NULL_VALUE, 1.0])
        );
    }
}
