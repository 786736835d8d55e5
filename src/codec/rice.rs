//! RICE_1: the Rice coder of cfitsio (R. White), bit for bit.
//!
//! Most fpack output is RICE_1, so this module has two obligations: produce
//! exactly the bytes cfitsio's `fits_rcomp*` produce (so that files can be
//! compared byte for byte with fpack's), and be fast (the project aims at
//! twice fpack's speed).
//!
//! The stream, for pixels `BYTEPIX` bytes wide (1, 2 or 4):
//! - the first pixel, raw, in `8 × BYTEPIX` bits;
//! - then blocks of `BLOCKSIZE` pixels (the last one may be shorter). Each
//!   pixel is replaced by its difference from the previous pixel, computed
//!   with wrap-around in the pixel's own width and folded to an unsigned
//!   value (0, -1, 1, -2, ... → 0, 1, 2, 3, ...). A block starts with a
//!   code of 3, 4 or 5 bits (for 1, 2, 4 bytes):
//!   - 0: every difference in the block is zero, nothing follows;
//!   - 7, 15 or 26: the differences follow raw, `8 × BYTEPIX` bits each
//!     (for 4-byte pixels the codes 27 to 31 are invalid);
//!   - otherwise `k + 1`: each difference `d` follows as `d >> k` zero bits,
//!     a one bit, then the low `k` bits of `d`.
//! - bits are packed most significant first; the last byte is zero-padded.
//!
//! The encoder chooses `k` from the block's mean exactly as cfitsio does,
//! including its floating-point arithmetic, since any other choice would
//! decode fine but change the bytes.
//!
//! Decoding keeps these invariants for any input: it never reads outside the
//! input (bits past the end read as zeros and are then reported as
//! [`CodecError::Truncated`], as cfitsio does after each block), every loop
//! either consumes input bits or emits one of at most `spec.len()` pixels,
//! and nothing is allocated beyond the output tile (and, when BYTEPIX
//! differs from the requested type, one conversion of it).

use super::nocompress::convert_integers;
use super::{Codec, EncodeOptions, ParamValue, Params, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

/// The block size fpack always writes.
pub const DEFAULT_BLOCK_SIZE: usize = 32;

/// What cfitsio assumes when ZVAL2 (BYTEPIX) is absent: files written before
/// the keyword existed always used 4-byte coding.
const BYTEPIX_WHEN_ABSENT: usize = 4;

pub struct Rice;

impl Codec for Rice {
    fn is_standard(&self) -> bool {
        true
    }

    fn id(&self) -> &'static str {
        "RICE_1"
    }

    fn short_names(&self) -> &'static [&'static str] {
        &["rice"]
    }

    fn description(&self) -> &'static str {
        "Rice coding of pixel differences (FITS standard; fpack's default)"
    }

    /// cfitsio marks SUBTRACTIVE_DITHER_2 Rice files so that readers too old
    /// to restore the exact zeros refuse them.
    fn dither2_zcmptype(&self) -> Option<&'static str> {
        Some("RICE_ONE")
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["RICE_ONE"]
    }

    fn supports(&self, pixel_type: PixelType) -> bool {
        matches!(pixel_type, PixelType::U8 | PixelType::I16 | PixelType::I32)
    }

    fn encode_params(&self, pixel_type: PixelType, _options: &EncodeOptions) -> Params {
        Params::new()
            .with("BLOCKSIZE", ParamValue::Int(DEFAULT_BLOCK_SIZE as i64))
            .with("BYTEPIX", ParamValue::Int(pixel_type.size() as i64))
    }

    fn encode(&self, pixels: &Pixels, spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        let block_size = encode_block_size(spec, pixels.pixel_type())?;
        match pixels {
            Pixels::U8(v) => Ok(encode_words(v, block_size, |&w| w)),
            Pixels::I16(v) => Ok(encode_words(v, block_size, |&w| w)),
            Pixels::I32(v) => Ok(encode_words(v, block_size, |&w| w)),
            other => Err(CodecError::Unsupported(format!(
                "RICE_1 codes 8-, 16- and 32-bit integers, not BITPIX {}",
                other.pixel_type().bitpix()
            ))),
        }
    }

    fn encode_be(&self, bytes: &[u8], spec: &TileSpec) -> Option<Result<Vec<u8>, CodecError>> {
        if !self.supports(spec.pixel_type) || bytes.len() != spec.len() * spec.pixel_type.size() {
            return None;
        }
        let block_size = match encode_block_size(spec, spec.pixel_type) {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(match spec.pixel_type {
            PixelType::U8 => encode_words(bytes, block_size, |&b| b),
            PixelType::I16 => encode_words(bytes.as_chunks::<2>().0, block_size, |&b| {
                i16::from_be_bytes(b)
            }),
            _ => encode_words(bytes.as_chunks::<4>().0, block_size, |&b| {
                i32::from_be_bytes(b)
            }),
        }))
    }

    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError> {
        if spec.pixel_type.is_float() {
            return Err(CodecError::Unsupported(
                "RICE_1 decodes to integers; floating-point tiles are quantized first".into(),
            ));
        }
        let block_size = block_size(spec.params)?;
        let stored_width = bytepix(spec.params)?.unwrap_or(BYTEPIX_WHEN_ABSENT);
        let count = spec.len();
        let decoded = match stored_width {
            1 => Pixels::U8(decode_words::<u8>(bytes, count, block_size)?),
            2 => Pixels::I16(decode_words::<i16>(bytes, count, block_size)?),
            _ => Pixels::I32(decode_words::<i32>(bytes, count, block_size)?),
        };
        convert_integers(decoded, spec.pixel_type)
    }

    fn decode_be_into(
        &self,
        bytes: &[u8],
        spec: &TileSpec,
        out: &mut [u8],
    ) -> Result<bool, CodecError> {
        if spec.pixel_type.is_float() {
            return Ok(false);
        }
        let block_size = block_size(spec.params)?;
        let stored_width = bytepix(spec.params)?.unwrap_or(BYTEPIX_WHEN_ABSENT);
        // Only when the stored width is the pixel type's: anything else
        // needs decode's conversion.
        if stored_width != spec.pixel_type.size() || out.len() != spec.len() * stored_width {
            return Ok(false);
        }
        match stored_width {
            1 => decode_words_into::<u8, u8>(bytes, out, block_size, |b| b as u8)?,
            2 => decode_words_into::<i16, [u8; 2]>(
                bytes,
                out.as_chunks_mut::<2>().0,
                block_size,
                |b| (b as u16).to_be_bytes(),
            )?,
            _ => decode_words_into::<i32, [u8; 4]>(
                bytes,
                out.as_chunks_mut::<4>().0,
                block_size,
                |b| b.to_be_bytes(),
            )?,
        }
        Ok(true)
    }
}

