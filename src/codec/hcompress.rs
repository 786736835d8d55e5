//! HCOMPRESS_1: R. White's H-transform followed by quadtree coding of the
//! coefficient bit planes (FITS 4.0 §10.4.4), as cfitsio writes it.
//!
//! It exists because HCOMPRESS is the standard's only 2-D codec and its only
//! integer codec with a lossy mode; archives (the Digitized Sky Survey, HST
//! previews) hold many files written with it.
//!
//! Invariants this module keeps:
//! - Streams are byte-identical to cfitsio's. That means the same integer
//!   width for the coefficients (32-bit for 8- and 16-bit pixels, 64-bit for
//!   32-bit pixels, chosen by the tile's pixel type exactly as cfitsio
//!   chooses by ZBITPIX), the same wrap-around on overflow that cfitsio's
//!   compiled C shows, the same rounding, code tables, and the same choice
//!   between quadtree and direct bit maps.
//! - A tile is 2-D the way cfitsio sees it: width = the first axis longer
//!   than 1, height = the product of the other axes.
//! - Decoding never trusts the stream: the dimensions it declares must match
//!   the tile, every read is bounds-checked and a short stream is an error,
//!   every loop is bounded by the tile size or consumes input, and memory is
//!   proportional to the tile size whatever the stream says.
//!
//! Stream layout (big-endian):
//! `DD 99` magic, height (i32), width (i32), scale (i32), the transform's
//! first coefficient (i64), three bit-plane counts (u8: lowest-frequency
//! quadrant, the two mixed quadrants, the highest-frequency quadrant), the
//! bit planes of the four quadrants as a bit stream closed by a zero nybble
//! and padded to a byte, then one sign bit per nonzero coefficient, padded
//! to a byte.

use std::num::Wrapping;
use std::ops::{Add, BitAnd, BitOr, BitXor, Div, Neg, Shl, Shr, Sub};

use super::{Codec, EncodeOptions, ParamValue, Params, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

pub struct Hcompress;

/// ZNAME of the scale factor: 0 = lossless, > 0 = multiple of the tile's
/// background noise, < 0 = absolute scale (negated).
const SCALE_PARAM: &str = "SCALE";
/// ZNAME of the decode-time smoothing switch (nonzero = smooth).
const SMOOTH_PARAM: &str = "SMOOTH";

const MAGIC: [u8; 2] = [0xDD, 0x99];
/// Bytes before the bit planes: magic, height, width, scale, sum, plane counts.
const HEADER_LEN: usize = 2 + 4 + 4 + 4 + 8 + 3;

impl Codec for Hcompress {
    fn is_standard(&self) -> bool {
        true
    }

    fn id(&self) -> &'static str {
        "HCOMPRESS_1"
    }

    fn short_names(&self) -> &'static [&'static str] {
        &["hcompress"]
    }

    fn description(&self) -> &'static str {
        "H-transform (FITS standard); lossless, or lossy with a scale (-s)"
    }

    /// Lossy when ZNAME SCALE is nonzero.
    fn is_lossless(&self, params: &Params) -> bool {
        params.get_float(SCALE_PARAM).is_none_or(|s| s == 0.0)
    }

    /// cfitsio falls back to SUBTRACTIVE_DITHER_1: the H-transform does not
    /// keep exact zeros.
    fn dither2_zcmptype(&self) -> Option<&'static str> {
        None
    }

    /// cfitsio's rules (imcomp_init_table): 2-D tiles; by default blocks of
    /// about 16 rows whose last block keeps at least 4 rows.
    fn tile_axes(
        &self,
        image: &[usize],
        mut tile: Vec<usize>,
        user_default: bool,
    ) -> Result<Vec<usize>, CodecError> {
        let n = image.len();
        if n < 2 || image.iter().filter(|&&d| d >= 4).count() < 2 {
            return Err(CodecError::BadParameter(
                "HCOMPRESS_1 needs an image with at least two axes of 4 or more pixels".into(),
            ));
        }
        if user_default {
            tile[1] = if image[1] <= 30 {
                image[1]
            } else {
                [16, 24, 20, 30, 28, 26, 22, 18, 14]
                    .into_iter()
                    .find(|&t| image[1].is_multiple_of(t) || image[1] % t > 3)
                    .unwrap_or(17)
            };
        }
        let big: Vec<usize> = (0..n).filter(|&i| tile[i] > 1).collect();
        if big.len() != 2 || tile[big[0]] < 4 || tile[big[1]] < 4 {
            return Err(CodecError::BadParameter(
                "HCOMPRESS_1 tiles must have exactly two axes of at least 4 pixels".into(),
            ));
        }
        for &axis in &big {
            let remain = image[axis] % tile[axis];
            if remain > 0 && remain < 4 {
                let ndiv = image[axis] / tile[axis];
                tile[axis] += remain.div_ceil(ndiv);
                let remain = image[axis] % tile[axis];
                if remain > 0 && remain < 4 {
                    return Err(CodecError::BadParameter(format!(
                        "HCOMPRESS_1: the last tile along axis {} would have fewer than 4 pixels",
                        axis + 1
                    )));
                }
            }
        }
        Ok(tile)
    }

    fn supports(&self, pixel_type: PixelType) -> bool {
        matches!(pixel_type, PixelType::U8 | PixelType::I16 | PixelType::I32)
    }

    /// cfitsio writes ZNAME1='SCALE' (the user's float, not the per-tile
    /// integer scale, which lives in each stream) and ZNAME2='SMOOTH'.
    fn encode_params(&self, _pixel_type: PixelType, options: &EncodeOptions) -> Params {
        Params::new()
            .with(
                SCALE_PARAM,
                ParamValue::Float(f64::from(options.hcompress_scale)),
            )
            .with(
                SMOOTH_PARAM,
                ParamValue::Int(i64::from(options.hcompress_smooth)),
            )
    }

    fn encode(&self, pixels: &Pixels, spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        let (width, height) = plane_dims(spec.shape);
        let n = spec.len();
        if n == 0 {
            return Err(CodecError::Unsupported(
                "HCOMPRESS_1 cannot code an empty tile".into(),
            ));
        }
        if pixels.len() != n {
            return Err(CodecError::Unsupported(format!(
                "tile has {} pixels but its shape holds {n}",
                pixels.len()
            )));
        }
        if i32::try_from(width).is_err() || i32::try_from(height).is_err() {
            return Err(CodecError::Unsupported(format!(
                "HCOMPRESS_1 tile {width}x{height} exceeds the 32-bit dimensions of the stream"
            )));
        }
        let values: Vec<i32> = match pixels {
            Pixels::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
            Pixels::I16(v) => v.iter().map(|&x| i32::from(x)).collect(),
            Pixels::I32(v) => v.clone(),
            other => {
                return Err(CodecError::Unsupported(format!(
                    "HCOMPRESS_1 codes 8-, 16- and 32-bit integers, not {:?}",
                    other.pixel_type()
                )))
            }
        };
        let scale = tile_scale(spec.params, &values, width, height)?;
        Ok(match pixels.pixel_type() {
            PixelType::I32 => compress(
                values.iter().map(|&x| Wrapping(i64::from(x))).collect(),
                height,
                width,
                scale,
            ),
            _ => compress(
                values.into_iter().map(Wrapping).collect(),
                height,
                width,
                scale,
            ),
        })
    }

    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError> {
        let smooth = match spec.params.get(SMOOTH_PARAM) {
            None => false,
            Some(_) => match spec.params.get_float(SMOOTH_PARAM) {
                Some(v) => v != 0.0,
                None => {
                    return Err(CodecError::BadParameter(
                        "ZVAL for SMOOTH is not a number".into(),
                    ))
                }
            },
        };
        let n = spec.len();
        if n == 0 {
            return Err(CodecError::Unsupported(
                "HCOMPRESS_1 cannot decode an empty tile".into(),
            ));
        }
        // cfitsio collapses the tile one way, TileSpec::width_height another;
        // they differ only when the first axis is 1. Accept either.
        let (w1, h1) = plane_dims(spec.shape);
        let (w2, h2) = spec.width_height();
        let accepted = [(h1, w1), (h2, w2)];
        match spec.pixel_type {
            PixelType::U8 => {
                let a = decompress::<Wrapping<i32>>(bytes, &accepted, smooth)?;
                Ok(Pixels::U8(
                    a.iter().map(|v| v.0.clamp(0, 255) as u8).collect(),
                ))
            }
            PixelType::I16 => {
                let a = decompress::<Wrapping<i32>>(bytes, &accepted, smooth)?;
                // Lossy streams can overshoot; cfitsio clips them to the type.
                Ok(Pixels::I16(
                    a.iter()
                        .map(|v| v.0.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
                        .collect(),
                ))
            }
            PixelType::I32 => {
                let a = decompress::<Wrapping<i64>>(bytes, &accepted, smooth)?;
                // cfitsio narrows its 64-bit result by plain truncation.
                Ok(Pixels::I32(a.iter().map(|v| v.0 as i32).collect()))
            }
            other => Err(CodecError::Unsupported(format!(
                "HCOMPRESS_1 decodes to 8-, 16- or 32-bit integers, not {other:?}"
            ))),
        }
    }
}

