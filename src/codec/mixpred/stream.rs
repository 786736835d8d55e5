//! The MIXPRED_1 tile stream: value mapping, checksum and sections.
//!
//! Layout (docs/formats/MIXPRED_1.md is the specification):
//! ```text
//! u8      format version (1)
//! u8      mode: 0 constant tile, 1 predictive
//! u32 LE  CRC-32 (IEEE) of the tile's pixels, little-endian, in the
//!         pixel type's width
//! varint  offset: the tile minimum, zigzag-coded
//! u8      shift: unused low bits common to every (value - offset)
//! varint  number of palette runs (0: no palette), then the runs
//! varint  maxv: the largest mapped value
//! mode 1 only:
//! 9 × i16 LE  the tile's least-squares predictor, 1/256 units
//! varint  length of the table section, then the tables (bit-packed:
//!         which contexts share a table, then one table per group)
//! varint  length of the rANS section, then the rANS bytes
//!         the raw-bit section, to the end of the tile
//! ```
//! Pixel values `v` map to `u = (v - offset) >> shift`, and with a palette
//! to the index of `u` among the values that occur. Palettes are sent as
//! alternating run lengths of used and unused values, starting with a used
//! run at 0, which costs a few bytes whether the used values are a dense
//! block with outliers or a sparse comb (scanned film, BSCALE-quantised data).

use super::model::{self, SymbolCoder, N_CTX};
use super::rans::{self, BitReader, BitWriter, DecodeTables, RansDecoder, RansEncoder, N_TOKENS};

pub const FORMAT_VERSION: u8 = 2;
const MODE_CONSTANT: u8 = 0;
const MODE_PREDICTIVE: u8 = 1;
/// The palette decision codes about this many pixels both ways (small
/// tiles: the whole tile), in this many blocks of rows.
const TRIAL_PIXELS: usize = 8192;
const SAMPLE_BLOCKS: usize = 4;
/// Palettes using at most 1/SPARSE_FACTOR of their range are used without trial.
const SPARSE_FACTOR: u64 = 16;
/// Palettes are considered below this mapped range (the used-value bitmap
/// then costs at most 2 MiB).
const PALETTE_MAX_RANGE: u64 = 1 << 24;

/// Why a tile stream could not be decoded.
#[derive(Debug, PartialEq)]
pub enum StreamError {
    Truncated,
    Corrupt(String),
}

fn corrupt(msg: impl Into<String>) -> StreamError {
    StreamError::Corrupt(msg.into())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).max(1).div_ceil(7)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Result<u8, StreamError> {
        let b = *self.bytes.get(self.pos).ok_or(StreamError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }
    fn varint(&mut self) -> Result<u64, StreamError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint longer than 64 bits"))
    }
    fn take(&mut self, n: u64) -> Result<&'a [u8], StreamError> {
        let end = (self.pos as u64)
            .checked_add(n)
            .ok_or(StreamError::Truncated)?;
        if end > self.bytes.len() as u64 {
            return Err(StreamError::Truncated);
        }
        let s = &self.bytes[self.pos..end as usize];
        self.pos = end as usize;
        Ok(s)
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// CRC-32 of the pixels as little-endian integers `width` bytes wide.
pub fn pixel_crc(values: &[i64], width: usize) -> u32 {
    fn crc<const W: usize>(values: &[i64]) -> u32 {
        let mut h = crc32fast::Hasher::new();
        let mut buf = [0u8; 4096];
        for chunk in values.chunks(4096 / W) {
            for (out, &v) in buf.chunks_exact_mut(W).zip(chunk) {
                out.copy_from_slice(&v.to_le_bytes()[..W]);
            }
            h.update(&buf[..chunk.len() * W]);
        }
        h.finalize()
    }
    match width {
        1 => crc::<1>(values),
        2 => crc::<2>(values),
        4 => crc::<4>(values),
        _ => crc::<8>(values),
    }
}