/// BLOCKSIZE for coding pixels of `pixel_type`, once BYTEPIX (if given) is
/// checked to be their width.
fn encode_block_size(spec: &TileSpec, pixel_type: PixelType) -> Result<usize, CodecError> {
    let block_size = block_size(spec.params)?;
    if let Some(bytepix) = bytepix(spec.params)? {
        if bytepix != pixel_type.size() {
            return Err(CodecError::BadParameter(format!(
                "BYTEPIX = {bytepix} but the tile's pixels are {} bytes wide",
                pixel_type.size()
            )));
        }
    }
    Ok(block_size)
}

/// BLOCKSIZE, defaulting to 32. cfitsio also repairs files whose two values
/// were written in swapped order (a "block size" below 16 next to a
/// "BYTEPIX" above 8); so do we.
fn block_size(params: &Params) -> Result<usize, CodecError> {
    let (block, bytepix) = raw_settings(params)?;
    let block = match (block, bytepix) {
        (Some(b), Some(p)) if b < 16 && p > 8 => Some(p),
        _ => block,
    };
    match block {
        None => Ok(DEFAULT_BLOCK_SIZE),
        Some(b) if b >= 1 => usize::try_from(b)
            .map_err(|_| CodecError::BadParameter(format!("BLOCKSIZE = {b} is too large"))),
        Some(b) => Err(CodecError::BadParameter(format!(
            "BLOCKSIZE = {b}: must be at least 1"
        ))),
    }
}

/// BYTEPIX if given (after the same swap repair as [`block_size`]). cfitsio
/// codes every width other than 1 and 2 with 4 bytes; we accept 8 the same
/// way (the header comment fpack writes lists it) and refuse the rest.
fn bytepix(params: &Params) -> Result<Option<usize>, CodecError> {
    let (block, bytepix) = raw_settings(params)?;
    let bytepix = match (block, bytepix) {
        (Some(b), Some(p)) if b < 16 && p > 8 => Some(b),
        _ => bytepix,
    };
    match bytepix {
        None => Ok(None),
        Some(1) => Ok(Some(1)),
        Some(2) => Ok(Some(2)),
        Some(4) | Some(8) => Ok(Some(4)),
        Some(p) => Err(CodecError::BadParameter(format!(
            "BYTEPIX = {p}: must be 1, 2, 4 or 8"
        ))),
    }
}

fn raw_settings(params: &Params) -> Result<(Option<i64>, Option<i64>), CodecError> {
    let integer = |name: &str| -> Result<Option<i64>, CodecError> {
        match params.get(name) {
            None => Ok(None),
            Some(_) => params
                .get_int(name)
                .map(Some)
                .ok_or_else(|| CodecError::BadParameter(format!("{name} must be an integer"))),
        }
    };
    Ok((integer("BLOCKSIZE")?, integer("BYTEPIX")?))
}

