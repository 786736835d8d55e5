//! PCNN_1 tile streams: the autoregressive pass, per-tile scale offset, range
//! coding.
//!
//! Stream, version 1: byte 0 = 1 (version); byte 1 = coding mode ([`Mode`]);
//! byte 2 = the tile's scale-index offset as i8; byte 3 = 0; bytes 4..8 = the
//! CRC-32 of the pixels (u16 little-endian), checked after decoding so that a
//! damaged stream, a different model or a faulty engine can only give an
//! error; then the range coder's u32 words, little-endian.
//!
//! The encoder evaluates the network once per pixel (the same code and order
//! as the decoder), then picks the scale offset in −6..=6 that codes a
//! sample of the tile's pixels in the fewest bits: a cheap, exact way to fit
//! a fixed model to a frame noisier or smoother than its training data.

use constriction::stream::queue::{DefaultRangeDecoder, DefaultRangeEncoder};
use constriction::stream::{Decode, Encode};

use super::adapt::{context_of, Adapt};
use super::features::context;
use super::mixture::{Dist, SymbolModel};
use super::model::{PcnnModel, PER_COMPONENT};
use super::net::Runner;
use crate::error::CodecError;

pub const STREAM_VERSION: u8 = 1;
const HEADER: usize = 8;

/// How a pixel's value is split into coded symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Two 8-bit symbols, the high byte first, the low byte conditioned on it.
    Split = 0,
    /// One 16-bit symbol (the 1×16-bit variant, for comparison).
    Sixteen = 1,
    /// 8-bit pixels: the high byte is 0 and not coded.
    Byte = 2,
}

impl Mode {
    fn from_byte(b: u8) -> Option<Mode> {
        match b {
            0 => Some(Mode::Split),
            1 => Some(Mode::Sixteen),
            2 => Some(Mode::Byte),
            _ => None,
        }
    }
}

fn crc(px: &[i32]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for &v in px {
        h.update(&(v as u16).to_le_bytes());
    }
    h.finalize()
}

/// The distribution every pixel of a tile is coded with, in raster order:
/// the network's, adapted online ([`super::adapt`]). `batch`: pixels the
/// network evaluates per run (layer by layer over a run of a row; 0: whole
/// rows); any value gives the same numbers.
pub fn predict(model: &PcnnModel, px: &[i32], w: usize, h: usize, batch: usize) -> Vec<Dist> {
    let batch = match batch {
        0 => w.max(1),
        b => b,
    };
    let mut run = Runner::new(model, w);
    let mut adapt = Adapt::default();
    let mut out = Vec::with_capacity(w * h);
    let per = model.mixture * PER_COMPONENT;
    let mut feats = Vec::with_capacity(batch);
    let mut cands = Vec::with_capacity(batch);
    for r in 0..h {
        for c0 in (0..w).step_by(batch) {
            feats.clear();
            cands.clear();
            for c in c0..(c0 + batch).min(w) {
                let (f, cand) = context(px, w, r, c);
                feats.push(f);
                cands.push(cand);
            }
            let o = run.run(&feats, r, c0);
            for (p, (cand, f)) in cands.iter().zip(&feats).enumerate() {
                let raw = Dist::new(&o[p * per..(p + 1) * per], cand, model.mixture);
                let ctx = context_of(f, &raw);
                let used = adapt.apply(&raw, ctx);
                adapt.update(&raw, &used, ctx, px[r * w + c0 + p] as u32);
                out.push(used);
            }
        }
    }
    out
}

fn pixel_bits(d: &Dist, v: u32, mode: Mode, dj: i32) -> f64 {
    match mode {
        Mode::Split => {
            SymbolModel::msb(d, dj).cost(v >> 8) + SymbolModel::lsb(d, dj, v >> 8).cost(v & 255)
        }
        Mode::Sixteen => SymbolModel::value16(d, dj).cost(v),
        Mode::Byte => SymbolModel::lsb(d, dj, 0).cost(v),
    }
}

/// Model bits of the tile at scale offset `dj` (every pixel).
pub fn estimate_bits(dists: &[Dist], px: &[i32], mode: Mode, dj: i32) -> f64 {
    dists
        .iter()
        .zip(px)
        .map(|(d, &v)| pixel_bits(d, v as u32, mode, dj))
        .sum()
}

fn best_offset(dists: &[Dist], px: &[i32], mode: Mode) -> i32 {
    let step = (dists.len() / 40_000).max(1);
    let mut best = (f64::INFINITY, 0);
    for dj in -6..=6 {
        let bits: f64 = dists
            .iter()
            .zip(px)
            .step_by(step)
            .map(|(d, &v)| pixel_bits(d, v as u32, mode, dj))
            .sum();
        // Ties and near-ties go to the offset closest to 0.
        if bits < best.0 - 1e-9 {
            best = (bits, dj);
        }
    }
    best.1
}

fn enc_err<E: std::fmt::Debug>(e: E) -> CodecError {
    CodecError::Unsupported(format!("PCNN_1 entropy coder: {e:?}"))
}

/// Code a tile of unsigned pixel values (0..=65535, or 0..=255 in Byte mode),
/// `w` wide and `h` high, running the network over `batch` pixels at a time
/// ([`predict`]; the bytes do not depend on it).
pub fn encode_tile(
    model: &PcnnModel,
    px: &[i32],
    w: usize,
    h: usize,
    mode: Mode,
    batch: usize,
) -> Result<Vec<u8>, CodecError> {
    encode(model, px, w, h, mode, batch, false).map(|(bytes, _)| bytes)
}

