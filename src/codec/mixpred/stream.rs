//! The MIXPRED_1 tile stream: value mapping, checksum and sections.
//!
//! Layout (docs/formats/MIXPRED_1.md is the specification):
//! ```text
//! u8      format version (3)
//! u8      mode: 0 constant tile, 1 predictive
//! u32 LE  CRC-32 (IEEE) of the tile's pixels, little-endian, in the
//!         pixel type's width
//! varint  offset: the tile minimum, zigzag-coded
//! u8      shift: unused low bits common to every (value - offset)
//! varint  number of palette runs (0: no palette), then the runs;
//!         with a palette: varint number of exceptions, then per exception
//!         the position delta and the mapped value (varints)
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
//! A comb with a few values between its teeth (a camera's digital gain with
//! some pixels interpolated) would make the indices of neighbouring values
//! irregular, so a second palette of the values common in the tile is tried
//! too, the rare ones sent as exceptions: on corpus/train's Seestar frames
//! this coded 7-13% smaller.

use super::model::{self, SymbolCoder, N_CTX};
use super::rans::{self, BitReader, BitWriter, DecodeTables, RansDecoder, RansEncoder, N_TOKENS};

pub const FORMAT_VERSION: u8 = 3;
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
/// A palette of common values with the rare ones as exceptions is tried
/// when at most 1/EXC_FRACTION of the pixels are exceptions, below this
/// mapped range (the per-value counts then take at most 1 MiB).
const EXC_FRACTION: usize = 256;
const EXC_MAX_RANGE: u64 = 1 << 20;
/// Values occurring fewer than this many times per 2^16 pixels are rare.
const EXC_PER_2_16: usize = 4;

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
    /// With a palette: the used values in order (for the nearest used value
    /// of an exception).
    comb: Vec<u32>,
    /// Pixels whose value is not in the palette: position and mapped value.
    exceptions: Vec<(usize, u32)>,
    maxv: u32,
}

/// A palette mapping over the values marked in `used` (a bitmap of mapped
/// values); pixels whose value is not marked become exceptions.
fn palette_mapping(values: &[i64], lo: i64, shift: u32, range: u64, used: Vec<u64>) -> Mapping {
    let mut runs = Vec::new();
    let mut comb = Vec::new();
    let mut state = true;
    let mut len = 0u64;
    for u in 0..=range as usize {
        let bit = used[u >> 6] >> (u & 63) & 1 == 1;
        if bit {
            comb.push(u as u32);
        }
        if bit != state {
            runs.push(len);
            state = bit;
            len = 0;
        }
        len += 1;
    }
    debug_assert!(state, "the largest value is used");
    runs.push(len);
    let mut rank = Vec::with_capacity(used.len());
    let mut before = 0u32;
    for w in &used {
        rank.push(before);
        before += w.count_ones();
    }
    let mut exceptions = Vec::new();
    for (i, &v) in values.iter().enumerate() {
        let u = ((v - lo) as u64 >> shift) as usize;
        if used[u >> 6] >> (u & 63) & 1 == 0 {
            exceptions.push((i, u as u32));
        }
    }
    Mapping {
        offset: lo,
        shift,
        runs,
        used,
        rank,
        maxv: (comb.len() - 1) as u32,
        comb,
        exceptions,
    }
}

/// The bitmap of the values that occur at least ⌈EXC_PER_2_16 · n / 2^16⌉
/// times (at least twice) in a tile of n pixels, plus the smallest and
/// largest (which fix the tile's range).
fn common_values(counts: &[u8], n: usize) -> Vec<u64> {
    let min = (EXC_PER_2_16 * n).div_ceil(1 << 16).clamp(2, 255) as u8;
    let mut common = vec![0u64; (counts.len() >> 6) + 1];
    for (u, &c) in counts.iter().enumerate() {
        if c >= min {
            common[u >> 6] |= 1 << (u & 63);
        }
    }
    let last = counts.len() - 1;
    common[0] |= 1;
    common[last >> 6] |= 1 << (last & 63);
    common
}

