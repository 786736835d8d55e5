//! MIXPRED_1: fast lossless coding of integer images by adaptive predictor
//! mixing, context modelling and table-driven rANS.
//!
//! Why it exists: RICE_1 codes at ~85 MB/s but wastes 10–20% on noisy
//! frames; JPEG-XL and the neural codecs win that back at 30–300× the CPU.
//! MIXPRED_1 takes the ingredients that make those strong — a predictor
//! fitted to the tile (least squares over nine causal neighbours), contexts
//! from local activity and signal level, bias cancellation, per-tile
//! entropy tables grouped across contexts, palettes for sparse histograms,
//! a common shift for unused low bits — and keeps each to a few integer
//! operations per pixel, with one modelling pass over the tile each way.
//! The name keeps the design's origin (mixing predictors by their errors);
//! measured on corpus/train, the fitted predictor alone did as well.
//!
//! Layers: [`stream`] (value mapping, checksum, tile layout) → [`model`]
//! (prediction, contexts, tokens) → [`rans`] (tables, entropy coder). The
//! format is specified in docs/formats/MIXPRED_1.md; ZNAME1='MIXVER',
//! ZVAL1 names its version (3 in this build), and a file without it is refused.
//!
//! Pixels: BITPIX 8, 16 and 32 (so every integer image, unsigned
//! conventions included, and the integers of quantized floats). Every tile
//! carries a CRC-32 of its pixels, checked after decoding: a damaged tile is
//! an error, never other pixels.
//!
//! Constants (predictor set, context quantiser, bias rate, table precision,
//! default tiling) were chosen by measuring ratio and speed on
//! ../shared/corpus/train frames (the `scratch` harness described in
//! docs/mixpred.md); test frames were only reported, never used to choose.

pub mod model;
pub mod rans;
pub mod stream;