/// The three pixel widths the Rice stream knows, with the constants cfitsio
/// derives from each.
trait RiceWord: Copy {
    /// Bits per raw pixel (also the width of raw-coded differences).
    const BITS: u32;
    /// Bits of the per-block code.
    const CODE_BITS: u32;
    /// The split `k` at which a block is stored raw instead.
    const RAW_SPLIT: u32;

    /// The pixel's bit pattern, zero-extended.
    fn bits(self) -> u32;
    /// The difference from `previous`, wrapped in the pixel's width and
    /// folded to an unsigned value.
    fn folded_difference(self, previous: Self) -> u32;
    /// The pixel whose bit pattern is the low `BITS` bits of `bits`.
    fn from_bits(bits: u32) -> Self;
}

impl RiceWord for u8 {
    const BITS: u32 = 8;
    const CODE_BITS: u32 = 3;
    const RAW_SPLIT: u32 = 6;
    #[inline(always)]
    fn bits(self) -> u32 {
        u32::from(self)
    }
    #[inline(always)]
    fn folded_difference(self, previous: Self) -> u32 {
        // cfitsio codes bytes as signed chars; the wrapped difference is the
        // same either way.
        let d = self.wrapping_sub(previous) as i8;
        u32::from(((d << 1) ^ (d >> 7)) as u8)
    }
    #[inline(always)]
    fn from_bits(bits: u32) -> Self {
        bits as u8
    }
}

impl RiceWord for i16 {
    const BITS: u32 = 16;
    const CODE_BITS: u32 = 4;
    const RAW_SPLIT: u32 = 14;
    #[inline(always)]
    fn bits(self) -> u32 {
        u32::from(self as u16)
    }
    #[inline(always)]
    fn folded_difference(self, previous: Self) -> u32 {
        let d = self.wrapping_sub(previous);
        u32::from(((d << 1) ^ (d >> 15)) as u16)
    }
    #[inline(always)]
    fn from_bits(bits: u32) -> Self {
        bits as u16 as i16
    }
}

impl RiceWord for i32 {
    const BITS: u32 = 32;
    const CODE_BITS: u32 = 5;
    const RAW_SPLIT: u32 = 25;
    #[inline(always)]
    fn bits(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    fn folded_difference(self, previous: Self) -> u32 {
        let d = self.wrapping_sub(previous);
        ((d << 1) ^ (d >> 31)) as u32
    }
    #[inline(always)]
    fn from_bits(bits: u32) -> Self {
        bits as i32
    }
}

/// Packs bit fields most significant bit first into a byte buffer that is
/// kept at least 8 bytes longer than the bytes done: every field is
/// followed by one unconditional 8-byte store of the pending bits (zeros
/// below them) and an advance over the whole bytes among them, so the hot
/// path has no branch. Every byte up to the end is written by such a store
/// before it counts, so whatever the buffer held before (a previous tile)
/// never shows through. The state is three numbers that stay in registers;
/// the buffer is passed as a slice, grown between blocks by [`reserve`].
#[derive(Clone, Copy, Default)]
struct BitWriter {
    /// Bytes done.
    pos: usize,
    /// The low `count` bits are pending (`count < 8` between fields; bits
    /// above them are stale and never stored).
    acc: u64,
    count: u32,
}

/// Room in `out` for `bytes` more bytes after `pos`, beyond the 8 that
/// every store needs.
#[inline(always)]
fn reserve(out: &mut Vec<u8>, pos: usize, bytes: usize) {
    let need = pos + bytes + 16;
    if out.len() < need {
        grow(out, need);
    }
}

#[cold]
fn grow(out: &mut Vec<u8>, need: usize) {
    let len = need.max(out.len() * 2);
    out.resize(len, 0);
}

impl BitWriter {
    /// Append the low `count` bits of `value`; `count <= 32` and `value`
    /// must have no bits above them; room must have been reserved.
    #[inline(always)]
    fn put(&mut self, out: &mut [u8], value: u32, count: u32) {
        debug_assert!(count <= 32 && (count == 32 || value >> count == 0));
        self.acc = (self.acc << count) | u64::from(value);
        self.count += count;
        // The pending bits at the top (two shifts: `count` may be 0).
        let top = (self.acc << (63 - self.count)) << 1;
        out[self.pos..self.pos + 8].copy_from_slice(&top.to_be_bytes());
        self.pos += (self.count / 8) as usize;
        self.count %= 8;
    }

    /// One Rice-coded difference `value` whose quotient `zeros = value >>
    /// split` is at most `31 - split`: the zeros, a one bit, the low `split`
    /// bits, in at most 32 bits.
    #[inline(always)]
    fn put_short_rice(&mut self, out: &mut [u8], zeros: u32, split: u32, value: u32) {
        let field = (1u32 << split) | (value & ((1u32 << split) - 1));
        self.put(out, field, zeros + 1 + split);
    }

