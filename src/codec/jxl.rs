//! JXL_1: each tile is a lossless, single-channel JPEG-XL codestream.
//!
//! Not a FITS-standard algorithm: files using it are read only by fpack-ng
//! (and by anything that implements the mapping below). JPEG-XL's modular
//! mode (adaptive predictors, context trees learnt per image) typically
//! beats RICE_1 on smooth astronomical frames by a wide margin; the cost is
//! encoding speed, set by the effort.
//!
//! The mapping, version 1 (ZNAME1='JXLVER', ZVAL1=1):
//! - a tile of shape `[n1, n2, ...]` (fastest axis first) is coded as a
//!   greyscale image `n1` wide and `n2 × n3 × ...` high, in raster order;
//! - U8 pixels are coded as 8-bit samples unchanged (ZNAME2='OFFSET' = 0);
//! - I16 pixels are coded as 16-bit unsigned samples `v + 32768` (the sign
//!   bit flipped), OFFSET = 32768, so that a BZERO=32768 uint16 frame is
//!   coded as its physical values, the numbers JPEG-XL's predictors expect;
//! - the codestream is bare (no ISO-BMFF container), colour space linear grey;
//! - ZNAME3='EFFORT' records the libjxl effort (1..=10) used; decoders
//!   ignore it.
//!
//! Other pixel types are not supported (JPEG-XL's integer samples stop at 16
//! bits for exact round trips in common decoders); the tile driver falls
//! back to a standard codec for them.
//!
//! Encoding uses libjxl (C++, through the `libjxl-enc` crate); decoding uses
//! jxl-oxide (pure Rust), so reading needs no C++ at all. Decoding keeps the
//! codec contract for any input: the codestream's header must describe
//! exactly this tile (width, height, grey, bit depth, no extra channels,
//! identity orientation) before any pixel buffer is allocated; jxl-oxide's
//! allocations are capped by an allocation tracker sized from the tile; any
//! decoder error, and as a last resort a decoder panic, becomes a
//! [`CodecError`].

/// Default JXL_1 tiles: full-width strips of this many rows...
pub const JXL_DEFAULT_STRIP_ROWS: usize = 256;
/// ...but at least this many pixels; see docs/jxl.md for the measurements.
pub const JXL_MIN_DEFAULT_TILE_PIXELS: usize = 1 << 18;