/// Records tokens (encoder pass 1): context and token per pixel, raw bits
/// straight into the raw-bit stream.
struct Recorder {
    /// Context (high bits) and token (low 8 bits) per pixel.
    tokens: Vec<u32>,
    counts: Vec<[u32; N_TOKENS]>,
    bits: BitWriter,
}

impl SymbolCoder for Recorder {
    #[inline(always)]
    fn code(&mut self, ctx: usize, z: u32) -> u32 {
        let (tok, nb, bits) = model::tokenise(z);
        self.tokens.push(((ctx as u32) << 8) | tok);
        self.counts[ctx][tok as usize] += 1;
        self.bits.put(bits, nb);
        z
    }
}

struct Decoder<'a> {
    rans: RansDecoder<'a>,
    bits: BitReader<'a>,
    tables: DecodeTables,
}

impl SymbolCoder for Decoder<'_> {
    #[inline(always)]
    fn code(&mut self, ctx: usize, _z: u32) -> u32 {
        let tok = self.rans.get(&self.tables, ctx);
        let bits = self.bits.get(model::token_bits(tok));
        model::detokenise(tok, bits)
    }
}

/// The value mapping of one tile.
struct Mapping {
    offset: i64,
    shift: u32,
    /// Runs of used / unused mapped values (empty: no palette).
    runs: Vec<u64>,
    /// With a palette: the bitmap of used values and the number of used
    /// values before each 64-bit word (the index is a rank query).
    used: Vec<u64>,
    rank: Vec<u32>,
    maxv: u32,
}

/// The plain mapping and, when at most half the values of its range occur,
/// the palette mapping as a candidate.
fn choose_mapping(values: &[i64]) -> (Mapping, Option<Mapping>) {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for &v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let mut or = 0u64;
    for &v in values {
        or |= (v - lo) as u64;
    }
    let shift = if or == 0 { 0 } else { or.trailing_zeros() };
    let range = ((hi - lo) as u64) >> shift;
    let mut runs = Vec::new();
    if range > 1 && range < PALETTE_MAX_RANGE {
        let mut used = vec![0u64; (range as usize >> 6) + 1];
        for &v in values {
            let u = ((v - lo) as u64 >> shift) as usize;
            used[u >> 6] |= 1 << (u & 63);
        }
        let distinct: u64 = used.iter().map(|w| w.count_ones() as u64).sum();
        if distinct * 4 <= 3 * (range + 1) {
            let mut state = true;
            let mut len = 0u64;
            for u in 0..=range as usize {
                let bit = used[u >> 6] >> (u & 63) & 1 == 1;
                if bit != state {
                    runs.push(len);
                    state = bit;
                    len = 0;
                }
                len += 1;
            }
            runs.push(len);
            let mut rank = Vec::with_capacity(used.len());
            let mut before = 0u32;
            for w in &used {
                rank.push(before);
                before += w.count_ones();
            }
            let palette = Mapping {
                offset: lo,
                shift,
                runs,
                used,
                rank,
                maxv: (distinct - 1) as u32,
            };
            return (Mapping::plain(lo, shift, range), Some(palette));
        }
    }
    (Mapping::plain(lo, shift, range), None)
}

impl Mapping {
    fn plain(offset: i64, shift: u32, range: u64) -> Mapping {
        Mapping {
            offset,
            shift,
            runs: Vec::new(),
            used: Vec::new(),
            rank: Vec::new(),
            maxv: range as u32,
        }
    }
}