/// Width and height of a tile as cfitsio's HCOMPRESS sees it: the first
/// axis longer than 1 is the row, everything else is stacked rows.
fn plane_dims(shape: &[usize]) -> (usize, usize) {
    let total: usize = shape.iter().product();
    match shape.iter().copied().find(|&d| d > 1) {
        Some(width) => (width, total / width),
        None => (1, total),
    }
}

/// The integer scale cfitsio applies to one tile (see [`SCALE_PARAM`]).
/// The float arithmetic mirrors cfitsio's float/double mix so that the
/// rounding to an integer agrees.
fn tile_scale(
    params: &Params,
    values: &[i32],
    width: usize,
    height: usize,
) -> Result<i32, CodecError> {
    let requested = match params.get(SCALE_PARAM) {
        None => 0.0f32,
        Some(_) => params
            .get_float(SCALE_PARAM)
            .ok_or_else(|| CodecError::BadParameter("ZVAL for SCALE is not a number".into()))?
            as f32,
    };
    if !requested.is_finite() {
        return Err(CodecError::BadParameter(format!(
            "HCOMPRESS_1 scale {requested} is not finite"
        )));
    }
    let absolute = if requested > 0.0 {
        (f64::from(requested) * background_noise(values, width, height)) as f32
    } else {
        -requested
    };
    // cfitsio's `(int)(scale + 0.5)`, with C's x86-64 meaning for values out
    // of range (i32::MIN, which then means "no quantization"), so the
    // streams stay identical to fpack's even for full-range 32-bit images.
    Ok(crate::tile::quantize::c_truncate_to_i32(
        f64::from(absolute) + 0.5,
    ))
}

// ---------------------------------------------------------------------------
// Coefficient arithmetic

/// The integer type the transform runs in. Wrapping arithmetic reproduces
/// what cfitsio's C does when 32-bit intermediates overflow, so streams stay
/// identical even then; on decode it keeps hostile streams from panicking.
trait Coefficient:
    Copy
    + Ord
    + Add<Output = Self>
    + Sub<Output = Self>
    + Neg<Output = Self>
    + Div<Output = Self>
    + BitAnd<Output = Self>
    + BitOr<Output = Self>
    + BitXor<Output = Self>
    + Shl<usize, Output = Self>
    + Shr<usize, Output = Self>
{
    const BITS: u32;
    fn from_i64(v: i64) -> Self;
    fn to_i64(self) -> i64;
}

impl Coefficient for Wrapping<i32> {
    const BITS: u32 = 32;
    fn from_i64(v: i64) -> Self {
        Wrapping(v as i32)
    }
    fn to_i64(self) -> i64 {
        i64::from(self.0)
    }
}

impl Coefficient for Wrapping<i64> {
    const BITS: u32 = 64;
    fn from_i64(v: i64) -> Self {
        Wrapping(v)
    }
    fn to_i64(self) -> i64 {
        self.0
    }
}

fn lit<T: Coefficient>(v: i64) -> T {
    T::from_i64(v)
}