use super::{Codec, EncodeOptions, ParamValue, Params, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

use jxl_oxide::image::BitDepth;
use jxl_oxide::{AllocTracker, InitializeResult, JxlImage, JxlThreadPool};
use libjxl_enc::GrayPixels;

/// The version of the tile-to-codestream mapping described above.
pub const MAPPING_VERSION: i64 = 1;

/// libjxl's own default effort.
pub const DEFAULT_EFFORT: u32 = 7;

/// What I16 values are shifted by to become unsigned 16-bit samples.
const I16_OFFSET: i64 = 32768;

pub struct Jxl;

impl Codec for Jxl {
    fn default_strip(&self) -> Option<(usize, usize)> {
        Some((
            super::jxl::JXL_DEFAULT_STRIP_ROWS,
            super::jxl::JXL_MIN_DEFAULT_TILE_PIXELS,
        ))
    }

    fn id(&self) -> &'static str {
        "JXL_1"
    }

    fn short_names(&self) -> &'static [&'static str] {
        &["jxl", "jpegxl"]
    }

    fn description(&self) -> &'static str {
        "JPEG-XL lossless of 8- and 16-bit images (fpack-ng)"
    }

    fn supports(&self, pixel_type: PixelType) -> bool {
        matches!(pixel_type, PixelType::U8 | PixelType::I16)
    }

    fn encode_params(&self, pixel_type: PixelType, options: &EncodeOptions) -> Params {
        Params::new()
            .with("JXLVER", ParamValue::Int(MAPPING_VERSION))
            .with("OFFSET", ParamValue::Int(offset_for(pixel_type)))
            .with("EFFORT", ParamValue::Int(i64::from(options.jxl_effort)))
    }

    fn encode(&self, pixels: &Pixels, spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        check_version(spec.params)?;
        check_offset(spec)?;
        let effort = match spec.params.get("EFFORT") {
            None => DEFAULT_EFFORT,
            Some(_) => match spec.params.get_int("EFFORT") {
                Some(e @ 1..=10) => e as u32,
                _ => {
                    return Err(CodecError::BadParameter(format!(
                        "JXL_1 EFFORT must be an integer 1..=10, got {:?}",
                        spec.params.get("EFFORT")
                    )))
                }
            },
        };
        let (width, height) = raster_size(spec)?;
        let result = match pixels {
            Pixels::U8(v) => {
                libjxl_enc::encode_gray_lossless(GrayPixels::U8(v), width, height, effort)
            }
            Pixels::I16(v) => {
                let shifted: Vec<u16> = v.iter().map(|&x| (x as u16) ^ 0x8000).collect();
                libjxl_enc::encode_gray_lossless(GrayPixels::U16(&shifted), width, height, effort)
            }
            other => return Err(unsupported(other.pixel_type())),
        };
        result.map_err(|e| match e {
            libjxl_enc::Error::BadDimensions { .. } => CodecError::Unsupported(e.to_string()),
            _ => CodecError::Corrupt(format!("JPEG-XL encoding failed: {e}")),
        })
    }

    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError> {
        check_version(spec.params)?;
        check_offset(spec)?;
        if !self.supports(spec.pixel_type) {
            return Err(unsupported(spec.pixel_type));
        }
        let (width, height) = raster_size(spec)?;
        // jxl-oxide is well fuzzed, but the codec contract is "never panic";
        // a panic inside it is reported as a corrupt tile instead of taking
        // the whole file (and the other tiles' threads) down.
        let pixel_type = spec.pixel_type;
        std::panic::catch_unwind(|| decode_codestream(bytes, pixel_type, width, height))
            .unwrap_or_else(|_| Err(CodecError::Corrupt("JPEG-XL decoder panicked".into())))
    }
}

fn offset_for(pixel_type: PixelType) -> i64 {
    if pixel_type == PixelType::I16 {
        I16_OFFSET
    } else {
        0
    }
}

fn unsupported(pixel_type: PixelType) -> CodecError {
    CodecError::Unsupported(format!(
        "JXL_1 codes 8-bit and 16-bit integer tiles only, not BITPIX={}",
        pixel_type.bitpix()
    ))
}

fn check_version(params: &Params) -> Result<(), CodecError> {
    match params.get_int("JXLVER") {
        Some(MAPPING_VERSION) => Ok(()),
        Some(v) => Err(CodecError::BadParameter(format!(
            "JXL_1 mapping version JXLVER={v} is not supported (this build reads version {MAPPING_VERSION})"
        ))),
        None => Err(CodecError::BadParameter(
            "JXL_1 needs the JXLVER parameter (ZNAMEn='JXLVER'), which is missing or not an integer".into(),
        )),
    }
}

/// The OFFSET parameter is implied by the pixel type; a different value
/// means a mapping this build does not implement, so it is refused rather
/// than silently ignored. An absent OFFSET means the implied one.
fn check_offset(spec: &TileSpec) -> Result<(), CodecError> {
    let expected = offset_for(spec.pixel_type);
    match spec.params.get("OFFSET") {
        None => Ok(()),
        Some(_) if spec.params.get_int("OFFSET") == Some(expected) => Ok(()),
        Some(v) => Err(CodecError::BadParameter(format!(
            "JXL_1 OFFSET must be {expected} for BITPIX={}, got {v:?}",
            spec.pixel_type.bitpix()
        ))),
    }
}

/// Width and height of the 2-D image a tile is coded as.
fn raster_size(spec: &TileSpec) -> Result<(usize, usize), CodecError> {
    let width = spec.shape.first().copied().unwrap_or(1);
    let height = spec.shape.iter().skip(1).product::<usize>();
    if width == 0 || height == 0 {
        return Err(CodecError::Unsupported(
            "JXL_1 cannot code an empty tile".into(),
        ));
    }
    if width > libjxl_enc::MAX_SIDE || height > libjxl_enc::MAX_SIDE {
        return Err(CodecError::Unsupported(format!(
            "JXL_1 tile {width}×{height} exceeds JPEG-XL's largest side, {}",
            libjxl_enc::MAX_SIDE
        )));
    }
    Ok((width, height))
}