/// Encode one tile of `width` × `height` values, each representable in
/// `bytes` bytes (1, 2 or 4) as a two's-complement integer.
pub fn encode(values: &[i64], width: usize, height: usize, bytes: usize) -> Vec<u8> {
    debug_assert_eq!(values.len(), width * height);
    let mut out = vec![FORMAT_VERSION, MODE_CONSTANT];
    out.extend_from_slice(&pixel_crc(values, bytes).to_le_bytes());
    if values.is_empty() {
        put_varint(&mut out, 0);
        out.extend_from_slice(&[0, 0, 0]);
        return out;
    }
    let (plain, palette) = choose_mapping(values);
    // A palette helps sparse combs (scanned film, rescaled 12-bit data) and
    // hurts a dense core with sparse tails (a CCD frame with saturated
    // stars); which one it is shows in the result, so both are tried on a
    // sample of rows (see sample_cost) and the better one codes the tile.
    let Some(palette) = palette else {
        return encode_mapped(values, width, height, out, &plain);
    };
    // Small tiles: both in full. Palettes of few values (a dense core and
    // rare outliers, where a sample would miss the gain): the palette (on
    // corpus/train within 0.1% of trying both in full). Otherwise: a sample decides.
    let sparse = (palette.maxv as u64 + 1) * SPARSE_FACTOR <= plain.maxv as u64 + 1;
    let use_palette = if values.len() > 4 * TRIAL_PIXELS && sparse {
        true
    } else if values.len() <= 4 * TRIAL_PIXELS {
        let a = encode_mapped(values, width, height, out.clone(), &plain);
        let b = encode_mapped(values, width, height, out, &palette);
        return if b.len() < a.len() { b } else { a };
    } else {
        sample_cost(values, width, height, &palette) < sample_cost(values, width, height, &plain)
    };
    encode_mapped(
        values,
        width,
        height,
        out,
        if use_palette { &palette } else { &plain },
    )
}

/// Map the values, fit the tile's predictor and record its tokens.
fn model_pass(
    values: &[i64],
    width: usize,
    height: usize,
    map: &Mapping,
) -> ([i32; model::N_TAPS], Recorder) {
    let mut u: Vec<u32> = if map.runs.is_empty() {
        values
            .iter()
            .map(|&v| ((v - map.offset) as u64 >> map.shift) as u32)
            .collect()
    } else {
        // The index of a used value is its rank in the bitmap.
        values
            .iter()
            .map(|&v| {
                let x = ((v - map.offset) as u64 >> map.shift) as usize;
                let below = map.used[x >> 6] & ((1u64 << (x & 63)) - 1);
                map.rank[x >> 6] + below.count_ones()
            })
            .collect()
    };
    let mut rec = Recorder {
        tokens: Vec::with_capacity(values.len()),
        counts: vec![[0u32; N_TOKENS]; N_CTX],
        bits: BitWriter::with_capacity(values.len()),
    };
    let coef = model::fit_linear(&u, width, height);
    model::run::<_, false>(&mut u, width, height, map.maxv, &coef, &mut rec);
    (coef, rec)
}

/// Estimated bits for a tile under a mapping, from [`SAMPLE_BLOCKS`] blocks
/// of rows spread over it: the ideal cost of their tokens in their contexts
/// plus their raw bits, scaled to the tile, plus the palette runs once.
fn sample_cost(values: &[i64], width: usize, height: usize, map: &Mapping) -> f64 {
    let rows = (TRIAL_PIXELS / SAMPLE_BLOCKS)
        .div_ceil(width.max(1))
        .max(3)
        .min(height);
    let mut bits = 0f64;
    let mut coded_rows = 0;
    for b in 0..SAMPLE_BLOCKS {
        let first = (height - rows) * b / (SAMPLE_BLOCKS - 1).max(1);
        let block = &values[first * width..(first + rows) * width];
        let (_, rec) = model_pass(block, width, rows, map);
        for c in &rec.counts {
            let t: f64 = c.iter().map(|&n| n as f64).sum();
            bits += c
                .iter()
                .filter(|&&n| n > 0)
                .map(|&n| n as f64 * (t / n as f64).log2())
                .sum::<f64>();
        }
        bits += rec.bits.bits() as f64;
        coded_rows += rows;
    }
    let runs: usize = map.runs.iter().map(|&r| varint_len(r)).sum();
    bits * height as f64 / coded_rows as f64 + 8.0 * runs as f64
}