/// The plain mapping and, when at most 3/4 of the values of its range
/// occur, palette mappings as candidates: all used values, and the values
/// used at least twice with the others as exceptions.
fn choose_mapping(values: &[i64]) -> (Mapping, Vec<Mapping>) {
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
    let mut out = Vec::new();
    if range > 1 && range < PALETTE_MAX_RANGE {
        let mut used = vec![0u64; (range as usize >> 6) + 1];
        // Occurrences per value (saturating), for the palette of common values.
        let mut counts = vec![
            0u8;
            if range < EXC_MAX_RANGE {
                range as usize + 1
            } else {
                0
            }
        ];
        for &v in values {
            let u = ((v - lo) as u64 >> shift) as usize;
            used[u >> 6] |= 1 << (u & 63);
            if let Some(c) = counts.get_mut(u) {
                *c = c.saturating_add(1);
            }
        }
        let distinct: u64 = used.iter().map(|w| w.count_ones() as u64).sum();
        if distinct * 4 <= 3 * (range + 1) {
            if !counts.is_empty() {
                let common = common_values(&counts, values.len());
                let n_common: u64 = common.iter().map(|w| w.count_ones() as u64).sum();
                let rare = (distinct - n_common) as usize;
                if rare > 0 && rare * EXC_FRACTION <= values.len() {
                    out.push(palette_mapping(values, lo, shift, range, common));
                }
            }
            out.push(palette_mapping(values, lo, shift, range, used));
        }
    }
    (Mapping::plain(lo, shift, range), out)
}

impl Mapping {
    fn plain(offset: i64, shift: u32, range: u64) -> Mapping {
        Mapping {
            offset,
            shift,
            runs: Vec::new(),
            used: Vec::new(),
            rank: Vec::new(),
            comb: Vec::new(),
            exceptions: Vec::new(),
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
    let (plain, palettes) = choose_mapping(values);
    if palettes.is_empty() {
        return encode_mapped(values, width, height, out, &plain);
    }
    if values.len() <= 4 * TRIAL_PIXELS {
        let mut best = encode_mapped(values, width, height, out.clone(), &plain);
        for p in &palettes {
            let b = encode_mapped(values, width, height, out.clone(), p);
            if b.len() < best.len() {
                best = b;
            }
        }
        return best;
    }
    let sparse =
        (palettes[palettes.len() - 1].maxv as u64 + 1) * SPARSE_FACTOR <= plain.maxv as u64 + 1;
    let mut best = if sparse {
        None
    } else {
        Some((sample_cost(values, width, height, &plain), &plain))
    };
    if sparse && palettes.len() == 1 {
        return encode_mapped(values, width, height, out, &palettes[0]);
    }
    for p in &palettes {
        let c = sample_cost(values, width, height, p);
        if best.as_ref().is_none_or(|b| c < b.0) {
            best = Some((c, p));
        }
    }
    encode_mapped(values, width, height, out, best.expect("a candidate").1)
}

/// Map the values, fit the tile's predictor and record its tokens.
fn model_pass(
    values: &[i64],
    width: usize,
    height: usize,
    map: &Mapping,
) -> (model::Predictor, Recorder) {
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
                let r = map.rank[x >> 6] + below.count_ones();
                if map.used[x >> 6] >> (x & 63) & 1 == 1 {
                    r
                } else {
                    // An exception: the nearest used value (r ≥ 1: the first value is used).
                    let (a, b) = (map.comb[r as usize - 1], map.comb[r as usize]);
                    if x as u32 - a <= b - x as u32 {
                        r - 1
                    } else {
                        r
                    }
                }
            })
            .collect()
    };
    let rec = Recorder {
        tokens: Vec::with_capacity(values.len()),
        counts: vec![[0u32; N_TOKENS]; N_CTX],
        bits: BitWriter::with_capacity(values.len()),
    };
    let coef = model::fit_linear(&u, width, height);
    let (rec, _) = model::run::<_, false>(&mut u, width, height, map.maxv, &coef, rec);
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
    let runs: usize = map.runs.iter().map(|&r| varint_len(r)).sum::<usize>() + exceptions_len(map);
    bits * height as f64 / coded_rows as f64 + 8.0 * runs as f64
}