/// Number of halvings (rounding up) that bring `n` down to 1.
fn ceil_log2(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

/// `(rows, cols)` after 0, 1, ..., `count` halvings rounded up.
fn halvings(rows: usize, cols: usize, count: usize) -> Vec<(usize, usize)> {
    let mut dims = Vec::with_capacity(count + 1);
    let (mut r, mut c) = (rows, cols);
    dims.push((r, c));
    for _ in 0..count {
        r = r.div_ceil(2);
        c = c.div_ceil(2);
        dims.push((r, c));
    }
    dims
}

/// Move the odd-indexed elements of a strided run after the even ones.
fn shuffle<T: Copy>(a: &mut [T], start: usize, n: usize, stride: usize, tmp: &mut Vec<T>) {
    tmp.clear();
    tmp.extend((1..n).step_by(2).map(|i| a[start + i * stride]));
    for i in (2..n).step_by(2) {
        a[start + (i / 2) * stride] = a[start + i * stride];
    }
    let half = n.div_ceil(2);
    for (t, &v) in tmp.iter().enumerate() {
        a[start + (half + t) * stride] = v;
    }
}

/// Inverse of [`shuffle`]: interleave the second half back between the first.
fn unshuffle<T: Copy>(a: &mut [T], start: usize, n: usize, stride: usize, tmp: &mut Vec<T>) {
    let half = n.div_ceil(2);
    tmp.clear();
    tmp.extend((half..n).map(|i| a[start + i * stride]));
    for i in (0..half).rev() {
        a[start + 2 * i * stride] = a[start + i * stride];
    }
    for (t, &v) in tmp.iter().enumerate() {
        a[start + (2 * t + 1) * stride] = v;
    }
}

// ---------------------------------------------------------------------------
// Forward transform and coding

fn compress<T: Coefficient>(mut a: Vec<T>, height: usize, width: usize, scale: i32) -> Vec<u8> {
    h_transform(&mut a, height, width);
    digitize(&mut a, scale);
    encode_stream(&mut a, height, width, scale)
}

/// In-place H-transform: each level replaces 2x2 blocks by their sum and
/// three differences, then groups the sums in the top-left quarter. The
/// masks drop bits that the inverse can recover from the other coefficients.
fn h_transform<T: Coefficient>(a: &mut [T], height: usize, width: usize) {
    let zero = lit::<T>(0);
    let levels = ceil_log2(height.max(width));
    let mut tmp = Vec::with_capacity(height.max(width).div_ceil(2));
    let mut shift = 0usize;
    let mut mask: T = lit(-2);
    let mut mask2: T = lit(-4);
    let mut prnd: T = lit(1);
    let mut prnd2: T = lit(2);
    let mut nrnd2: T = lit(1);
    for &(rows, cols) in halvings(height, width, levels).iter().take(levels) {
        let round_diff = |h: T| (if h >= zero { h + prnd } else { h }) & mask;
        let round_sum = |h: T| (if h >= zero { h + prnd2 } else { h + nrnd2 }) & mask2;
        let odd_r = rows % 2;
        let odd_c = cols % 2;
        for i in (0..rows - odd_r).step_by(2) {
            let s00 = i * width;
            let s10 = s00 + width;
            for j in (0..cols - odd_c).step_by(2) {
                let (p00, p01, p10, p11) = (a[s00 + j], a[s00 + j + 1], a[s10 + j], a[s10 + j + 1]);
                let h0 = (p11 + p10 + p01 + p00) >> shift;
                let hx = (p11 + p10 - p01 - p00) >> shift;
                let hy = (p11 - p10 + p01 - p00) >> shift;
                let hc = (p11 - p10 - p01 + p00) >> shift;
                a[s10 + j + 1] = hc;
                a[s10 + j] = round_diff(hx);
                a[s00 + j + 1] = round_diff(hy);
                a[s00 + j] = round_sum(h0);
            }
            if odd_c == 1 {
                let j = cols - 1;
                let h0 = (a[s10 + j] + a[s00 + j]) << (1 - shift);
                let hx = (a[s10 + j] - a[s00 + j]) << (1 - shift);
                a[s10 + j] = round_diff(hx);
                a[s00 + j] = round_sum(h0);
            }
        }
        if odd_r == 1 {
            let s00 = (rows - 1) * width;
            for j in (0..cols - odd_c).step_by(2) {
                let h0 = (a[s00 + j + 1] + a[s00 + j]) << (1 - shift);
                let hy = (a[s00 + j + 1] - a[s00 + j]) << (1 - shift);
                a[s00 + j + 1] = round_diff(hy);
                a[s00 + j] = round_sum(h0);
            }
            if odd_c == 1 {
                let j = cols - 1;
                let h0 = a[s00 + j] << (2 - shift);
                a[s00 + j] = round_sum(h0);
            }
        }
        for i in 0..rows {
            shuffle(a, i * width, cols, 1, &mut tmp);
        }
        for j in 0..cols {
            shuffle(a, j, rows, width, &mut tmp);
        }
        // After the first level the sums carry one extra bit of scale.
        shift = 1;
        mask = mask2;
        prnd = prnd2;
        mask2 = mask2 << 1;
        prnd2 = prnd2 << 1;
        nrnd2 = prnd2 - lit(1);
    }
}

/// Lossy step: divide every coefficient by `scale`, rounding half away from 0.
fn digitize<T: Coefficient>(a: &mut [T], scale: i32) {
    if scale <= 1 {
        return;
    }
    let zero = lit::<T>(0);
    let d: T = lit(i64::from(scale.wrapping_add(1) / 2 - 1));
    let s: T = lit(i64::from(scale));
    for v in a.iter_mut() {
        *v = (if *v > zero { *v + d } else { *v - d }) / s;
    }
}

/// Huffman codes of the 16 possible 2x2 bit patterns, written LSB first
/// into a buffer that is later emitted backwards.
const CODE: [u8; 16] = [
    0x3e, 0x00, 0x01, 0x08, 0x02, 0x09, 0x1a, 0x1b, 0x03, 0x1c, 0x0a, 0x1d, 0x0b, 0x1e, 0x3f, 0x0c,
];
const CODE_LEN: [u8; 16] = [6, 3, 3, 4, 3, 4, 5, 5, 3, 5, 4, 5, 4, 5, 6, 4];

/// MSB-first bit output.
struct BitWriter {
    out: Vec<u8>,
    buffer: u32,
    free: i32,
}

impl BitWriter {
    fn new(out: Vec<u8>) -> Self {
        BitWriter {
            out,
            buffer: 0,
            free: 8,
        }
    }

    /// Append the low `n` (<= 8) bits of `bits`.
    fn put(&mut self, bits: u32, n: u32) {
        self.buffer = ((self.buffer << n) | (bits & ((1 << n) - 1))) & 0xffff;
        self.free -= n as i32;
        if self.free <= 0 {
            self.out.push((self.buffer >> (-self.free)) as u8);
            self.free += 8;
        }
    }

    fn flush(&mut self) {
        if self.free < 8 {
            self.out.push((self.buffer << self.free) as u8);
            self.buffer = 0;
            self.free = 8;
        }
    }
}

/// Build the half-resolution map of 2x2 blocks of a `rows` x `cols` bitmap:
/// bit 3 = top-left, 2 = top-right, 1 = bottom-left, 0 = bottom-right.
/// Blocks cut by the edge leave the missing bits 0.
fn pack_blocks(rows: usize, cols: usize, out: &mut [u8], is_set: impl Fn(usize, usize) -> bool) {
    let cols2 = cols.div_ceil(2);
    for r in (0..rows).step_by(2) {
        for c in (0..cols).step_by(2) {
            let mut v = u8::from(is_set(r, c)) << 3;
            if c + 1 < cols {
                v |= u8::from(is_set(r, c + 1)) << 2;
            }
            if r + 1 < rows {
                v |= u8::from(is_set(r + 1, c)) << 1;
                if c + 1 < cols {
                    v |= u8::from(is_set(r + 1, c + 1));
                }
            }
            out[(r / 2) * cols2 + c / 2] = v;
        }
    }
}

/// Accumulates the Huffman codes of one bit plane; reports when the coded
/// form would be no smaller than the direct bitmap.
struct CodeBuffer {
    bytes: Vec<u8>,
    limit: usize,
    pending: u32,
    pending_bits: u32,
}

impl CodeBuffer {
    /// Add the codes of all nonzero entries; false once the buffer is full.
    fn push_all(&mut self, codes: &[u8]) -> bool {
        for &c in codes.iter().filter(|&&c| c != 0) {
            self.pending |= u32::from(CODE[usize::from(c)]) << self.pending_bits;
            self.pending_bits += u32::from(CODE_LEN[usize::from(c)]);
            if self.pending_bits >= 8 {
                self.bytes.push(self.pending as u8);
                if self.bytes.len() >= self.limit {
                    return false;
                }
                self.pending >>= 8;
                self.pending_bits -= 8;
            }
        }
        true
    }
}

fn encode_stream<T: Coefficient>(a: &mut [T], height: usize, width: usize, scale: i32) -> Vec<u8> {
    let zero = lit::<T>(0);
    let mut out = Vec::with_capacity(HEADER_LEN + a.len() / 2);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(height as i32).to_be_bytes());
    out.extend_from_slice(&(width as i32).to_be_bytes());
    out.extend_from_slice(&scale.to_be_bytes());
    // The overall sum codes badly as bit planes, so it travels verbatim.
    out.extend_from_slice(&a[0].to_i64().to_be_bytes());
    a[0] = zero;

    let mut signs = Vec::with_capacity(a.len() / 8 + 1);
    let mut sign_byte = 0u8;
    let mut sign_count = 0u32;
    for v in a.iter_mut().filter(|v| **v != zero) {
        sign_byte = (sign_byte << 1) | u8::from(*v < zero);
        sign_count += 1;
        if *v < zero {
            *v = -*v;
        }
        if sign_count == 8 {
            signs.push(sign_byte);
            sign_byte = 0;
            sign_count = 0;
        }
    }
    if sign_count > 0 {
        signs.push(sign_byte << (8 - sign_count));
    }

    let (h2, w2) = (height.div_ceil(2), width.div_ceil(2));
    let mut vmax = [zero; 3];
    for (r, row) in a.chunks_exact(width).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let q = usize::from(c >= w2) + usize::from(r >= h2);
            vmax[q] = vmax[q].max(v);
        }
    }
    let planes: [u8; 3] = vmax.map(|v| {
        if v > zero {
            (64 - v.to_i64().leading_zeros()) as u8
        } else {
            0
        }
    });
    out.extend_from_slice(&planes);

    let mut writer = BitWriter::new(out);
    for (offset, rows, cols, nplanes) in quadrants(height, width, planes) {
        encode_quadrant(&mut writer, a, offset, width, rows, cols, nplanes);
    }
    writer.put(0, 4);
    writer.flush();
    let mut out = writer.out;
    out.extend_from_slice(&signs);
    out
}