fn encode_mapped(
    values: &[i64],
    width: usize,
    height: usize,
    mut out: Vec<u8>,
    map: &Mapping,
) -> Vec<u8> {
    put_varint(&mut out, zigzag(map.offset));
    out.push(map.shift as u8);
    put_varint(&mut out, map.runs.len() as u64);
    for &r in &map.runs {
        put_varint(&mut out, r);
    }
    put_varint(&mut out, map.maxv as u64);
    if map.maxv == 0 {
        return out;
    }
    out[1] = MODE_PREDICTIVE;
    let (coef, rec) = model_pass(values, width, height, map);
    for c in coef {
        out.extend_from_slice(&(c as i16).to_le_bytes());
    }
    // Contexts share tables where that is cheaper (see rans::cluster).
    let starts = rans::cluster(&rec.counts);
    let mut group_of = [0usize; N_CTX];
    let mut group_counts: Vec<[u32; N_TOKENS]> = Vec::new();
    for ctx in 0..N_CTX {
        if starts[ctx] {
            group_counts.push([0; N_TOKENS]);
        }
        group_of[ctx] = group_counts.len() - 1;
        let g = group_counts.last_mut().expect("context 0 starts a group");
        for (a, &n) in g.iter_mut().zip(rec.counts[ctx].iter()) {
            *a += n;
        }
    }
    let norm: Vec<Option<([u16; N_TOKENS], usize)>> = group_counts
        .iter()
        .map(|c| c.iter().any(|&n| n > 0).then(|| rans::normalise(c)))
        .collect();
    let mut tw = BitWriter::default();
    for &s in &starts[1..] {
        tw.put(s as u32, 1);
    }
    rans::write_tables(&mut tw, &norm);
    // Per group, the encoder parameters of every token (all zero for a
    // group without counts, which no recorded token uses).
    let symbols: Vec<[rans::EncSymbol; N_TOKENS]> = norm
        .iter()
        .map(|t| match t {
            Some((f, _)) => rans::table(f).enc_symbols(),
            None => [rans::EncSymbol::default(); N_TOKENS],
        })
        .collect();
    let mut enc = RansEncoder::new(values.len());
    for (i, &t) in rec.tokens.iter().enumerate().rev() {
        let (ctx, tok) = ((t >> 8) as usize, (t & 255) as usize);
        enc.put(i, &symbols[group_of[ctx]][tok]);
    }
    let table_bytes = tw.finish();
    let rans_bytes = enc.finish();
    put_varint(&mut out, table_bytes.len() as u64);
    out.extend_from_slice(&table_bytes);
    put_varint(&mut out, rans_bytes.len() as u64);
    out.extend_from_slice(&rans_bytes);
    out.extend_from_slice(&rec.bits.finish());
    out
}