/// [`encode_tile`], and the model's own code length of the tile in bits (the
/// ideal size under the same probabilities, for benchmarks).
pub fn encode_tile_estimated(
    model: &PcnnModel,
    px: &[i32],
    w: usize,
    h: usize,
    mode: Mode,
    batch: usize,
) -> Result<(Vec<u8>, f64), CodecError> {
    encode(model, px, w, h, mode, batch, true)
}

fn encode(
    model: &PcnnModel,
    px: &[i32],
    w: usize,
    h: usize,
    mode: Mode,
    batch: usize,
    estimate: bool,
) -> Result<(Vec<u8>, f64), CodecError> {
    let limit = if mode == Mode::Byte { 255 } else { 65535 };
    if px.len() != w * h || px.iter().any(|&v| !(0..=limit).contains(&v)) {
        return Err(CodecError::Unsupported(format!(
            "PCNN_1 codes {w}x{h} values in 0..={limit}"
        )));
    }
    let dists = predict(model, px, w, h, batch);
    let dj = best_offset(&dists, px, mode);
    let mut enc = DefaultRangeEncoder::new();
    for (d, &v) in dists.iter().zip(px) {
        let v = v as u32;
        match mode {
            Mode::Split => {
                enc.encode_symbol(v >> 8, SymbolModel::msb(d, dj))
                    .map_err(enc_err)?;
                enc.encode_symbol(v & 255, SymbolModel::lsb(d, dj, v >> 8))
                    .map_err(enc_err)?;
            }
            Mode::Sixteen => enc
                .encode_symbol(v, SymbolModel::value16(d, dj))
                .map_err(enc_err)?,
            Mode::Byte => enc
                .encode_symbol(v, SymbolModel::lsb(d, dj, 0))
                .map_err(enc_err)?,
        }
    }
    let words = enc.into_compressed().map_err(enc_err)?;
    let mut out = Vec::with_capacity(HEADER + 4 * words.len());
    out.extend_from_slice(&[STREAM_VERSION, mode as u8, dj as i8 as u8, 0]);
    out.extend_from_slice(&crc(px).to_le_bytes());
    for wd in words {
        out.extend_from_slice(&wd.to_le_bytes());
    }
    let bits = if estimate {
        estimate_bits(&dists, px, mode, dj)
    } else {
        0.0
    };
    Ok((out, bits))
}

fn corrupt(msg: impl Into<String>) -> CodecError {
    CodecError::Corrupt(msg.into())
}

/// Decode a tile `w` wide and `h` high; `byte` says whether the pixels are
/// 8-bit (the stream must then be in Byte mode).
pub fn decode_tile(
    model: &PcnnModel,
    bytes: &[u8],
    w: usize,
    h: usize,
    byte: bool,
) -> Result<Vec<i32>, CodecError> {
    if bytes.len() < HEADER {
        return Err(corrupt(format!(
            "PCNN_1 tile of {} bytes, shorter than its header",
            bytes.len()
        )));
    }
    if bytes[0] != STREAM_VERSION {
        return Err(corrupt(format!(
            "PCNN_1 tile stream version {} (this build reads {STREAM_VERSION})",
            bytes[0]
        )));
    }
    let mode = Mode::from_byte(bytes[1])
        .ok_or_else(|| corrupt(format!("PCNN_1 tile: unknown coding mode {}", bytes[1])))?;
    if (mode == Mode::Byte) != byte {
        return Err(corrupt(
            "PCNN_1 tile: coding mode does not match the pixel type",
        ));
    }
    let dj = bytes[2] as i8 as i32;
    if !(-16..=16).contains(&dj) || bytes[3] != 0 {
        return Err(corrupt("PCNN_1 tile: bad header"));
    }
    let want_crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let body = &bytes[HEADER..];
    if !body.len().is_multiple_of(4) {
        return Err(corrupt(
            "PCNN_1 tile: coded data is not a whole number of 32-bit words",
        ));
    }
    let words: Vec<u32> = body
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut dec = DefaultRangeDecoder::from_compressed(words)
        .map_err(|e| corrupt(format!("PCNN_1 entropy decoder: {e:?}")))?;
    let n = w
        .checked_mul(h)
        .ok_or_else(|| corrupt("PCNN_1 tile size overflows"))?;
    let mut px = vec![0i32; n];
    let mut run = Runner::new(model, w);
    let mut adapt = Adapt::default();
    let derr = |e: &dyn std::fmt::Debug| corrupt(format!("PCNN_1 entropy decoder: {e:?}"));
    for r in 0..h {
        for c in 0..w {
            let (f, cand) = context(&px, w, r, c);
            let raw = Dist::new(run.step(&f, r, c), &cand, model.mixture);
            let ctx = context_of(&f, &raw);
            let d = adapt.apply(&raw, ctx);
            let v = match mode {
                Mode::Split => {
                    let m = dec
                        .decode_symbol(SymbolModel::msb(&d, dj))
                        .map_err(|e| derr(&e))?;
                    let l = dec
                        .decode_symbol(SymbolModel::lsb(&d, dj, m))
                        .map_err(|e| derr(&e))?;
                    (m << 8) | l
                }
                Mode::Sixteen => dec
                    .decode_symbol(SymbolModel::value16(&d, dj))
                    .map_err(|e| derr(&e))?,
                Mode::Byte => dec
                    .decode_symbol(SymbolModel::lsb(&d, dj, 0))
                    .map_err(|e| derr(&e))?,
            };
            adapt.update(&raw, &d, ctx, v);
            px[r * w + c] = v as i32;
        }
    }
    if !dec.maybe_exhausted() {
        return Err(corrupt(
            "PCNN_1 tile has entropy-coded data after its last pixel",
        ));
    }
    if crc(&px) != want_crc {
        return Err(corrupt("PCNN_1 tile checksum mismatch: damaged data, or a model or engine that differs from the encoder's"));
    }
    Ok(px)
}