/// The four quadrants of the transformed array: (offset, rows, cols,
/// bit planes). The two mixed-frequency quadrants share a plane count.
fn quadrants(height: usize, width: usize, planes: [u8; 3]) -> [(usize, usize, usize, u8); 4] {
    let (h2, w2) = (height.div_ceil(2), width.div_ceil(2));
    [
        (0, h2, w2, planes[0]),
        (w2, h2, width / 2, planes[1]),
        (width * h2, height / 2, w2, planes[1]),
        (width * h2 + w2, height / 2, width / 2, planes[2]),
    ]
}

fn bit_is_set<T: Coefficient>(v: T, bit: u32) -> bool {
    (v.to_i64() >> bit) & 1 != 0
}

fn encode_quadrant<T: Coefficient>(
    writer: &mut BitWriter,
    a: &[T],
    offset: usize,
    stride: usize,
    rows: usize,
    cols: usize,
    nplanes: u8,
) {
    let (rows2, cols2) = (rows.div_ceil(2), cols.div_ceil(2));
    let levels = ceil_log2(rows.max(cols));
    let mut codes = vec![0u8; rows2 * cols2];
    let mut reduced = vec![0u8; rows2 * cols2];
    let limit = (rows2 * cols2).div_ceil(2);
    let mut buffer = CodeBuffer {
        bytes: Vec::with_capacity(limit),
        limit,
        pending: 0,
        pending_bits: 0,
    };
    for bit in (0..u32::from(nplanes)).rev() {
        buffer.bytes.clear();
        buffer.pending = 0;
        buffer.pending_bits = 0;
        let plane = |r: usize, c: usize| bit_is_set(a[offset + r * stride + c], bit);
        pack_blocks(rows, cols, &mut codes, plane);
        let (mut r, mut c) = (rows2, cols2);
        let mut fits = buffer.push_all(&codes[..r * c]);
        for _ in 1..levels {
            if !fits {
                break;
            }
            pack_blocks(r, c, &mut reduced, |i, j| codes[i * c + j] != 0);
            std::mem::swap(&mut codes, &mut reduced);
            r = r.div_ceil(2);
            c = c.div_ceil(2);
            fits = buffer.push_all(&codes[..r * c]);
        }
        if !fits {
            // The quadtree would not save space: send the bitmap as nybbles.
            writer.put(0x0, 4);
            pack_blocks(rows, cols, &mut codes, plane);
            for &v in &codes[..rows2 * cols2] {
                writer.put(u32::from(v), 4);
            }
            continue;
        }
        writer.put(0xF, 4);
        if buffer.pending_bits > 0 {
            writer.put(
                buffer.pending & ((1 << buffer.pending_bits) - 1),
                buffer.pending_bits,
            );
        } else if buffer.bytes.is_empty() {
            // An all-zero plane still needs one code so the decoder can start.
            writer.put(u32::from(CODE[0]), u32::from(CODE_LEN[0]));
        }
        for &byte in buffer.bytes.iter().rev() {
            writer.put(u32::from(byte), 8);
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding

/// Bounds-checked reader: bytes for the header, MSB-first bits after it.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    buffer: u32,
    bits_left: u32,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            buffer: 0,
            bits_left: 0,
        }
    }

    fn next_byte(&mut self) -> Result<u8, CodecError> {
        let b = *self.data.get(self.pos).ok_or(CodecError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let end = self.pos.checked_add(N).ok_or(CodecError::Truncated)?;
        let slice = self.data.get(self.pos..end).ok_or(CodecError::Truncated)?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// Read `n` (<= 8) bits.
    fn bits(&mut self, n: u32) -> Result<u32, CodecError> {
        if self.bits_left < n {
            self.buffer = ((self.buffer << 8) | u32::from(self.next_byte()?)) & 0xffff;
            self.bits_left += 8;
        }
        self.bits_left -= n;
        Ok((self.buffer >> self.bits_left) & ((1 << n) - 1))
    }

    fn nybble(&mut self) -> Result<u8, CodecError> {
        Ok(self.bits(4)? as u8)
    }

    /// Decode one of the [`CODE`] words (its bits arrive MSB first here).
    fn huffman(&mut self) -> Result<u8, CodecError> {
        let mut c = self.bits(3)?;
        if c < 4 {
            return Ok(1 << c);
        }
        c = (c << 1) | self.bits(1)?;
        match c {
            8 => return Ok(3),
            9 => return Ok(5),
            10 => return Ok(10),
            11 => return Ok(12),
            12 => return Ok(15),
            _ => {}
        }
        c = (c << 1) | self.bits(1)?;
        match c {
            26 => return Ok(6),
            27 => return Ok(7),
            28 => return Ok(9),
            29 => return Ok(11),
            30 => return Ok(13),
            _ => {}
        }
        c = (c << 1) | self.bits(1)?;
        Ok(if c == 62 { 0 } else { 14 })
    }

    /// Drop the rest of the current byte: the sign bits start byte-aligned.
    fn align(&mut self) {
        self.bits_left = 0;
    }
}

/// Decode a stream whose (height, width) must be one of `accepted`.
fn decompress<T: Coefficient>(
    bytes: &[u8],
    accepted: &[(usize, usize)],
    smooth: bool,
) -> Result<Vec<T>, CodecError> {
    let mut reader = Reader::new(bytes);
    if reader.array::<2>()? != MAGIC {
        return Err(CodecError::Corrupt(
            "HCOMPRESS_1 stream does not start with the DD 99 magic code".into(),
        ));
    }
    let height = i32::from_be_bytes(reader.array()?);
    let width = i32::from_be_bytes(reader.array()?);
    let scale = i32::from_be_bytes(reader.array()?);
    let sum = i64::from_be_bytes(reader.array()?);
    let planes: [u8; 3] = reader.array()?;
    let dims = match (usize::try_from(height), usize::try_from(width)) {
        (Ok(h), Ok(w)) if accepted.contains(&(h, w)) => (h, w),
        _ => {
            let (h, w) = accepted[0];
            return Err(CodecError::Corrupt(format!(
                "stream declares {width}x{height} pixels but the tile is {w}x{h}"
            )));
        }
    };
    let (height, width) = dims;
    if let Some(&p) = planes.iter().find(|&&p| u32::from(p) > T::BITS) {
        return Err(CodecError::Corrupt(format!(
            "{p} bit planes declared, more than the {}-bit coefficients hold",
            T::BITS
        )));
    }

    let zero = lit::<T>(0);
    let mut a = vec![zero; height * width];
    for (offset, rows, cols, nplanes) in quadrants(height, width, planes) {
        decode_quadrant(&mut reader, &mut a, offset, width, rows, cols, nplanes)?;
    }
    if reader.nybble()? != 0 {
        return Err(CodecError::Corrupt(
            "bit planes are not followed by the end code".into(),
        ));
    }
    reader.align();
    for v in a.iter_mut().filter(|v| **v != zero) {
        if reader.bits(1)? == 1 {
            *v = -*v;
        }
    }
    a[0] = T::from_i64(sum);
    if scale > 1 {
        let s: T = lit(i64::from(scale));
        for v in a.iter_mut() {
            *v = T::from_i64(v.to_i64().wrapping_mul(s.to_i64()));
        }
    }
    inverse_h_transform(&mut a, height, width, smooth, scale);
    Ok(a)
}

fn decode_quadrant<T: Coefficient>(
    reader: &mut Reader,
    a: &mut [T],
    offset: usize,
    stride: usize,
    rows: usize,
    cols: usize,
    nplanes: u8,
) -> Result<(), CodecError> {
    if rows == 0 || cols == 0 {
        // A one-pixel-wide tile has empty quadrants; the encoder still
        // writes an all-zero code for each of their planes.
        for _ in 0..nplanes {
            match reader.nybble()? {
                0 => {}
                0xF if reader.huffman()? == 0 => {}
                _ => {
                    return Err(CodecError::Corrupt(
                        "nonzero bit plane in an empty quadrant".into(),
                    ))
                }
            }
        }
        return Ok(());
    }
    let (rows2, cols2) = (rows.div_ceil(2), cols.div_ceil(2));
    let levels = ceil_log2(rows.max(cols));
    let dims = halvings(rows, cols, levels);
    let mut codes = vec![0u8; rows2 * cols2];
    let mut expanded = vec![0u8; rows2 * cols2];
    for bit in (0..u32::from(nplanes)).rev() {
        match reader.nybble()? {
            0x0 => {
                for slot in codes.iter_mut() {
                    *slot = reader.nybble()?;
                }
            }
            0xF => {
                codes[0] = reader.huffman()?;
                for level in (1..levels).rev() {
                    let (r, c) = dims[level];
                    expand_codes(reader, &codes, r, c, &mut expanded)?;
                    std::mem::swap(&mut codes, &mut expanded);
                }
            }
            other => {
                return Err(CodecError::Corrupt(format!(
                    "bad bit-plane format code {other:#x}"
                )));
            }
        }
        let plane = lit::<T>(1) << bit as usize;
        for r in 0..rows {
            for c in 0..cols {
                let block = codes[(r / 2) * cols2 + c / 2];
                let position = 3 - 2 * (r % 2) - (c % 2);
                if block >> position & 1 != 0 {
                    let i = offset + r * stride + c;
                    a[i] = a[i] | plane;
                }
            }
        }
    }
    Ok(())
}

/// One quadtree level down: spread each 4-bit block code of the
/// half-resolution map `src` over a `rows` x `cols` map, then replace every
/// nonzero entry by the next code from the stream (read back to front).
fn expand_codes(
    reader: &mut Reader,
    src: &[u8],
    rows: usize,
    cols: usize,
    dst: &mut [u8],
) -> Result<(), CodecError> {
    let cols2 = cols.div_ceil(2);
    for r in 0..rows {
        for c in 0..cols {
            let block = src[(r / 2) * cols2 + c / 2];
            let position = 3 - 2 * (r % 2) - (c % 2);
            dst[r * cols + c] = block >> position & 1;
        }
    }
    for v in dst[..rows * cols].iter_mut().rev() {
        if *v != 0 {
            *v = reader.huffman()?;
        }
    }
    Ok(())
}

/// Inverse H-transform, optionally nudging coefficients toward smooth
/// interpolated values (only meaningful for lossy streams).
fn inverse_h_transform<T: Coefficient>(
    a: &mut [T],
    height: usize,
    width: usize,
    smooth: bool,
    scale: i32,
) {
    let levels = ceil_log2(height.max(width));
    if levels == 0 {
        // A single pixel: the sum is the pixel.
        return;
    }
    let zero = lit::<T>(0);
    let one = lit::<T>(1);
    let mut shift = 1usize;
    let mut bit0: T = one << (levels - 1);
    let mut bit1 = bit0 << 1;
    let bit2 = bit0 << 2;
    let mut mask0 = -bit0;
    let mut mask1 = mask0 << 1;
    let mask2 = mask0 << 2;
    let mut prnd0 = bit0 >> 1;
    let mut prnd1 = bit1 >> 1;
    let prnd2 = bit2 >> 1;
    let mut nrnd0 = prnd0 - one;
    let mut nrnd1 = prnd1 - one;
    let nrnd2 = prnd2 - one;
    a[0] = (a[0] + if a[0] >= zero { prnd2 } else { nrnd2 }) & mask2;

    let dims = halvings(height, width, levels);
    let mut tmp = Vec::with_capacity(height.max(width).div_ceil(2));
    for level in (0..levels).rev() {
        let (rows, cols) = dims[level];
        if level == 0 {
            // The last level divides by 4, and no rounding bit is left below.
            nrnd0 = zero;
            shift = 2;
        }
        for i in 0..rows {
            unshuffle(a, i * width, cols, 1, &mut tmp);
        }
        for j in 0..cols {
            unshuffle(a, j, rows, width, &mut tmp);
        }
        if smooth {
            smooth_coefficients(a, rows, cols, width, scale);
        }
        let round1 = |h: T| (h + if h >= zero { prnd1 } else { nrnd1 }) & mask1;
        let odd_r = rows % 2;
        let odd_c = cols % 2;
        for i in (0..rows - odd_r).step_by(2) {
            let s00 = i * width;
            let s10 = s00 + width;
            for j in (0..cols - odd_c).step_by(2) {
                let h0 = a[s00 + j];
                let hx = round1(a[s10 + j]);
                let hy = round1(a[s00 + j + 1]);
                let hc = a[s10 + j + 1];
                let hc = (hc + if hc >= zero { prnd0 } else { nrnd0 }) & mask0;
                // Bits dropped by the forward transform are recovered from
                // the parity of the other coefficients.
                let lowbit0 = hc & bit0;
                let hx = if hx >= zero {
                    hx - lowbit0
                } else {
                    hx + lowbit0
                };
                let hy = if hy >= zero {
                    hy - lowbit0
                } else {
                    hy + lowbit0
                };
                let lowbit1 = (hc ^ hx ^ hy) & bit1;
                let h0 = if h0 >= zero {
                    h0 + lowbit0 - lowbit1
                } else {
                    h0 + if lowbit0 == zero {
                        lowbit1
                    } else {
                        lowbit0 - lowbit1
                    }
                };
                a[s10 + j + 1] = (h0 + hx + hy + hc) >> shift;
                a[s10 + j] = (h0 + hx - hy - hc) >> shift;
                a[s00 + j + 1] = (h0 - hx + hy - hc) >> shift;
                a[s00 + j] = (h0 - hx - hy + hc) >> shift;
            }
            if odd_c == 1 {
                let j = cols - 1;
                let hx = round1(a[s10 + j]);
                let lowbit1 = hx & bit1;
                let h0 = a[s00 + j];
                let h0 = if h0 >= zero {
                    h0 - lowbit1
                } else {
                    h0 + lowbit1
                };
                a[s10 + j] = (h0 + hx) >> shift;
                a[s00 + j] = (h0 - hx) >> shift;
            }
        }
        if odd_r == 1 {
            let s00 = (rows - 1) * width;
            for j in (0..cols - odd_c).step_by(2) {
                let hy = round1(a[s00 + j + 1]);
                let lowbit1 = hy & bit1;
                let h0 = a[s00 + j];
                let h0 = if h0 >= zero {
                    h0 - lowbit1
                } else {
                    h0 + lowbit1
                };
                a[s00 + j + 1] = (h0 + hy) >> shift;
                a[s00 + j] = (h0 - hy) >> shift;
            }
            if odd_c == 1 {
                let j = cols - 1;
                a[s00 + j] = a[s00 + j] >> shift;
            }
        }
        bit1 = bit0;
        bit0 = bit0 >> 1;
        mask1 = mask0;
        mask0 = mask0 >> 1;
        prnd1 = prnd0;
        prnd0 = prnd0 >> 1;
        nrnd1 = nrnd0;
        nrnd0 = prnd0 - one;
    }
}

/// Adjust the difference coefficients of the `rows` x `cols` block toward
/// the slopes implied by neighbouring sums, within what the quantization
/// (`scale`) could have removed and without creating new extrema. Edge
/// coefficients are left alone.
fn smooth_coefficients<T: Coefficient>(
    a: &mut [T],
    rows: usize,
    cols: usize,
    stride: usize,
    scale: i32,
) {
    let zero = lit::<T>(0);
    let smax: T = lit(i64::from(scale >> 1));
    if smax <= zero {
        return;
    }
    let limit = |s: T| s.min(smax).max(-smax);
    let two_rows = 2 * stride;

    // Differences along the slow axis.
    for i in (2..rows.saturating_sub(2)).step_by(2) {
        for j in (0..cols).step_by(2) {
            let s00 = stride * i + j;
            let s10 = s00 + stride;
            let (hm, h0, hp) = (a[s00 - two_rows], a[s00], a[s00 + two_rows]);
            let dmax = (hp - h0).min(h0 - hm).max(zero) << 2;
            let dmin = (hp - h0).max(h0 - hm).min(zero) << 2;
            if dmin < dmax {
                let diff = (hp - hm).min(dmax).max(dmin);
                let s = diff - (a[s10] << 3);
                let s = if s >= zero { s >> 3 } else { (s + lit(7)) >> 3 };
                a[s10] = a[s10] + limit(s);
            }
        }
    }
    // Differences along the fast axis.
    for i in (0..rows).step_by(2) {
        for j in (2..cols.saturating_sub(2)).step_by(2) {
            let s00 = stride * i + j;
            let (hm, h0, hp) = (a[s00 - 2], a[s00], a[s00 + 2]);
            let dmax = (hp - h0).min(h0 - hm).max(zero) << 2;
            let dmin = (hp - h0).max(h0 - hm).min(zero) << 2;
            if dmin < dmax {
                let diff = (hp - hm).min(dmax).max(dmin);
                let s = diff - (a[s00 + 1] << 3);
                let s = if s >= zero { s >> 3 } else { (s + lit(7)) >> 3 };
                a[s00 + 1] = a[s00 + 1] + limit(s);
            }
        }
    }
    // Cross (curvature) differences.
    for i in (2..rows.saturating_sub(2)).step_by(2) {
        for j in (2..cols.saturating_sub(2)).step_by(2) {
            let s00 = stride * i + j;
            let s10 = s00 + stride;
            let hmm = a[s00 - two_rows - 2];
            let hpm = a[s00 + two_rows - 2];
            let hmp = a[s00 - two_rows + 2];
            let hpp = a[s00 + two_rows + 2];
            let h0 = a[s00];
            let hx2 = a[s10] << 1;
            let hy2 = a[s00 + 1] << 1;
            let m1 = ((hpp - h0).max(zero) - hx2 - hy2).min((h0 - hpm).max(zero) + hx2 - hy2);
            let m2 = ((h0 - hmp).max(zero) - hx2 + hy2).min((hmm - h0).max(zero) + hx2 + hy2);
            let dmax = m1.min(m2) << 4;
            let m1 = ((hpp - h0).min(zero) - hx2 - hy2).max((h0 - hpm).min(zero) + hx2 - hy2);
            let m2 = ((h0 - hmp).min(zero) - hx2 + hy2).max((hmm - h0).min(zero) + hx2 + hy2);
            let dmin = m1.max(m2) << 4;
            if dmin < dmax {
                let diff = (hpp + hmm - hmp - hpm).min(dmax).max(dmin);
                let s = diff - (a[s10 + 1] << 6);
                let s = if s >= zero {
                    s >> 6
                } else {
                    (s + lit(63)) >> 6
                };
                a[s10 + 1] = a[s10 + 1] + limit(s);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Background noise, for scales relative to the noise

/// cfitsio's noise estimate for integer tiles: the smallest nonzero of its
/// 2nd-, 3rd- and 5th-order median-absolute-difference estimates, each the
/// median over rows of per-row medians. Reproduced exactly, quirks
/// included (the 2nd-order median is taken over as many entries as the
/// 3rd-order one), because it decides the integer scale in the stream.
fn background_noise(values: &[i32], width: usize, height: usize) -> f64 {
    let (mut nx, mut ny) = (width, height);
    if nx < 9 {
        nx *= ny;
        ny = 1;
    }
    if nx < 9 {
        return 0.0;
    }
    let mut diff2 = vec![0i64; nx];
    let mut diff3 = vec![0i64; nx];
    let mut diff5 = vec![0i64; nx];
    let (mut rows2, mut rows3, mut rows5) = (Vec::new(), Vec::new(), Vec::new());
    for row in values.chunks_exact(nx).take(ny) {
        let mut w: [i64; 8] = [0; 8];
        for (slot, &v) in w.iter_mut().zip(row) {
            *slot = i64::from(v);
        }
        let (mut n3, mut n2) = (0usize, 0usize);
        for &v9 in &row[8..] {
            let v9 = i64::from(v9);
            let [v1, _, v3, v4, v5, v6, v7, _] = w;
            if !(v5 == v6 && v6 == v7) {
                diff2[n2] = (v5 - v7).abs();
                n2 += 1;
            }
            if !(v3 == v4 && v4 == v5 && v5 == v6 && v6 == v7) {
                diff3[n3] = (2 * v5 - v3 - v7).abs();
                diff5[n3] = (6 * v5 - 4 * v3 - 4 * v7 + v1 + v9).abs();
                n3 += 1;
            }
            w.copy_within(1.., 0);
            w[7] = v9;
        }
        match n3 {
            0 => continue,
            1 => {
                if n2 == 1 {
                    rows2.push(diff2[0] as f64);
                }
                rows3.push(diff3[0] as f64);
                rows5.push(diff5[0] as f64);
            }
            _ => {
                if n2 > 1 {
                    rows2.push(quick_select(&mut diff2[..n3]) as f64);
                }
                rows3.push(quick_select(&mut diff3[..n3]) as f64);
                rows5.push(quick_select(&mut diff5[..n3]) as f64);
            }
        }
    }
    let noise2 = 1.0483579 * median_of_rows(&mut rows2);
    let noise3 = 0.6052697 * median_of_rows(&mut rows3);
    let noise5 = 0.1772048 * median_of_rows(&mut rows5);
    let mut noise = noise3;
    if noise2 != 0.0 && noise2 < noise {
        noise = noise2;
    }
    if noise5 != 0.0 && noise5 < noise {
        noise = noise5;
    }
    noise
}

fn median_of_rows(v: &mut [f64]) -> f64 {
    match v.len() {
        0 => 0.0,
        1 => v[0],
        n => {
            v.sort_by(f64::total_cmp);
            (v[(n - 1) / 2] + v[n / 2]) / 2.0
        }
    }
}

/// The lower median by Wirth/Hoare selection, permuting `arr` exactly as
/// cfitsio's version does: later rows may read entries this leaves behind.
fn quick_select(arr: &mut [i64]) -> i64 {
    let n = arr.len() as isize;
    let mut low: isize = 0;
    let mut high: isize = n - 1;
    let median = (low + high) / 2;
    let at = |i: isize| i as usize;
    loop {
        if high <= low {
            return arr[at(median)];
        }
        if high == low + 1 {
            if arr[at(low)] > arr[at(high)] {
                arr.swap(at(low), at(high));
            }
            return arr[at(median)];
        }
        let middle = (low + high) / 2;
        if arr[at(middle)] > arr[at(high)] {
            arr.swap(at(middle), at(high));
        }
        if arr[at(low)] > arr[at(high)] {
            arr.swap(at(low), at(high));
        }
        if arr[at(middle)] > arr[at(low)] {
            arr.swap(at(middle), at(low));
        }
        arr.swap(at(middle), at(low + 1));
        let mut ll = low + 1;
        let mut hh = high;
        loop {
            ll += 1;
            while arr[at(low)] > arr[at(ll)] {
                ll += 1;
            }
            hh -= 1;
            while arr[at(hh)] > arr[at(low)] {
                hh -= 1;
            }
            if hh < ll {
                break;
            }
            arr.swap(at(ll), at(hh));
        }
        arr.swap(at(low), at(hh));
        if hh <= median {
            low = ll;
        }
        if hh >= median {
            high = hh - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_rng::TestRng;

    fn params(scale: f64, smooth: i64) -> Params {
        Params::new()
            .with(SCALE_PARAM, ParamValue::Float(scale))
            .with(SMOOTH_PARAM, ParamValue::Int(smooth))
    }

    fn spec<'a>(shape: &'a [usize], pixel_type: PixelType, params: &'a Params) -> TileSpec<'a> {
        TileSpec {
            shape,
            pixel_type,
            params,
            context: Default::default(),
        }
    }

    const SHAPES: &[[usize; 2]] = &[
        [1, 1],
        [1, 9],
        [9, 1],
        [2, 2],
        [3, 5],
        [5, 3],
        [4, 4],
        [100, 7],
        [7, 100],
        [33, 17],
        [64, 16],
    ];

    fn smooth_image(w: usize, h: usize, rng: &mut TestRng, amplitude: f64, noise: i64) -> Vec<i64> {
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64, (i / w) as f64);
                (amplitude * ((x / 7.0).sin() + (y / 5.0).cos())) as i64 + rng.range(-noise, noise)
            })
            .collect()
    }

    fn round_trip(pixels: Pixels, shape: &[usize]) {
        let p = params(0.0, 0);
        let s = spec(shape, pixels.pixel_type(), &p);
        let bytes = Hcompress.encode(&pixels, &s).expect("encode");
        let back = Hcompress.decode(&bytes, &s).expect("decode");
        assert_eq!(back, pixels, "shape {shape:?}");
    }

    #[test]
    fn lossless_round_trip_random_and_smooth_all_types() {
        let mut rng = TestRng(1);
        for shape in SHAPES {
            let n = shape[0] * shape[1];
            let rnd16: Vec<i16> = (0..n).map(|_| rng.next() as i16).collect();
            round_trip(Pixels::I16(rnd16), shape);
            let rnd32: Vec<i32> = (0..n).map(|_| rng.next() as i32).collect();
            round_trip(Pixels::I32(rnd32), shape);
            let rnd8: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            round_trip(Pixels::U8(rnd8), shape);
            let sm = smooth_image(shape[0], shape[1], &mut rng, 1000.0, 3);
            round_trip(Pixels::I16(sm.iter().map(|&v| v as i16).collect()), shape);
            round_trip(
                Pixels::I32(sm.iter().map(|&v| (v * 100_000) as i32).collect()),
                shape,
            );
        }
    }

    #[test]
    fn lossless_round_trip_edge_values() {
        for shape in [[8usize, 8], [5, 3], [1, 4]] {
            let n = shape[0] * shape[1];
            for v in [i16::MIN, i16::MAX, -1, 0, 1] {
                round_trip(Pixels::I16(vec![v; n]), &shape);
            }
            let alternating16: Vec<i16> = (0..n)
                .map(|i| if i % 2 == 0 { i16::MIN } else { i16::MAX })
                .collect();
            round_trip(Pixels::I16(alternating16), &shape);
            for v in [i32::MIN, i32::MAX, -1, 0, 1] {
                round_trip(Pixels::I32(vec![v; n]), &shape);
            }
            let alternating32: Vec<i32> = (0..n)
                .map(|i| if i % 3 == 0 { i32::MIN } else { i32::MAX })
                .collect();
            round_trip(Pixels::I32(alternating32), &shape);
            round_trip(
                Pixels::U8((0..n).map(|i| if i % 2 == 0 { 0 } else { 255 }).collect()),
                &shape,
            );
        }
    }

    #[test]
    fn three_dimensional_tiles_use_the_first_long_axis_as_width() {
        assert_eq!(plane_dims(&[1, 6, 4]), (6, 4));
        assert_eq!(plane_dims(&[5, 4, 3]), (5, 12));
        assert_eq!(plane_dims(&[1, 1]), (1, 1));
        let mut rng = TestRng(9);
        let values: Vec<i16> = (0..24).map(|_| rng.range(-50, 50) as i16).collect();
        round_trip(Pixels::I16(values), &[1, 6, 4]);
    }

    #[test]
    fn lossy_error_is_bounded_by_the_scale() {
        let mut rng = TestRng(2);
        let (w, h) = (40usize, 24usize);
        let img = smooth_image(w, h, &mut rng, 2000.0, 20);
        let pixels = Pixels::I32(img.iter().map(|&v| v as i32).collect());
        for scale in [-4.0, -16.0, 2.5] {
            for smooth in [0, 1] {
                let p = params(scale, smooth);
                let shape = [w, h];
                let s = spec(&shape, PixelType::I32, &p);
                let bytes = Hcompress.encode(&pixels, &s).unwrap();
                let Pixels::I32(back) = Hcompress.decode(&bytes, &s).unwrap() else {
                    panic!()
                };
                let worst = img
                    .iter()
                    .zip(&back)
                    .map(|(&a, &b)| (a - i64::from(b)).abs())
                    .max()
                    .unwrap();
                let iscale = i32::from_be_bytes(bytes[10..14].try_into().unwrap());
                assert!(iscale > 1, "scale {scale} gave integer scale {iscale}");
                assert!(
                    worst <= 4 * i64::from(iscale),
                    "scale {iscale}: error {worst}"
                );
            }
        }
    }

    #[test]
    fn relative_scale_uses_background_noise() {
        // Pure noise of known amplitude: the estimate must be of that order.
        let mut rng = TestRng(3);
        let values: Vec<i32> = (0..64 * 32).map(|_| rng.range(-100, 100) as i32).collect();
        let noise = background_noise(&values, 64, 32);
        assert!(noise > 30.0 && noise < 120.0, "noise {noise}");
        assert_eq!(background_noise(&[5; 8], 8, 1), 0.0);
        let p = params(1.0, 0);
        assert_eq!(
            tile_scale(&p, &values, 64, 32).unwrap(),
            (noise as f32 + 0.5) as i32
        );
        assert_eq!(tile_scale(&params(-7.4, 0), &values, 64, 32).unwrap(), 7);
        assert_eq!(tile_scale(&params(0.0, 0), &values, 64, 32).unwrap(), 0);
    }

    #[test]
    fn quick_select_returns_lower_median() {
        let mut rng = TestRng(4);
        for n in 2..60 {
            let mut v: Vec<i64> = (0..n).map(|_| rng.range(0, 20)).collect();
            let mut sorted = v.clone();
            sorted.sort();
            assert_eq!(quick_select(&mut v), sorted[(n - 1) / 2]);
        }
    }

    #[test]
    fn encode_params_match_cfitsio_names() {
        let o = EncodeOptions {
            hcompress_scale: 2.5,
            hcompress_smooth: true,
            ..Default::default()
        };
        let p = Hcompress.encode_params(PixelType::I16, &o);
        assert_eq!(p.0[0], ("SCALE".to_string(), ParamValue::Float(2.5)));
        assert_eq!(p.0[1], ("SMOOTH".to_string(), ParamValue::Int(1)));
    }

    #[test]
    fn header_is_checked_against_the_tile() {
        let p = params(0.0, 0);
        let s = spec(&[8, 4], PixelType::I16, &p);
        let bytes = Hcompress.encode(&Pixels::I16(vec![3; 32]), &s).unwrap();
        assert_eq!(&bytes[..2], &MAGIC);
        assert_eq!(
            i32::from_be_bytes(bytes[2..6].try_into().unwrap()),
            4,
            "height first"
        );
        assert_eq!(i32::from_be_bytes(bytes[6..10].try_into().unwrap()), 8);
        let other = spec(&[4, 8], PixelType::I16, &p);
        assert!(matches!(
            Hcompress.decode(&bytes, &other),
            Err(CodecError::Corrupt(_))
        ));
        let mut bad = bytes.clone();
        bad[0] = 0;
        assert!(matches!(
            Hcompress.decode(&bad, &s),
            Err(CodecError::Corrupt(_))
        ));
        assert!(matches!(
            Hcompress.decode(&[], &s),
            Err(CodecError::Truncated)
        ));
        assert!(Hcompress
            .decode(&bytes, &spec(&[8, 4], PixelType::F32, &p))
            .is_err());
    }

    #[test]
    fn damaged_streams_never_panic() {
        let mut rng = TestRng(5);
        for (shape, ty) in [
            ([16usize, 8usize], PixelType::I16),
            ([7, 5], PixelType::I32),
            ([1, 12], PixelType::U8),
        ] {
            let n = shape[0] * shape[1];
            let img = smooth_image(shape[0], shape[1], &mut rng, 100.0, 10);
            let pixels = match ty {
                PixelType::I16 => Pixels::I16(img.iter().map(|&v| v as i16).collect()),
                PixelType::I32 => Pixels::I32(img.iter().map(|&v| v as i32).collect()),
                _ => Pixels::U8(img.iter().map(|&v| v.clamp(0, 255) as u8).collect()),
            };
            for scale in [0.0, -8.0] {
                for smooth in [0, 1] {
                    let p = params(scale, smooth);
                    let s = spec(&shape, ty, &p);
                    let bytes = Hcompress.encode(&pixels, &s).unwrap();
                    for cut in 0..bytes.len() {
                        if let Ok(px) = Hcompress.decode(&bytes[..cut], &s) {
                            assert_eq!(px.len(), n);
                        }
                    }
                    for _ in 0..400 {
                        let mut bad = bytes.clone();
                        for _ in 0..rng.range(1, 4) {
                            let i = rng.range(0, bad.len() as i64 - 1) as usize;
                            bad[i] ^= 1 << rng.range(0, 7);
                        }
                        if let Ok(px) = Hcompress.decode(&bad, &s) {
                            assert_eq!(px.len(), n);
                        }
                    }
                    // Random garbage behind a valid header.
                    for _ in 0..100 {
                        let mut bad = bytes[..HEADER_LEN.min(bytes.len())].to_vec();
                        bad.extend((0..rng.range(0, 200)).map(|_| rng.next() as u8));
                        if let Ok(px) = Hcompress.decode(&bad, &s) {
                            assert_eq!(px.len(), n);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn absurd_plane_counts_are_rejected() {
        let p = params(0.0, 0);
        let s = spec(&[4, 4], PixelType::I16, &p);
        let mut bytes = Hcompress.encode(&Pixels::I16(vec![1; 16]), &s).unwrap();
        bytes[22] = 200;
        assert!(matches!(
            Hcompress.decode(&bytes, &s),
            Err(CodecError::Corrupt(_))
        ));
    }
}