use super::{Codec, EncodeOptions, ParamValue, Params, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

/// The ZCMPTYPE.
pub const NAME: &str = "MIXPRED_1";
/// The version parameter and the version this build writes and reads.
pub const VERSION_KEY: &str = "MIXVER";
pub const VERSION: i64 = stream::FORMAT_VERSION as i64;

/// Default tiles: full-width strips of at least this many pixels (and at
/// least [`DEFAULT_MIN_ROWS`] rows). Smaller tiles adapt their tables and
/// predictor to local statistics, larger ones spend less on tables and on
/// edge rows. On corpus/train (version 3, with palette exceptions) 2^20-pixel
/// strips coded 0.5% smaller than 2^16 (geometric mean of per-frame
/// ratios) and 0.9% pooled; 2^18 and 2^22 were within 0.2% of 2^20. (In
/// version 2, without exceptions, 2^16 was best: larger tiles of the
/// Seestar frames gathered more rare values into their palettes.)
pub const DEFAULT_TILE_PIXELS: usize = 1 << 20;
pub const DEFAULT_MIN_ROWS: usize = 16;

pub struct MixPred;

fn check_version(params: &Params) -> Result<(), CodecError> {
    match params.get_int(VERSION_KEY) {
        Some(VERSION) => Ok(()),
        Some(v) => Err(CodecError::BadParameter(format!(
            "{NAME} version {VERSION_KEY}={v} is not supported (this build reads version {VERSION})"
        ))),
        None => Err(CodecError::BadParameter(format!(
            "{NAME} needs the {VERSION_KEY} parameter (ZNAMEn='{VERSION_KEY}'), which is missing or not an integer"
        ))),
    }
}

impl Codec for MixPred {
    fn id(&self) -> &'static str {
        NAME
    }

    fn short_names(&self) -> &'static [&'static str] {
        &["mixpred", "mix"]
    }

    fn description(&self) -> &'static str {
        "adaptive predictor mixing, context modelling and rANS for integer images (fpack-ng)"
    }

    fn supports(&self, pixel_type: PixelType) -> bool {
        matches!(pixel_type, PixelType::U8 | PixelType::I16 | PixelType::I32)
    }

    fn default_strip(&self) -> Option<(usize, usize)> {
        Some((DEFAULT_MIN_ROWS, DEFAULT_TILE_PIXELS))
    }

    fn encode_params(&self, _pixel_type: PixelType, _options: &EncodeOptions) -> Params {
        Params::new().with(VERSION_KEY, ParamValue::Int(VERSION))
    }

    fn encode(&self, pixels: &Pixels, spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        check_version(spec.params)?;
        let values: Vec<i64> = match pixels {
            Pixels::U8(v) => v.iter().map(|&p| p as i64).collect(),
            Pixels::I16(v) => v.iter().map(|&p| p as i64).collect(),
            Pixels::I32(v) => v.iter().map(|&p| p as i64).collect(),
            other => {
                return Err(CodecError::Unsupported(format!(
                    "{NAME} codes 8-, 16- and 32-bit integers, not {:?}",
                    other.pixel_type()
                )))
            }
        };
        let (w, h) = spec.width_height();
        Ok(stream::encode(&values, w, h, pixels.pixel_type().size()))
    }

    fn encode_be(&self, bytes: &[u8], spec: &TileSpec) -> Option<Result<Vec<u8>, CodecError>> {
        let t = spec.pixel_type;
        if !self.supports(t) || bytes.len() != spec.len() * t.size() {
            return None;
        }
        if let Err(e) = check_version(spec.params) {
            return Some(Err(e));
        }
        let values: Vec<i64> = match t {
            PixelType::U8 => bytes.iter().map(|&b| b as i64).collect(),
            PixelType::I16 => bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|&b| i16::from_be_bytes(b) as i64)
                .collect(),
            _ => bytes
                .as_chunks::<4>()
                .0
                .iter()
                .map(|&b| i32::from_be_bytes(b) as i64)
                .collect(),
        };
        let (w, h) = spec.width_height();
        Some(Ok(stream::encode(&values, w, h, t.size())))
    }

    fn decode_be_into(
        &self,
        bytes: &[u8],
        spec: &TileSpec,
        out: &mut [u8],
    ) -> Result<bool, CodecError> {
        let t = spec.pixel_type;
        if !self.supports(t) || out.len() != spec.len() * t.size() {
            return Ok(false);
        }
        check_version(spec.params)?;
        let (w, h) = spec.width_height();
        stream::decode_be_into(bytes, w, h, t.size(), t != PixelType::U8, out).map_err(
            |e| match e {
                stream::StreamError::Truncated => CodecError::Truncated,
                stream::StreamError::Corrupt(m) => CodecError::Corrupt(m),
            },
        )?;
        Ok(true)
    }

    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError> {
        check_version(spec.params)?;
        let t = spec.pixel_type;
        if !self.supports(t) {
            return Err(CodecError::Unsupported(format!(
                "{NAME} does not code {t:?}"
            )));
        }
        let (w, h) = spec.width_height();
        let values =
            stream::decode(bytes, w, h, t.size(), t != PixelType::U8).map_err(|e| match e {
                stream::StreamError::Truncated => CodecError::Truncated,
                stream::StreamError::Corrupt(m) => CodecError::Corrupt(m),
            })?;
        // decode() checked every value against the type's range.
        Ok(match t {
            PixelType::U8 => Pixels::U8(values.iter().map(|&v| v as u8).collect()),
            PixelType::I16 => Pixels::I16(values.iter().map(|&v| v as i16).collect()),
            _ => Pixels::I32(values.iter().map(|&v| v as i32).collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::TestRng as Rng;

    fn roundtrip(pixels: Pixels, shape: &[usize]) -> usize {
        let params = MixPred.encode_params(pixels.pixel_type(), &EncodeOptions::default());
        let spec = TileSpec {
            shape,
            pixel_type: pixels.pixel_type(),
            params: &params,
            context: Default::default(),
        };
        let bytes = MixPred.encode(&pixels, &spec).unwrap();
        assert_eq!(MixPred.decode(&bytes, &spec).unwrap(), pixels);
        // The big-endian paths give the same stream and the same pixels.
        let be = pixels.to_be_bytes();
        assert_eq!(MixPred.encode_be(&be, &spec).unwrap().unwrap(), bytes);
        let mut out = vec![0xa5u8; be.len()];
        assert!(MixPred.decode_be_into(&bytes, &spec, &mut out).unwrap());
        assert_eq!(out, be);
        bytes.len()
    }

    #[test]
    fn constant_tiles_cost_a_few_bytes() {
        for v in [0i16, -32768, 32767, 1234] {
            let n = roundtrip(Pixels::I16(vec![v; 100 * 100]), &[100, 100]);
            assert!(n <= 12, "{n} bytes for a constant tile");
        }
        assert!(roundtrip(Pixels::I32(vec![i32::MIN; 5000]), &[50, 100]) <= 14);
        assert!(roundtrip(Pixels::U8(vec![255; 64]), &[8, 8]) <= 12);
    }

    #[test]
    fn extremes_side_by_side() {
        let mut v = vec![0i16; 64 * 64];
        for (i, p) in v.iter_mut().enumerate() {
            *p = if (i * 7 + i / 64) % 3 == 0 {
                i16::MIN
            } else {
                i16::MAX
            };
        }
        roundtrip(Pixels::I16(v), &[64, 64]);
        let w: Vec<i32> = (0..999)
            .map(|i| if i % 2 == 0 { i32::MIN } else { i32::MAX })
            .collect();
        roundtrip(Pixels::I32(w), &[27, 37]);
        roundtrip(
            Pixels::U8(
                (0..1000)
                    .map(|i| if i % 5 == 0 { 255 } else { 0 })
                    .collect(),
            ),
            &[1000],
        );
    }

    #[test]
    fn full_range_random_values_of_every_type() {
        let mut rng = Rng(7);
        let n = 73 * 41;
        roundtrip(
            Pixels::U8((0..n).map(|_| rng.next() as u8).collect()),
            &[73, 41],
        );
        roundtrip(
            Pixels::I16((0..n).map(|_| rng.next() as i16).collect()),
            &[73, 41],
        );
        roundtrip(
            Pixels::I32((0..n).map(|_| rng.next() as i32).collect()),
            &[73, 41],
        );
    }

    #[test]
    fn odd_shapes_and_single_pixels() {
        let mut rng = Rng(3);
        for shape in [[1usize, 1], [1, 1000], [1000, 1], [3, 5], [2, 2], [5, 3]] {
            let n = shape[0] * shape[1];
            let v: Vec<i16> = (0..n).map(|_| (rng.next() % 200) as i16 + 1000).collect();
            roundtrip(Pixels::I16(v), &shape);
        }
        roundtrip(Pixels::I32(vec![-5]), &[1]);
    }

    #[test]
    fn sparse_values_use_a_palette_and_common_low_bits_a_shift() {
        let mut rng = Rng(11);
        let noisy: Vec<i16> = (0..128 * 128).map(|_| (rng.next() % 40) as i16).collect();
        let comb: Vec<i16> = noisy.iter().map(|&v| v * 97 - 20000).collect();
        let shifted: Vec<i16> = noisy.iter().map(|&v| v * 16).collect();
        let plain = roundtrip(Pixels::I16(noisy), &[128, 128]);
        let comb = roundtrip(Pixels::I16(comb), &[128, 128]);
        let shifted = roundtrip(Pixels::I16(shifted), &[128, 128]);
        // The comb spans 97x the range: without a palette it would cost
        // about log2(97) = 6.6 bits more per pixel (~13 KB); with it, only
        // the palette's runs (two per used value, a byte each).
        assert!(comb <= plain + 2 * 40 + 16, "palette: {comb} vs {plain}");
        assert!(shifted <= plain + 8, "shift: {shifted} vs {plain}");
    }

    #[test]
    fn damaged_tiles_are_errors_never_other_pixels() {
        let mut rng = Rng(5);
        let v: Vec<i16> = (0..64 * 64)
            .map(|i| (1000 + (i % 64) * 3 + (rng.next() % 30) as usize) as i16)
            .collect();
        let pixels = Pixels::I16(v);
        let params = MixPred.encode_params(PixelType::I16, &EncodeOptions::default());
        let spec = TileSpec {
            shape: &[64, 64],
            pixel_type: PixelType::I16,
            params: &params,
            context: Default::default(),
        };
        let good = MixPred.encode(&pixels, &spec).unwrap();
        let be = pixels.to_be_bytes();
        for cut in 0..good.len() {
            assert!(
                MixPred.decode(&good[..cut], &spec).is_err(),
                "truncated at {cut}"
            );
            let mut out = vec![0u8; be.len()];
            assert!(
                MixPred
                    .decode_be_into(&good[..cut], &spec, &mut out)
                    .is_err(),
                "truncated at {cut}"
            );
        }
        for i in 0..good.len() {
            for bit in [0u8, 3, 7] {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                match MixPred.decode(&bad, &spec) {
                    Err(_) => {}
                    Ok(p) => assert_eq!(p, pixels, "byte {i} bit {bit} decoded to other pixels"),
                }
                let mut out = vec![0u8; be.len()];
                if MixPred.decode_be_into(&bad, &spec, &mut out).is_ok() {
                    assert_eq!(out, be, "byte {i} bit {bit} decoded to other bytes");
                }
            }
        }
    }

    #[test]
    fn missing_or_other_version_is_refused() {
        let spec_params = Params::new();
        let spec = TileSpec {
            shape: &[4],
            pixel_type: PixelType::I16,
            params: &spec_params,
            context: Default::default(),
        };
        assert!(MixPred.decode(&[1, 0], &spec).is_err());
        let p2 = Params::new().with(VERSION_KEY, ParamValue::Int(2));
        let spec = TileSpec {
            params: &p2,
            ..spec
        };
        assert!(MixPred.decode(&[1, 0], &spec).is_err());
    }
}