/// Decode a tile of `width` × `height` values of `bytes`-byte integers
/// (`signed`: two's complement, else unsigned bytes).
pub fn decode(
    input: &[u8],
    width: usize,
    height: usize,
    bytes: usize,
    signed: bool,
) -> Result<Vec<i64>, StreamError> {
    let len = width
        .checked_mul(height)
        .ok_or_else(|| corrupt("tile size overflows"))?;
    let mut c = Cursor {
        bytes: input,
        pos: 0,
    };
    let version = c.u8()?;
    if version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "tile stream version {version}; this build reads {FORMAT_VERSION}"
        )));
    }
    let mode = c.u8()?;
    let crc = u32::from_le_bytes([c.u8()?, c.u8()?, c.u8()?, c.u8()?]);
    let offset = unzigzag(c.varint()?);
    let shift = c.u8()? as u32;
    let n_runs = c.varint()?;
    // Each run is at least one byte, so this bounds the allocation.
    if n_runs > (input.len() - c.pos.min(input.len())) as u64 {
        return Err(StreamError::Truncated);
    }
    let mut runs = Vec::with_capacity(n_runs as usize);
    for _ in 0..n_runs {
        runs.push(c.varint()?);
    }
    let maxv = c.varint()?;
    let (lo_limit, hi_limit) = if signed {
        (-(1i64 << (8 * bytes - 1)), (1i64 << (8 * bytes - 1)) - 1)
    } else {
        (0, (1i64 << (8 * bytes)) - 1)
    };
    if shift >= 32 || offset < lo_limit || offset > hi_limit {
        return Err(corrupt("offset or shift out of range"));
    }
    // The used values, when there is a palette: checked to fit the type.
    let span = (hi_limit - offset) as u64 >> shift;
    let palette: Option<Vec<u32>> = if runs.is_empty() {
        if maxv > span {
            return Err(corrupt("value range exceeds the pixel type"));
        }
        None
    } else {
        if runs.len() % 2 == 0 || runs.contains(&0) {
            return Err(corrupt("bad palette runs"));
        }
        let total = runs.iter().try_fold(0u64, |a, &r| a.checked_add(r));
        let used = runs
            .iter()
            .step_by(2)
            .fold(0u64, |a, &r| a.saturating_add(r));
        match total {
            Some(t) if t <= span + 1 && used <= len as u64 && used == maxv + 1 => {}
            _ => return Err(corrupt("palette does not fit the tile or the pixel type")),
        }
        let mut p = Vec::with_capacity(used as usize);
        let mut at = 0u64;
        for (k, &r) in runs.iter().enumerate() {
            if k % 2 == 0 {
                p.extend((at..at + r).map(|v| v as u32));
            }
            at += r;
        }
        Some(p)
    };
    let mut u = vec![0u32; len];
    match mode {
        MODE_CONSTANT => {
            if maxv != 0 {
                return Err(corrupt("constant tile with a value range"));
            }
        }
        MODE_PREDICTIVE => {
            if maxv == 0 || maxv > u32::MAX as u64 {
                return Err(corrupt("bad value range"));
            }
            let mut coef = [0i32; model::N_TAPS];
            for k in coef.iter_mut() {
                *k = i16::from_le_bytes([c.u8()?, c.u8()?]) as i32;
            }
            let n = c.varint()?;
            let table_bytes = c.take(n)?;
            let mut tr = BitReader::new(table_bytes);
            let mut group_of = [0u16; N_CTX];
            let mut groups = 1usize;
            for g in group_of.iter_mut().skip(1) {
                groups += tr.get(1) as usize;
                *g = (groups - 1) as u16;
            }
            let tables = rans::read_tables(&mut tr, groups).map_err(corrupt)?;
            let n = c.varint()?;
            let rans_bytes = c.take(n)?;
            let raw = &input[c.pos..];
            let mut dec = Decoder {
                rans: RansDecoder::new(rans_bytes),
                bits: BitReader::new(raw),
                tables: DecodeTables::new(&tables, &group_of),
            };
            let ok = model::run::<_, true>(&mut u, width, height, maxv as u32, &coef, &mut dec);
            if !ok || dec.rans.bad_context {
                return Err(corrupt("a coded value is out of range"));
            }
            if !dec.rans.finished_cleanly() || dec.bits.past_end() {
                return Err(if dec.rans.overrun() || dec.bits.past_end() {
                    StreamError::Truncated
                } else {
                    corrupt("the coded stream does not end where it should")
                });
            }
        }
        m => return Err(corrupt(format!("unknown tile mode {m}"))),
    }
    let values: Vec<i64> = match &palette {
        None => u.iter().map(|&x| offset + ((x as i64) << shift)).collect(),
        Some(p) => u
            .iter()
            .map(|&x| offset + ((p[x as usize] as i64) << shift))
            .collect(),
    };
    if pixel_crc(&values, bytes) != crc {
        return Err(corrupt("pixel checksum mismatch"));
    }
    Ok(values)
}