fn exceptions_len(map: &Mapping) -> usize {
    let mut at = 0;
    let mut n = varint_len(map.exceptions.len() as u64);
    for &(i, u) in &map.exceptions {
        n += varint_len((i - at) as u64) + varint_len(u as u64);
        at = i;
    }
    n
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
    if !map.runs.is_empty() {
        put_varint(&mut out, map.exceptions.len() as u64);
        let mut at = 0;
        for &(i, u) in &map.exceptions {
            put_varint(&mut out, (i - at) as u64);
            put_varint(&mut out, u as u64);
            at = i;
        }
    }
    put_varint(&mut out, map.maxv as u64);
    if map.maxv == 0 {
        return out;
    }
    out[1] = MODE_PREDICTIVE;
    let (coef, rec) = model_pass(values, width, height, map);
    out.push(coef.base as u8);
    out.extend_from_slice(&coef.own.to_le_bytes());
    for c in coef.all {
        out.extend_from_slice(&(c as i16).to_le_bytes());
    }
    for k in 0..model::N_CLS {
        if coef.own >> k & 1 == 1 {
            for c in coef.coef[k] {
                out.extend_from_slice(&(c as i16).to_le_bytes());
            }
        }
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
    let tile = decode_mapped(input, width, height, bytes, signed)?;
    let mut values: Vec<i64> = match &tile.palette {
        None => tile
            .u
            .iter()
            .map(|&x| tile.offset + ((x as i64) << tile.shift))
            .collect(),
        Some(p) => tile
            .u
            .iter()
            .map(|&x| tile.offset + ((p[x as usize] as i64) << tile.shift))
            .collect(),
    };
    for &(i, u) in &tile.exceptions {
        values[i] = tile.offset + ((u as i64) << tile.shift);
    }
    if pixel_crc(&values, bytes) != tile.crc {
        return Err(corrupt("pixel checksum mismatch"));
    }
    Ok(values)
}

/// [`decode`] straight into the tile's big-endian bytes (`out.len() ==
/// width · height · bytes`), without a typed copy; `out` may hold anything
/// after an error.
pub fn decode_be_into(
    input: &[u8],
    width: usize,
    height: usize,
    bytes: usize,
    signed: bool,
    out: &mut [u8],
) -> Result<(), StreamError> {
    let tile = decode_mapped(input, width, height, bytes, signed)?;
    if out.len() != tile.u.len() * bytes {
        return Err(corrupt("output size does not match the tile"));
    }
    fn fill<const W: usize>(tile: &DecodedTile, out: &mut [u8]) -> u32 {
        let out = out.as_chunks_mut::<W>().0;
        let value = |x: u32| match &tile.palette {
            None => tile.offset + ((x as i64) << tile.shift),
            Some(p) => tile.offset + ((p[x as usize] as i64) << tile.shift),
        };
        for (o, &x) in out.iter_mut().zip(&tile.u) {
            let v = value(x);
            *o = v.to_be_bytes()[8 - W..].try_into().expect("W bytes");
        }
        for &(i, u) in &tile.exceptions {
            let v = tile.offset + ((u as i64) << tile.shift);
            out[i] = v.to_be_bytes()[8 - W..].try_into().expect("W bytes");
        }
        // The checksum is over little-endian values: reverse each in a
        // buffer, a page at a time.
        let mut h = crc32fast::Hasher::new();
        let mut buf = [[0u8; W]; 1024];
        for chunk in out.chunks(1024) {
            for (b, o) in buf.iter_mut().zip(chunk) {
                *b = *o;
                b.reverse();
            }
            h.update(buf[..chunk.len()].as_flattened());
        }
        h.finalize()
    }
    let crc = match bytes {
        1 => fill::<1>(&tile, out),
        2 => fill::<2>(&tile, out),
        _ => fill::<4>(&tile, out),
    };
    if crc != tile.crc {
        return Err(corrupt("pixel checksum mismatch"));
    }
    Ok(())
}

/// A decoded tile before the values are put back: mapped values, the
/// mapping, the exceptions (checked to fit the type) and the checksum.
struct DecodedTile {
    u: Vec<u32>,
    offset: i64,
    shift: u32,
    palette: Option<Vec<u32>>,
    exceptions: Vec<(usize, u64)>,
    crc: u32,
}

fn decode_mapped(
    input: &[u8],
    width: usize,
    height: usize,
    bytes: usize,
    signed: bool,
) -> Result<DecodedTile, StreamError> {
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
    let mut exceptions = Vec::new();
    if n_runs > 0 {
        let n = c.varint()?;
        if n > len as u64 {
            return Err(corrupt("more exceptions than pixels"));
        }
        let mut at = 0u64;
        for k in 0..n {
            let d = c.varint()?;
            let u = c.varint()?;
            at = at
                .checked_add(d)
                .filter(|&a| a < len as u64 && (k == 0 || d > 0))
                .ok_or_else(|| corrupt("bad exception position"))?;
            exceptions.push((at as usize, u));
        }
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
            let base = c.u8()? as u32;
            if base > 31 {
                return Err(corrupt("bad predictor class base"));
            }
            let own = u16::from_le_bytes([c.u8()?, c.u8()?]);
            if (own as u32) >> model::N_CLS != 0 {
                return Err(corrupt("bad predictor class mask"));
            }
            let mut all = [0i32; model::N_TAPS];
            for k in all.iter_mut() {
                *k = i16::from_le_bytes([c.u8()?, c.u8()?]) as i32;
            }
            let mut coef = model::Predictor {
                coef: [all; model::N_CLS],
                base,
                own,
                all,
            };
            for k in 0..model::N_CLS {
                if own >> k & 1 == 1 {
                    for t in coef.coef[k].iter_mut() {
                        *t = i16::from_le_bytes([c.u8()?, c.u8()?]) as i32;
                    }
                }
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
            let dec = Decoder {
                rans: RansDecoder::new(rans_bytes),
                bits: BitReader::new(raw),
                tables: DecodeTables::new(&tables, &group_of),
            };
            let (dec, ok) = model::run::<_, true>(&mut u, width, height, maxv as u32, &coef, dec);
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
    for &(_, u) in &exceptions {
        if u > span {
            return Err(corrupt("exception value exceeds the pixel type"));
        }
    }
    Ok(DecodedTile {
        u,
        offset,
        shift,
        palette,
        exceptions,
        crc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::TestRng as Rng;

    /// The palette runs and exceptions of an encoded tile.
    fn palette_of(bytes: &[u8]) -> (Vec<u64>, Vec<(u64, u64)>) {
        let mut c = Cursor { bytes, pos: 6 };
        c.varint().unwrap();
        c.u8().unwrap();
        let runs: Vec<u64> = (0..c.varint().unwrap())
            .map(|_| c.varint().unwrap())
            .collect();
        let mut exc = Vec::new();
        if !runs.is_empty() {
            for _ in 0..c.varint().unwrap() {
                exc.push((c.varint().unwrap(), c.varint().unwrap()));
            }
        }
        (runs, exc)
    }

    /// A smooth image on a comb of step 3, with `rare` pixels moved off it.
    fn comb_with_rare_values(rare: usize) -> (Vec<i64>, usize, usize) {
        let (w, h) = (200, 150);
        let mut rng = Rng(9);
        let mut v: Vec<i64> = (0..w * h)
            .map(|i| 3 * ((i % w + i / w) as i64 / 5 + (rng.next() % 4) as i64) + 100)
            .collect();
        for _ in 0..rare {
            let i = rng.next() as usize % v.len();
            v[i] += 1;
        }
        (v, w, h)
    }

    #[test]
    fn rare_values_between_a_comb_are_exceptions() {
        let (v, w, h) = comb_with_rare_values(12);
        let bytes = encode(&v, w, h, 2);
        let (runs, exc) = palette_of(&bytes);
        assert!(!runs.is_empty(), "a comb gets a palette");
        // Off-comb values that occur once (two rare pixels may share one).
        let once = |x: i64| v.iter().filter(|&&y| y == x).count() == 1;
        let off_comb = v.iter().filter(|&&x| (x - 100) % 3 != 0 && once(x)).count();
        assert!(off_comb >= 8);
        assert_eq!(
            exc.len(),
            off_comb,
            "every rare off-comb pixel is an exception"
        );
        assert_eq!(decode(&bytes, w, h, 2, true).unwrap(), v);
        // The palette of every used value (the version-2 coding) is at
        // least 5% larger: its indices are irregular around the rare values.
        let (_, palettes) = choose_mapping(&v);
        let all = palettes.last().expect("the all-values palette");
        assert!(all.exceptions.is_empty());
        let without = encode_mapped(&v, w, h, bytes[..6].to_vec(), all).len();
        assert!(
            bytes.len() * 100 <= without * 95,
            "{} vs {without}",
            bytes.len()
        );
        // And close to the same image without rare values.
        let (clean, _, _) = comb_with_rare_values(0);
        let base = encode(&clean, w, h, 2).len();
        assert!(bytes.len() * 100 <= base * 103, "{} vs {base}", bytes.len());
    }

    #[test]
    fn exceptions_out_of_the_tile_or_the_type_are_errors() {
        let (v, w, h) = comb_with_rare_values(3);
        let good = encode(&v, w, h, 2);
        let (runs, exc) = palette_of(&good);
        assert!(!exc.is_empty());
        // Rebuild the header with a bad exception, keep the rest.
        let rebuild = |exc: &[(u64, u64)]| {
            let mut c = Cursor {
                bytes: &good,
                pos: 6,
            };
            c.varint().unwrap();
            c.u8().unwrap();
            for _ in 0..c.varint().unwrap() {
                c.varint().unwrap();
            }
            for _ in 0..c.varint().unwrap() {
                c.varint().unwrap();
                c.varint().unwrap();
            }
            let mut out = good[..6].to_vec();
            let mut h = Cursor {
                bytes: &good,
                pos: 6,
            };
            let off = h.varint().unwrap();
            put_varint(&mut out, off);
            out.push(h.u8().unwrap());
            put_varint(&mut out, runs.len() as u64);
            for &r in &runs {
                put_varint(&mut out, r);
            }
            put_varint(&mut out, exc.len() as u64);
            for &(d, u) in exc {
                put_varint(&mut out, d);
                put_varint(&mut out, u);
            }
            out.extend_from_slice(&good[c.pos..]);
            out
        };
        assert_eq!(decode(&rebuild(&exc), w, h, 2, true).unwrap(), v);
        let mut past_end = exc.clone();
        past_end[0].0 = (w * h) as u64;
        assert!(decode(&rebuild(&past_end), w, h, 2, true).is_err());
        let mut too_big = exc.clone();
        too_big[0].1 = 1 << 20;
        assert!(decode(&rebuild(&too_big), w, h, 2, true).is_err());
        let mut repeated = exc.clone();
        repeated.push((0, exc[0].1));
        assert!(decode(&rebuild(&repeated), w, h, 2, true).is_err());
    }
}
