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
//! tile's big-endian pixel bytes (little-endian u32), then those bytes, each
//! replaced by its difference (mod 256) from the same byte of the pixel
//! before, with runs of zeros written as a 0 and the run length (1..=255).
//! Smooth images shrink, so `recompress` (which keeps only smaller files)
//! has something to do. Any pixel type is coded; decoding checks the length
//! and the CRC, so damaged data is an error, never wrong pixels.

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
        let lane = pixels.pixel_type().size();
        let mut out = Vec::with_capacity(HEADER_LEN + bytes.len());
        out.push(VERSION as u8);
        out.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        let mut zeros = 0u8;
        for (i, &b) in bytes.iter().enumerate() {
            let d = b.wrapping_sub(if i >= lane { bytes[i - lane] } else { 0 });
            if d == 0 {
                zeros += 1;
                if zeros == u8::MAX {
                    out.extend_from_slice(&[0, zeros]);
                    zeros = 0;
                }
                continue;
            }
            if zeros > 0 {
                out.extend_from_slice(&[0, zeros]);
                zeros = 0;
            }
            out.push(d);
        }
        if zeros > 0 {
            out.extend_from_slice(&[0, zeros]);
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
        let lane = spec.pixel_type.size();
        let mut raw: Vec<u8> = Vec::with_capacity(expected);
        let mut body = bytes[HEADER_LEN..].iter();
        let too_long =
            || CodecError::Corrupt(format!("TOY_1 tile holds more than {expected} bytes"));
        while let Some(&d) = body.next() {
            let (value, count) = match d {
                0 => match body.next() {
                    Some(&n) if n > 0 => (0, usize::from(n)),
                    _ => {
                        return Err(CodecError::Corrupt(
                            "TOY_1 zero run without a length".into(),
                        ))
                    }
                },
                d => (d, 1),
            };
            if raw.len() + count > expected {
                return Err(too_long());
            }
            for _ in 0..count {
                let i = raw.len();
                raw.push(value.wrapping_add(if i >= lane { raw[i - lane] } else { 0 }));
            }
        }
        if raw.len() != expected {
            return Err(CodecError::Corrupt(format!(
                "TOY_1 tile holds {} bytes where {expected} are expected",
                raw.len()
            )));
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
            let mut raw: Vec<u8> = (0..t.size() * 12).map(|i| (i * 53 + 7) as u8).collect();
            // A run of equal pixels, coded as zeros.
            raw[t.size() * 2..t.size() * 9].fill(0x5a);
            let pixels = Pixels::from_be_bytes(t, &raw);
            let spec = TileSpec {
                shape: &[4, 3],
                pixel_type: t,
                params: &params,
                context: Default::default(),
            };
            let coded = Toy.encode(&pixels, &spec).unwrap();
            assert!(Toy.decode(&coded, &spec).unwrap().bits_eq(&pixels));
            for at in HEADER_LEN..coded.len() {
                let mut bad = coded.clone();
                bad[at] ^= 1;
                assert!(Toy.decode(&bad, &spec).is_err(), "{t:?}, byte {at}");
            }
            assert!(Toy.decode(&coded[..coded.len() - 1], &spec).is_err());
            assert!(Toy.decode(&coded[..2], &spec).is_err());
        }
    }
}
