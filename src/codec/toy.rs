//! TOY_1: a deliberately trivial lossless codec, compiled only with the
//! `test-codec` cargo feature.
//!
//! Why it exists: it is the proof that a codec is one module and one line
//! in [`super::REGISTRY`]. fpack-ng's `tests/toy_codec.rs` drives it through
//! every path of the command line (`-L`, `-T`, `--codec`, funpack-ng,
//! `recompress --to`); if any of those needed to know a codec by name, that
//! test would fail until someone edited code outside this file.
//!
//! The stream (version 1, ZNAME1 = 'TOYVER'): the byte 1, the CRC-32 of the
//! tile's big-endian pixel bytes (little-endian u32), then those bytes with
//! each replaced by its difference from the one before (mod 256). Any pixel
//! type is coded; decoding checks the length and the CRC, so damaged data is
//! an error, never wrong pixels.

use super::{Codec, EncodeOptions, ParamValue, Params, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

/// The stream version this build writes and reads.
pub const VERSION: i64 = 1;
const VERSION_KEY: &str = "TOYVER";
/// Version byte and CRC-32.
const HEADER_LEN: usize = 5;

pub struct Toy;

fn check_version(params: &Params) -> Result<(), CodecError> {
    match params.get_int(VERSION_KEY) {
        Some(VERSION) => Ok(()),
        Some(v) => Err(CodecError::BadParameter(format!(
            "TOY_1 {VERSION_KEY} = {v}; this build reads {VERSION}"
        ))),
        None => Err(CodecError::BadParameter(format!(
            "TOY_1 HDU without {VERSION_KEY}"
        ))),
    }
}

impl Codec for Toy {
    fn id(&self) -> &'static str {
        "TOY_1"
    }

    fn short_names(&self) -> &'static [&'static str] {
        &["toy"]
    }

    fn description(&self) -> &'static str {
        "byte differences with a CRC-32 (a test codec; fpack-ng built with test-codec)"
    }

    fn supports(&self, _pixel_type: PixelType) -> bool {
        true
    }

    fn encode_params(&self, _pixel_type: PixelType, _options: &EncodeOptions) -> Params {
        Params::new().with(VERSION_KEY, ParamValue::Int(VERSION))
    }

    fn encode(&self, pixels: &Pixels, spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        check_version(spec.params)?;
        let bytes = pixels.to_be_bytes();
        let mut out = Vec::with_capacity(HEADER_LEN + bytes.len());
        out.push(VERSION as u8);
        out.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        let mut previous = 0u8;
        for &b in &bytes {
            out.push(b.wrapping_sub(previous));
            previous = b;
        }
        Ok(out)
    }

    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError> {
        check_version(spec.params)?;
        let expected = spec
            .len()
            .checked_mul(spec.pixel_type.size())
            .ok_or_else(|| CodecError::Corrupt("TOY_1 tile size overflows".into()))?;
        if bytes.len() < HEADER_LEN {
            return Err(CodecError::Truncated);
        }
        if bytes[0] != VERSION as u8 {
            return Err(CodecError::Corrupt(format!(
                "TOY_1 stream version {}; this build reads {VERSION}",
                bytes[0]
            )));
        }
        let body = &bytes[HEADER_LEN..];
        if body.len() != expected {
            return Err(CodecError::Corrupt(format!(
                "TOY_1 tile holds {} bytes where {expected} are expected",
                body.len()
            )));
        }
        let mut raw = Vec::with_capacity(expected);
        let mut previous = 0u8;
        for &d in body {
            previous = previous.wrapping_add(d);
            raw.push(previous);
        }
        let want = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        if crc32fast::hash(&raw) != want {
            return Err(CodecError::Corrupt("TOY_1 tile checksum mismatch".into()));
        }
        Ok(Pixels::from_be_bytes(spec.pixel_type, &raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type_and_refuses_damage() {
        let params = Toy.encode_params(PixelType::I16, &EncodeOptions::default());
        for t in PixelType::ALL {
            let raw: Vec<u8> = (0..t.size() * 12).map(|i| (i * 53 + 7) as u8).collect();
            let pixels = Pixels::from_be_bytes(t, &raw);
            let spec = TileSpec {
                shape: &[4, 3],
                pixel_type: t,
                params: &params,
                context: Default::default(),
            };
            let coded = Toy.encode(&pixels, &spec).unwrap();
            assert!(Toy.decode(&coded, &spec).unwrap().bits_eq(&pixels));
            let mut bad = coded.clone();
            bad[HEADER_LEN] ^= 1;
            assert!(Toy.decode(&bad, &spec).is_err());
            assert!(Toy.decode(&coded[..coded.len() - 1], &spec).is_err());
            assert!(Toy.decode(&coded[..2], &spec).is_err());
        }
    }
}