fn corrupt(e: impl std::fmt::Display) -> CodecError {
    CodecError::Corrupt(format!("JPEG-XL: {e}"))
}

fn decode_codestream(
    bytes: &[u8],
    pixel_type: PixelType,
    width: usize,
    height: usize,
) -> Result<Pixels, CodecError> {
    let pixels = width * height;
    // Room for jxl-oxide's working buffers: a few 32-bit planes of the tile
    // plus the per-group scratch it allocates; anything beyond is refused.
    let tracker = AllocTracker::with_limit(pixels.saturating_mul(64).saturating_add(64 << 20));
    let mut uninit = JxlImage::builder()
        .pool(JxlThreadPool::none())
        .alloc_tracker(tracker)
        .build_uninit();
    uninit.feed_bytes(bytes).map_err(corrupt)?;
    let mut image = match uninit.try_init().map_err(corrupt)? {
        InitializeResult::Initialized(image) => image,
        InitializeResult::NeedMoreData(_) => return Err(CodecError::Truncated),
    };

    let header = image.image_header();
    let bits = if pixel_type == PixelType::U8 { 8 } else { 16 };
    let metadata = &header.metadata;
    let (coded_width, coded_height) = (header.size.width as usize, header.size.height as usize);
    if (coded_width, coded_height) != (width, height) {
        return Err(CodecError::Corrupt(format!(
            "JPEG-XL codestream is {coded_width}×{coded_height}, the tile is {width}×{height}"
        )));
    }
    if !metadata.grayscale()
        || !metadata.ec_info.is_empty()
        || metadata.orientation != 1
        || metadata.animation.is_some()
        || !matches!(metadata.bit_depth, BitDepth::IntegerSample { bits_per_sample } if bits_per_sample == bits)
    {
        return Err(CodecError::Corrupt(format!(
            "JPEG-XL codestream is not a {bits}-bit single-channel greyscale image \
             (grey: {}, extra channels: {}, orientation: {}, bit depth: {:?})",
            metadata.grayscale(),
            metadata.ec_info.len(),
            metadata.orientation,
            metadata.bit_depth
        )));
    }

    image.finalize().map_err(corrupt)?;
    if image.num_loaded_keyframes() == 0 {
        return Err(CodecError::Truncated);
    }
    let render = image.render_frame(0).map_err(corrupt)?;
    let mut stream = render.stream();
    if (
        stream.width() as usize,
        stream.height() as usize,
        stream.channels(),
    ) != (width, height, 1)
    {
        return Err(CodecError::Corrupt(format!(
            "JPEG-XL frame renders as {}×{}×{}, the tile is {width}×{height}×1",
            stream.width(),
            stream.height(),
            stream.channels()
        )));
    }
    match pixel_type {
        PixelType::U8 => {
            let mut out = vec![0u8; pixels];
            if stream.write_to_buffer(&mut out) != pixels {
                return Err(CodecError::Truncated);
            }
            Ok(Pixels::U8(out))
        }
        _ => {
            let mut samples = vec![0u16; pixels];
            if stream.write_to_buffer(&mut samples) != pixels {
                return Err(CodecError::Truncated);
            }
            Ok(Pixels::I16(
                samples.into_iter().map(|s| (s ^ 0x8000) as i16).collect(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::TestRng;

    fn params_for(pixel_type: PixelType, effort: u32) -> Params {
        let options = EncodeOptions {
            jxl_effort: effort,
            ..EncodeOptions::default()
        };
        Jxl.encode_params(pixel_type, &options)
    }

    fn round_trip(pixels: Pixels, shape: &[usize], effort: u32) -> Vec<u8> {
        let params = params_for(pixels.pixel_type(), effort);
        let spec = TileSpec {
            shape,
            pixel_type: pixels.pixel_type(),
            params: &params,
            context: Default::default(),
        };
        let bytes = Jxl.encode(&pixels, &spec).unwrap();
        let back = Jxl.decode(&bytes, &spec).unwrap();
        assert_eq!(back, pixels, "shape {shape:?}");
        bytes
    }

    fn smooth_i16(width: usize, height: usize, rng: &mut TestRng) -> Vec<i16> {
        (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f64, (i / width) as f64);
                let level = 1000.0 + 300.0 * (x / 7.0).sin() + 200.0 * (y / 5.0).cos();
                rng.noise(level, 3.0).round().clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    #[test]
    fn params_and_support() {
        assert!(Jxl.supports(PixelType::U8));
        assert!(Jxl.supports(PixelType::I16));
        for t in [
            PixelType::I32,
            PixelType::I64,
            PixelType::F32,
            PixelType::F64,
        ] {
            assert!(!Jxl.supports(t));
        }
        let p = params_for(PixelType::I16, 9);
        assert_eq!(p.get_int("JXLVER"), Some(1));
        assert_eq!(p.get_int("OFFSET"), Some(32768));
        assert_eq!(p.get_int("EFFORT"), Some(9));
        assert_eq!(params_for(PixelType::U8, 7).get_int("OFFSET"), Some(0));
        assert_eq!(super::super::find("jxl_1").map(|c| c.id()), Some("JXL_1"));
    }

    #[test]
    fn edge_values_round_trip() {
        round_trip(
            Pixels::U8(vec![0, 255, 0, 255, 128, 1, 254, 0, 255]),
            &[3, 3],
            7,
        );
        round_trip(
            Pixels::I16(vec![-32768, 32767, 0, -1, 1, -32768, 32767, 0, 12345]),
            &[9],
            7,
        );
        round_trip(Pixels::I16(vec![-32768; 16]), &[4, 4], 7);
        round_trip(Pixels::I16(vec![32767; 16]), &[4, 4], 7);
        round_trip(Pixels::U8(vec![255; 16]), &[16, 1], 7);
    }

    #[test]
    fn odd_shapes_round_trip() {
        let mut rng = TestRng(7);
        for shape in [
            vec![1usize],
            vec![1, 1],
            vec![1, 37],
            vec![37, 1],
            vec![37],
            vec![3, 5],
            vec![5, 3, 2],
            vec![2, 1, 3, 4],
        ] {
            let n: usize = shape.iter().product();
            let v16: Vec<i16> = (0..n).map(|_| rng.range(-32768, 32767) as i16).collect();
            round_trip(Pixels::I16(v16), &shape, 7);
            let v8: Vec<u8> = (0..n).map(|_| rng.range(0, 255) as u8).collect();
            round_trip(Pixels::U8(v8), &shape, 7);
        }
    }

    #[test]
    fn random_and_smooth_data_round_trip_at_several_efforts() {
        let mut rng = TestRng(42);
        let random16: Vec<i16> = (0..300 * 70)
            .map(|_| rng.range(-32768, 32767) as i16)
            .collect();
        let random8: Vec<u8> = (0..129 * 65).map(|_| rng.range(0, 255) as u8).collect();
        let smooth = smooth_i16(300, 200, &mut rng);
        for effort in [1, 3, 7] {
            round_trip(Pixels::I16(random16.clone()), &[300, 70], effort);
            round_trip(Pixels::U8(random8.clone()), &[129, 65], effort);
            let bytes = round_trip(Pixels::I16(smooth.clone()), &[300, 200], effort);
            // Smooth data with small noise should compress well below 16 bits.
            assert!(
                bytes.len() < 300 * 200,
                "effort {effort}: {} bytes",
                bytes.len()
            );
        }
    }

    #[test]
    fn missing_effort_defaults_and_bad_effort_is_refused() {
        let mut params = params_for(PixelType::U8, 7);
        params.0.retain(|(n, _)| n != "EFFORT");
        let pixels = Pixels::U8(vec![1, 2, 3, 4]);
        let spec = TileSpec {
            shape: &[2, 2],
            pixel_type: PixelType::U8,
            params: &params,
            context: Default::default(),
        };
        assert!(Jxl.encode(&pixels, &spec).is_ok());
        params.set("EFFORT", ParamValue::Int(11));
        let spec = TileSpec {
            shape: &[2, 2],
            pixel_type: PixelType::U8,
            params: &params,
            context: Default::default(),
        };
        assert!(matches!(
            Jxl.encode(&pixels, &spec),
            Err(CodecError::BadParameter(_))
        ));
    }

    #[test]
    fn wrong_mapping_version_or_offset_is_refused() {
        let pixels = Pixels::I16(vec![1, -2, 3, -4, 5, -6]);
        let params = params_for(PixelType::I16, 7);
        let spec = TileSpec {
            shape: &[3, 2],
            pixel_type: PixelType::I16,
            params: &params,
            context: Default::default(),
        };
        let bytes = Jxl.encode(&pixels, &spec).unwrap();

        for bad in [
            params.clone().with("JXLVER", ParamValue::Int(2)),
            Params(
                params
                    .0
                    .iter()
                    .filter(|(n, _)| n != "JXLVER")
                    .cloned()
                    .collect(),
            ),
            params.clone().with("OFFSET", ParamValue::Int(0)),
        ] {
            let spec = TileSpec {
                shape: &[3, 2],
                pixel_type: PixelType::I16,
                params: &bad,
                context: Default::default(),
            };
            let err = Jxl.decode(&bytes, &spec).unwrap_err();
            assert!(matches!(err, CodecError::BadParameter(_)), "{err}");
            assert!(matches!(
                Jxl.encode(&pixels, &spec),
                Err(CodecError::BadParameter(_))
            ));
        }
        let v2 = params.clone().with("JXLVER", ParamValue::Int(2));
        let spec = TileSpec {
            shape: &[3, 2],
            pixel_type: PixelType::I16,
            params: &v2,
            context: Default::default(),
        };
        assert!(Jxl
            .decode(&bytes, &spec)
            .unwrap_err()
            .to_string()
            .contains("JXLVER=2"));
    }

    #[test]
    fn dimension_and_type_mismatches_are_refused() {
        let pixels = Pixels::I16((0..12).collect());
        let params = params_for(PixelType::I16, 7);
        let spec = TileSpec {
            shape: &[4, 3],
            pixel_type: PixelType::I16,
            params: &params,
            context: Default::default(),
        };
        let bytes = Jxl.encode(&pixels, &spec).unwrap();
        for shape in [&[3usize, 4][..], &[12], &[4, 4], &[4, 3, 2], &[2, 3]] {
            let spec = TileSpec {
                shape,
                pixel_type: PixelType::I16,
                params: &params,
                context: Default::default(),
            };
            assert!(
                matches!(Jxl.decode(&bytes, &spec), Err(CodecError::Corrupt(_))),
                "{shape:?}"
            );
        }
        // A 16-bit codestream is not an 8-bit tile.
        let params8 = params_for(PixelType::U8, 7);
        let spec = TileSpec {
            shape: &[4, 3],
            pixel_type: PixelType::U8,
            params: &params8,
            context: Default::default(),
        };
        assert!(matches!(
            Jxl.decode(&bytes, &spec),
            Err(CodecError::Corrupt(_))
        ));
        // Unsupported types are refused, not mis-decoded.
        let params32 = params_for(PixelType::I32, 7);
        let spec = TileSpec {
            shape: &[4, 3],
            pixel_type: PixelType::I32,
            params: &params32,
            context: Default::default(),
        };
        assert!(matches!(
            Jxl.decode(&bytes, &spec),
            Err(CodecError::Unsupported(_))
        ));
        assert!(matches!(
            Jxl.encode(&Pixels::I32(vec![0; 12]), &spec),
            Err(CodecError::Unsupported(_))
        ));
    }

    #[test]
    fn garbage_and_empty_input_are_errors() {
        let params = params_for(PixelType::U8, 7);
        let spec = TileSpec {
            shape: &[4, 4],
            pixel_type: PixelType::U8,
            params: &params,
            context: Default::default(),
        };
        assert!(Jxl.decode(&[], &spec).is_err());
        assert!(Jxl.decode(&[0xff], &spec).is_err());
        assert!(Jxl.decode(b"not a jpeg-xl stream at all", &spec).is_err());
        assert!(Jxl.decode(&[0xff, 0x0a], &spec).is_err());
    }

    /// Every prefix of a small tile's codestream, and many random bit flips,
    /// must give an error or a tile of the right size: never a panic, never
    /// a wrong-sized tile.
    #[test]
    fn damaged_streams_never_panic() {
        let mut rng = TestRng(99);
        let smooth = smooth_i16(23, 17, &mut rng);
        let params = params_for(PixelType::I16, 7);
        let spec = TileSpec {
            shape: &[23, 17],
            pixel_type: PixelType::I16,
            params: &params,
            context: Default::default(),
        };
        let bytes = Jxl.encode(&Pixels::I16(smooth), &spec).unwrap();

        let (mut accepted, mut refused) = (0, 0);
        let mut check = |damaged: &[u8]| match Jxl.decode(damaged, &spec) {
            Ok(p) => {
                assert_eq!(p.len(), spec.len());
                accepted += 1;
            }
            Err(_) => refused += 1,
        };
        for end in 0..bytes.len() {
            check(&bytes[..end]);
        }
        for _ in 0..2000 {
            let mut damaged = bytes.clone();
            for _ in 0..rng.range(1, 3) {
                let bit = rng.range(0, (damaged.len() * 8 - 1) as i64) as usize;
                damaged[bit / 8] ^= 1 << (bit % 8);
            }
            check(&damaged);
        }
        // Both outcomes occur: the decoder is exercised, not just refusing.
        assert!(
            refused > bytes.len(),
            "accepted {accepted}, refused {refused}"
        );
        assert!(accepted > 0, "accepted {accepted}, refused {refused}");

        let mut rng8 = TestRng(5);
        let v8: Vec<u8> = (0..15 * 9).map(|_| rng8.range(0, 40) as u8).collect();
        let params8 = params_for(PixelType::U8, 7);
        let spec8 = TileSpec {
            shape: &[15, 9],
            pixel_type: PixelType::U8,
            params: &params8,
            context: Default::default(),
        };
        let bytes8 = Jxl.encode(&Pixels::U8(v8), &spec8).unwrap();
        for end in 0..bytes8.len() {
            if let Ok(p) = Jxl.decode(&bytes8[..end], &spec8) {
                assert_eq!(p.len(), spec8.len());
            }
        }
    }

    #[test]
    fn truncated_stream_is_not_mistaken_for_a_tile() {
        let mut rng = TestRng(3);
        let v: Vec<i16> = (0..64 * 64)
            .map(|_| rng.range(-2000, 2000) as i16)
            .collect();
        let params = params_for(PixelType::I16, 7);
        let spec = TileSpec {
            shape: &[64, 64],
            pixel_type: PixelType::I16,
            params: &params,
            context: Default::default(),
        };
        let bytes = Jxl.encode(&Pixels::I16(v), &spec).unwrap();
        assert!(Jxl.decode(&bytes[..bytes.len() / 2], &spec).is_err());
        assert!(Jxl.decode(&bytes[..bytes.len() - 1], &spec).is_err());
    }

    /// The tile driver encodes tiles on rayon's threads: each call owns its
    /// libjxl encoder, so concurrent calls must give exactly the bytes a
    /// serial call gives.
    #[test]
    fn parallel_encoding_matches_serial() {
        use rayon::prelude::*;
        let mut rng = TestRng(11);
        let tiles: Vec<Vec<i16>> = (0..16).map(|_| smooth_i16(64, 32, &mut rng)).collect();
        let params = params_for(PixelType::I16, 3);
        let spec = TileSpec {
            shape: &[64, 32],
            pixel_type: PixelType::I16,
            params: &params,
            context: Default::default(),
        };
        let encode = |t: &Vec<i16>| Jxl.encode(&Pixels::I16(t.clone()), &spec).unwrap();
        let serial: Vec<Vec<u8>> = tiles.iter().map(encode).collect();
        let parallel: Vec<Vec<u8>> = tiles.par_iter().map(encode).collect();
        assert_eq!(serial, parallel);
        let decoded: Vec<Pixels> = parallel
            .par_iter()
            .map(|b| Jxl.decode(b, &spec).unwrap())
            .collect();
        for (d, t) in decoded.into_iter().zip(tiles) {
            assert_eq!(d, Pixels::I16(t));
        }
    }
}