    /// One Rice-coded difference of any quotient, reserving its room.
    fn put_rice(&mut self, out: &mut Vec<u8>, zeros: u32, split: u32, value: u32) {
        if zeros <= 31 - split {
            self.put_short_rice(out, zeros, split, value);
            return;
        }
        reserve(out, self.pos, zeros as usize / 8 + 16);
        let mut zeros = zeros;
        while zeros >= 32 {
            self.put(out, 0, 32);
            zeros -= 32;
        }
        self.put(out, 0, zeros);
        let field = (1u32 << split) | (value & ((1u32 << split) - 1));
        self.put(out, field, split + 1);
    }

    /// Bytes written, the last one zero-padded (already stored so).
    fn len(&self) -> usize {
        self.pos + usize::from(self.count > 0)
    }
}

/// The split `k` cfitsio chooses for a block of `len` folded differences
/// summing to `sum`: the bit length of half the block's mean, computed with
/// cfitsio's double-precision expression so that every tie breaks the same.
#[inline(always)]
fn choose_split(sum: f64, len: usize) -> u32 {
    let mean = ((sum - (len / 2) as f64 - 1.0) / len as f64).max(0.0);
    // The mean is below 2^32 for every block width, so the conversion never
    // saturates; cfitsio truncates it to the pixel width, which is the same.
    let half = (mean as u32) >> 1;
    u32::BITS - half.leading_zeros()
}

std::thread_local! {
    /// Each thread's encoder buffer, kept between tiles: a fresh zeroed
    /// buffer per tile would cost an allocation and a memset each time.
    static ENCODE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Rice-code `pixels`, each read as a word by `word` (typed pixels, or the
/// big-endian bytes of the FITS data unit).
fn encode_words<W: RiceWord, P>(
    pixels: &[P],
    block_size: usize,
    word: impl Fn(&P) -> W,
) -> Vec<u8> {
    let Some(first) = pixels.first() else {
        return Vec::new();
    };
    let first = word(first);
    // Enough unless blocks code worse than raw, which only pathological
    // blocks do; the buffer grows in that case.
    let word_bytes = (W::BITS / 8) as usize;
    let blocks = pixels.len().div_ceil(block_size);
    // This thread's buffer, taken out for the tile so that the hot loops
    // see a plain local vector.
    let mut out = ENCODE_BUFFER.with(|buffer| std::mem::take(&mut *buffer.borrow_mut()));
    let mut writer = BitWriter::default();
    reserve(&mut out, 0, pixels.len() * word_bytes + blocks + 8);
    writer.put(&mut out, first.bits(), W::BITS);

    let mut folded = vec![0u32; block_size.min(pixels.len())];
    let mut previous = first;
    for block in pixels.chunks(block_size) {
        let folded = &mut folded[..block.len()];
        // The first difference is from the previous block; the others
        // within the block, pair by pair, which vectorises.
        let (head, rest) = folded.split_at_mut(1);
        head[0] = word(&block[0]).folded_difference(previous);
        for (slot, pair) in rest.iter_mut().zip(block.windows(2)) {
            *slot = word(&pair[1]).folded_difference(word(&pair[0]));
        }
        previous = word(&block[block.len() - 1]);
        let sum: u64 = folded.iter().map(|&d| u64::from(d)).sum();
        let largest = folded.iter().copied().max().unwrap_or(0);
        // cfitsio sums in a double; integer summing is identical while the
        // sum is exact in a double (blocks under 2^21 pixels). Beyond that,
        // repeat its rounding.
        let sum_as_double = if sum < (1u64 << 53) {
            sum as f64
        } else {
            folded.iter().fold(0.0f64, |acc, &d| acc + f64::from(d))
        };
        let split = choose_split(sum_as_double, block.len());

        // At most 32 bits per pixel on the fast paths, and the code.
        reserve(&mut out, writer.pos, block.len() * 4 + 8);
        if split >= W::RAW_SPLIT {
            let room = &mut out[..];
            writer.put(room, W::RAW_SPLIT + 1, W::CODE_BITS);
            for &d in folded.iter() {
                writer.put(room, d, W::BITS);
            }
        } else if sum == 0 {
            writer.put(&mut out, 0, W::CODE_BITS);
        } else if largest >> split <= 31 - split {
            // Every quotient is short: the branch-free loop.
            let room = &mut out[..];
            writer.put(room, split + 1, W::CODE_BITS);
            for &d in folded.iter() {
                writer.put_short_rice(room, d >> split, split, d);
            }
        } else {
            writer.put(&mut out, split + 1, W::CODE_BITS);
            for &d in folded.iter() {
                writer.put_rice(&mut out, d >> split, split, d);
            }
        }
    }
    let coded = out[..writer.len()].to_vec();
    ENCODE_BUFFER.with(|buffer| *buffer.borrow_mut() = out);
    coded
}

/// Reads bit fields most significant bit first. `window` holds the next
/// `available` bits at its top (bits below them may already hold the
/// following input, which is harmless); reading past the input yields zero
/// bits, and `overran` tells whether that happened.
struct BitReader<'a> {
    input: &'a [u8],
    next_byte: usize,
    window: u64,
    available: u32,
}

impl<'a> BitReader<'a> {
    fn new(input: &'a [u8]) -> Self {
        BitReader {
            input,
            next_byte: 0,
            window: 0,
            available: 0,
        }
    }

    /// Make at least 56 bits available.
    #[inline(always)]
    fn refill(&mut self) {
        if self.available >= 56 {
            return;
        }
        if let Some(chunk) = self.input.get(self.next_byte..self.next_byte + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.window |= u64::from_be_bytes(word) >> self.available;
            let whole_bytes = (63 - self.available) / 8;
            self.next_byte += whole_bytes as usize;
            self.available += whole_bytes * 8;
        } else {
            while self.available <= 56 {
                let byte = self.input.get(self.next_byte).copied().unwrap_or(0);
                self.window |= u64::from(byte) << (56 - self.available);
                self.next_byte += 1;
                self.available += 8;
            }
        }
    }

    /// Drop `count` bits (`count <= available`, `count < 64`).
    #[inline(always)]
    fn consume(&mut self, count: u32) {
        self.window <<= count;
        self.available -= count;
    }

    /// Take `count` bits (1..=32; at least `count` available).
    #[inline(always)]
    fn take(&mut self, count: u32) -> u32 {
        let value = (self.window >> (64 - count)) as u32;
        self.consume(count);
        value
    }

    /// Whether more bits were consumed than the input holds.
    #[inline(always)]
    fn overran(&self) -> bool {
        let consumed = (self.next_byte as u64) * 8 - u64::from(self.available);
        consumed > (self.input.len() as u64) * 8
    }

    /// Count and consume a run of zero bits and the one bit ending it, for a
    /// run too long for the fast path. Fails once the run leaves the input.
    #[cold]
    fn long_zero_run(&mut self) -> Result<u32, CodecError> {
        let mut zeros: u32 = 0;
        loop {
            self.refill();
            let leading = self.window.leading_zeros();
            if leading < self.available {
                zeros = zeros.wrapping_add(leading);
                // The run may end on the window's last bit, a 64-bit shift.
                if leading + 1 == u64::BITS {
                    self.window = 0;
                    self.available = 0;
                } else {
                    self.consume(leading + 1);
                }
                return Ok(zeros);
            }
            zeros = zeros.wrapping_add(self.available);
            self.window = 0;
            self.available = 0;
            if self.overran() {
                return Err(CodecError::Truncated);
            }
        }
    }
}

#[inline(always)]
fn unfold(folded: u32) -> u32 {
    if folded & 1 == 0 {
        folded >> 1
    } else {
        !(folded >> 1)
    }
}

fn decode_words<W: RiceWord>(
    input: &[u8],
    count: usize,
    block_size: usize,
) -> Result<Vec<W>, CodecError> {
    let mut out: Vec<W> = vec![W::from_bits(0); count];
    decode_words_into::<W, W>(input, &mut out, block_size, W::from_bits)?;
    Ok(out)
}

/// Decode `out.len()` pixels of width `W`, each stored by `store` from its
/// bit pattern (as a typed pixel, or as its big-endian bytes).
fn decode_words_into<W: RiceWord, O>(
    input: &[u8],
    out: &mut [O],
    block_size: usize,
    store: impl Fn(u32) -> O,
) -> Result<(), CodecError> {
    if out.is_empty() {
        return Ok(());
    }
    // Filled in place block by block: iterating over slices keeps bounds
    // checks and length updates out of the per-pixel loop.
    let mut reader = BitReader::new(input);
    reader.refill();
    let mut previous = reader.take(W::BITS);

    for block in out.chunks_mut(block_size) {
        reader.refill();
        let code = reader.take(W::CODE_BITS);
        if code == 0 {
            block.fill_with(|| store(previous));
        } else if code - 1 == W::RAW_SPLIT {
            for slot in block.iter_mut() {
                reader.refill();
                previous = previous.wrapping_add(unfold(reader.take(W::BITS)));
                *slot = store(previous);
            }
        } else if code - 1 < W::RAW_SPLIT {
            let split = code - 1;
            // A pixel whose zero run is shorter than 32 bits needs at most
            // 32 + split bits; refilling only below that lets one refill
            // (56 bits or more) serve several pixels.
            let needed = 32 + split;
            for slot in block.iter_mut() {
                if reader.available < needed {
                    reader.refill();
                }
                // The low bit set spares the zero-input case of the count
                // (a run that long takes the slow path anyway).
                let zeros = (reader.window | 1).leading_zeros();
                let folded = if zeros < 32 {
                    let after_one = reader.window << (zeros + 1);
                    // Two shifts so that a zero split yields zero.
                    let low = ((after_one >> 32) >> (32 - split)) as u32;
                    reader.consume(zeros + 1 + split);
                    (zeros << split) | low
                } else {
                    let zeros = reader.long_zero_run()?;
                    reader.refill();
                    let low = if split > 0 { reader.take(split) } else { 0 };
                    (zeros << split) | low
                };
                previous = previous.wrapping_add(unfold(folded));
                *slot = store(previous);
            }
        } else {
            return Err(CodecError::Corrupt(format!(
                "block code {code} is not valid for {}-bit pixels",
                W::BITS
            )));
        }
        if reader.overran() {
            return Err(CodecError::Truncated);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_rng::TestRng;

    fn params(block: i64, bytepix: i64) -> Params {
        Params::new()
            .with("BLOCKSIZE", ParamValue::Int(block))
            .with("BYTEPIX", ParamValue::Int(bytepix))
    }

    fn round_trip(pixels: &Pixels, block: i64) {
        let p = params(block, pixels.pixel_type().size() as i64);
        let shape = [pixels.len()];
        let spec = TileSpec {
            shape: &shape,
            pixel_type: pixels.pixel_type(),
            params: &p,
            context: Default::default(),
        };
        let coded = Rice.encode(pixels, &spec).unwrap();
        let decoded = Rice.decode(&coded, &spec).unwrap();
        assert_eq!(&decoded, pixels, "block size {block}");
    }

    /// Tiles exercising every block kind: constant, smooth, noisy at several
    /// levels, full-range random, and the type's extremes.
    fn sample_tiles(rng: &mut TestRng, len: usize) -> Vec<Vec<i64>> {
        let mut tiles = vec![vec![0; len], vec![-7; len]];
        for spread in [0.5, 3.0, 40.0, 900.0, 30000.0] {
            tiles.push((0..len).map(|_| rng.noise(0.0, spread) as i64).collect());
        }
        tiles.push((0..len).map(|_| rng.next() as i64).collect());
        tiles.push(
            (0..len)
                .map(|i| if i % 2 == 0 { i64::MIN } else { i64::MAX })
                .collect(),
        );
        tiles.push(
            (0..len)
                .map(|i| if (i / 3) % 2 == 0 { 0 } else { i64::MAX })
                .collect(),
        );
        tiles
    }

    const LENGTHS: [usize; 8] = [1, 2, 3, 31, 32, 33, 1000, 4099];

    #[test]
    fn round_trip_random_and_edge_tiles_for_every_width() {
        let mut rng = TestRng(2024);
        for len in LENGTHS {
            for tile in sample_tiles(&mut rng, len) {
                let bytes = Pixels::U8(tile.iter().map(|&v| v.clamp(0, 255) as u8).collect());
                let wrapped_bytes = Pixels::U8(tile.iter().map(|&v| v as u8).collect());
                let shorts = Pixels::I16(
                    tile.iter()
                        .map(|&v| v.clamp(-32768, 32767) as i16)
                        .collect(),
                );
                let wrapped_shorts = Pixels::I16(tile.iter().map(|&v| v as i16).collect());
                let ints = Pixels::I32(
                    tile.iter()
                        .map(|&v| v.clamp(i32::MIN.into(), i32::MAX.into()) as i32)
                        .collect(),
                );
                let wrapped_ints = Pixels::I32(tile.iter().map(|&v| v as i32).collect());
                for pixels in [
                    bytes,
                    wrapped_bytes,
                    shorts,
                    wrapped_shorts,
                    ints,
                    wrapped_ints,
                ] {
                    for block in [16, 32] {
                        round_trip(&pixels, block);
                    }
                }
            }
        }
    }

    #[test]
    fn unusual_block_sizes_round_trip() {
        let mut rng = TestRng(7);
        let tile: Vec<i32> = (0..777).map(|_| rng.noise(1000.0, 50.0) as i32).collect();
        for block in [1, 2, 5, 31, 64, 776, 777, 100_000] {
            round_trip(&Pixels::I32(tile.clone()), block);
        }
    }

    #[test]
    fn known_streams() {
        // Constant tile of 40 shorts with value 5, blocks of 32: the value,
        // then two all-zero blocks (4-bit code 0 each).
        let p = params(32, 2);
        let shape = [40];
        let spec = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I16,
            params: &p,
            context: Default::default(),
        };
        let coded = Rice.encode(&Pixels::I16(vec![5; 40]), &spec).unwrap();
        assert_eq!(coded, [0x00, 0x05, 0x00]);
        // Bytes 10, 11, 9: differences 0, +1, -2 fold to 0, 2, 3; mean is
        // below 1 so the split is 0 and the code is 1 (3 bits): 001, then
        // the unary codes 1, 001, 0001, padded: 0010 0100 0100 0000.
        let p = params(32, 1);
        let shape = [3];
        let spec = TileSpec {
            shape: &shape,
            pixel_type: PixelType::U8,
            params: &p,
            context: Default::default(),
        };
        let coded = Rice.encode(&Pixels::U8(vec![10, 11, 9]), &spec).unwrap();
        assert_eq!(coded, [10, 0b0011_0010, 0b0010_0000]);
        assert_eq!(
            Rice.decode(&coded, &spec).unwrap(),
            Pixels::U8(vec![10, 11, 9])
        );
    }

    #[test]
    fn parameters_and_defaults() {
        assert_eq!(
            Rice.encode_params(PixelType::I16, &EncodeOptions::default()),
            params(32, 2)
        );
        assert_eq!(
            Rice.encode_params(PixelType::U8, &EncodeOptions::default())
                .0[1],
            ("BYTEPIX".to_string(), ParamValue::Int(1))
        );
        // No BYTEPIX: cfitsio reads the stream as 4-byte words.
        let ints = Pixels::I32(vec![1, -1, 70000, 3]);
        let p32 = params(32, 4);
        let shape = [4];
        let spec = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I32,
            params: &p32,
            context: Default::default(),
        };
        let coded = Rice.encode(&ints, &spec).unwrap();
        let bare = Params::new();
        let spec_bare = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I32,
            params: &bare,
            context: Default::default(),
        };
        assert_eq!(Rice.decode(&coded, &spec_bare).unwrap(), ints);
        // Swapped values are repaired like cfitsio does.
        let swapped = params(4, 32);
        let spec_swapped = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I32,
            params: &swapped,
            context: Default::default(),
        };
        assert_eq!(Rice.decode(&coded, &spec_swapped).unwrap(), ints);
        // Bad values are refused.
        for bad in [params(0, 4), params(32, 3)] {
            let s = TileSpec {
                shape: &shape,
                pixel_type: PixelType::I32,
                params: &bad,
                context: Default::default(),
            };
            assert!(matches!(
                Rice.decode(&coded, &s),
                Err(CodecError::BadParameter(_))
            ));
        }
        let text = Params::new().with("BLOCKSIZE", ParamValue::Text("x".into()));
        let s = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I32,
            params: &text,
            context: Default::default(),
        };
        assert!(matches!(
            Rice.decode(&coded, &s),
            Err(CodecError::BadParameter(_))
        ));
        // Encoding with a BYTEPIX that disagrees with the pixels is refused.
        let s = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I32,
            params: &params(32, 2),
            context: Default::default(),
        };
        assert!(matches!(
            Rice.encode(&ints, &s),
            Err(CodecError::BadParameter(_))
        ));
    }

    #[test]
    fn stream_width_differing_from_output_type_is_converted() {
        let p = params(32, 1);
        let shape = [3];
        let as_u8 = TileSpec {
            shape: &shape,
            pixel_type: PixelType::U8,
            params: &p,
            context: Default::default(),
        };
        let coded = Rice.encode(&Pixels::U8(vec![0, 200, 255]), &as_u8).unwrap();
        let as_i16 = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I16,
            params: &p,
            context: Default::default(),
        };
        assert_eq!(
            Rice.decode(&coded, &as_i16).unwrap(),
            Pixels::I16(vec![0, 200, 255])
        );

        let p = params(32, 2);
        let from_i16 = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I16,
            params: &p,
            context: Default::default(),
        };
        let coded = Rice
            .encode(&Pixels::I16(vec![-1, 300, 2]), &from_i16)
            .unwrap();
        let as_i32 = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I32,
            params: &p,
            context: Default::default(),
        };
        assert_eq!(
            Rice.decode(&coded, &as_i32).unwrap(),
            Pixels::I32(vec![-1, 300, 2])
        );
        let as_u8 = TileSpec {
            shape: &shape,
            pixel_type: PixelType::U8,
            params: &p,
            context: Default::default(),
        };
        assert!(matches!(
            Rice.decode(&coded, &as_u8),
            Err(CodecError::Corrupt(_))
        ));
    }

    #[test]
    fn invalid_block_code_is_corrupt() {
        // 4-byte stream: first pixel, then code 31 (only 0..=26 are valid).
        let p = params(32, 4);
        let shape = [2];
        let spec = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I32,
            params: &p,
            context: Default::default(),
        };
        let stream = [0, 0, 0, 1, 0b1111_1000, 0, 0, 0];
        assert!(matches!(
            Rice.decode(&stream, &spec),
            Err(CodecError::Corrupt(_))
        ));
    }

    #[test]
    fn truncated_streams_are_errors() {
        let mut rng = TestRng(99);
        for (pixel_type, spread) in [
            (PixelType::U8, 20.0),
            (PixelType::I16, 300.0),
            (PixelType::I32, 1e6),
        ] {
            let values: Vec<i64> = (0..500).map(|_| rng.noise(100.0, spread) as i64).collect();
            let pixels = match pixel_type {
                PixelType::U8 => Pixels::U8(values.iter().map(|&v| v as u8).collect()),
                PixelType::I16 => Pixels::I16(values.iter().map(|&v| v as i16).collect()),
                _ => Pixels::I32(values.iter().map(|&v| v as i32).collect()),
            };
            let p = params(32, pixel_type.size() as i64);
            let shape = [500];
            let spec = TileSpec {
                shape: &shape,
                pixel_type,
                params: &p,
                context: Default::default(),
            };
            let coded = Rice.encode(&pixels, &spec).unwrap();
            for cut in 0..coded.len() {
                assert_eq!(
                    Rice.decode(&coded[..cut], &spec),
                    Err(CodecError::Truncated),
                    "{pixel_type:?} cut at {cut} of {}",
                    coded.len()
                );
            }
            // Trailing bytes are ignored, as cfitsio only warns about them.
            let mut padded = coded.clone();
            padded.extend_from_slice(&[0xff; 9]);
            assert_eq!(Rice.decode(&padded, &spec).unwrap(), pixels);
        }
    }

    #[test]
    fn damaged_and_random_streams_never_panic() {
        let mut rng = TestRng(31337);
        for pixel_type in [PixelType::U8, PixelType::I16, PixelType::I32] {
            let values: Vec<i64> = (0..1000).map(|_| rng.noise(0.0, 500.0) as i64).collect();
            let pixels = match pixel_type {
                PixelType::U8 => Pixels::U8(values.iter().map(|&v| v as u8).collect()),
                PixelType::I16 => Pixels::I16(values.iter().map(|&v| v as i16).collect()),
                _ => Pixels::I32(values.iter().map(|&v| v as i32).collect()),
            };
            for block in [16, 32] {
                let p = params(block, pixel_type.size() as i64);
                let shape = [1000];
                let spec = TileSpec {
                    shape: &shape,
                    pixel_type,
                    params: &p,
                    context: Default::default(),
                };
                let coded = Rice.encode(&pixels, &spec).unwrap();
                for _ in 0..2000 {
                    let mut damaged = coded.clone();
                    for _ in 0..(1 + rng.next() % 3) {
                        let at = (rng.next() as usize) % damaged.len();
                        damaged[at] ^= 1 << (rng.next() % 8);
                    }
                    if rng.next().is_multiple_of(4) {
                        let keep = (rng.next() as usize) % damaged.len();
                        damaged.truncate(keep);
                    }
                    if let Ok(decoded) = Rice.decode(&damaged, &spec) {
                        assert_eq!(decoded.len(), 1000);
                        assert_eq!(decoded.pixel_type(), pixel_type);
                    }
                }
                // Pure noise, and long runs of zero bits.
                for len in [0usize, 1, 2, 5, 64, 3000] {
                    let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    if let Ok(decoded) = Rice.decode(&noise, &spec) {
                        assert_eq!(decoded.len(), 1000);
                    }
                    let mut zeros = vec![0u8; len];
                    if len > 4 {
                        zeros[4] = 0x10;
                    }
                    if let Ok(decoded) = Rice.decode(&zeros, &spec) {
                        assert_eq!(decoded.len(), 1000);
                    }
                }
            }
        }
    }

    #[test]
    fn empty_tile() {
        let p = params(32, 2);
        let shape = [0];
        let spec = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I16,
            params: &p,
            context: Default::default(),
        };
        let coded = Rice.encode(&Pixels::I16(vec![]), &spec).unwrap();
        assert!(coded.is_empty());
        assert_eq!(Rice.decode(&coded, &spec).unwrap(), Pixels::I16(vec![]));
    }

    /// Rough single-thread throughput; run with
    /// `cargo test --release --lib rice::tests::speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn speed() {
        let mut rng = TestRng(1);
        let count = 1 << 20; // 2 MB of int16
        let pixels: Vec<i16> = (0..count).map(|_| rng.noise(1000.0, 30.0) as i16).collect();
        let pixels = Pixels::I16(pixels);
        let p = params(32, 2);
        let shape = [count];
        let spec = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I16,
            params: &p,
            context: Default::default(),
        };
        let megabytes = (count * 2) as f64 / 1e6;
        let rounds = 50;
        let start = std::time::Instant::now();
        let mut coded = Vec::new();
        for _ in 0..rounds {
            coded = Rice.encode(std::hint::black_box(&pixels), &spec).unwrap();
        }
        let encode = start.elapsed().as_secs_f64() / rounds as f64;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            let decoded = Rice.decode(std::hint::black_box(&coded), &spec).unwrap();
            assert_eq!(decoded.len(), count);
        }
        let decode = start.elapsed().as_secs_f64() / rounds as f64;
        println!(
            "rice int16 noisy: ratio {:.2}, encode {:.0} MB/s, decode {:.0} MB/s",
            (count * 2) as f64 / coded.len() as f64,
            megabytes / encode,
            megabytes / decode
        );
    }
}
