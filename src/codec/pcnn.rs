//! PCNN_1: an autoregressive (PixelCNN-family) neural codec on the MSB/LSB
//! split, with integer-only arithmetic so that the decoder reproduces the
//! encoder's numbers exactly on any machine ([`crate::neural::pcnn`]).
//!
//! Not a FITS-standard algorithm; files using it are read by fpack-ng, and by
//! cfitsio programs and astropy through the shim. The mapping, version 1:
//! - a tile of shape `[n1, n2, ...]` is coded as an image `n1` wide and
//!   `n2 × n3 × ...` high, in raster order;
//! - I16 pixels are coded as the unsigned values `v + 32768` (physical uint16
//!   for BZERO=32768 frames), each as its high byte then its low byte given
//!   the high byte (or, for comparison, as one 16-bit symbol); U8 pixels as
//!   one byte;
//! - ZNAME1='PCNNVER' ZVAL1=1, ZNAME2='PCNNMODL' (the model's name, for
//!   people), ZNAME3='PCNNSHA' (the SHA-256 of the model file, which decoding
//!   requires: a missing or different model is an error naming the model).

use super::{
    from_unsigned, to_unsigned, Codec, CodecContext, EncodeOptions, ModelKeys, ParamValue, Params,
    TileSpec,
};
use crate::error::CodecError;
use crate::neural::pcnn::{self, store, Mode, PcnnModel};
use crate::tile::{PixelType, Pixels};
use std::sync::Arc;

pub const MAPPING_VERSION: i64 = 1;

pub struct Pcnn;

const KEYS: ModelKeys = ModelKeys {
    codec: "PCNN_1",
    version: ("PCNNVER", MAPPING_VERSION),
    sha256: "PCNNSHA",
    name: "PCNNMODL",
};

fn model_for(spec: &TileSpec) -> Result<Arc<PcnnModel>, CodecError> {
    super::model_for(spec, &KEYS, store::find)
}

impl Codec for Pcnn {
    fn default_strip(&self) -> Option<(usize, usize)> {
        Some((
            super::jxl::JXL_DEFAULT_STRIP_ROWS,
            super::jxl::JXL_MIN_DEFAULT_TILE_PIXELS,
        ))
    }

    fn id(&self) -> &'static str {
        "PCNN_1"
    }

    fn short_names(&self) -> &'static [&'static str] {
        &["pcnn", "pixelcnn"]
    }

    fn description(&self) -> &'static str {
        "autoregressive PixelCNN-family neural codec of 8- and 16-bit images (fpack-ng)"
    }

    /// The model decides whether this HDU can be decoded here at all.
    fn describe_hdu(&self, params: &Params, _context: &CodecContext) -> String {
        let sha = params.get_text(KEYS.sha256).unwrap_or("?").trim();
        let have = store::find(sha).is_some();
        format!(
            "PCNN_1(model={},sha256={},{},coding={},device=cpu)",
            params.get_text(KEYS.name).unwrap_or("?").trim(),
            sha.get(..12).unwrap_or(sha),
            if have { "available" } else { "MISSING" },
            if params
                .get_text("PCNNCODE")
                .is_some_and(|c| c.trim() == "16")
            {
                "16bit"
            } else {
                "msb/lsb"
            },
        )
    }

    fn supports(&self, pixel_type: PixelType) -> bool {
        matches!(pixel_type, PixelType::U8 | PixelType::I16)
    }

    fn encode_params(&self, _pixel_type: PixelType, options: &EncodeOptions) -> Params {
        let m = options
            .pcnn_model
            .as_deref()
            .and_then(store::find)
            .unwrap_or_else(store::default_model);
        let mut p = Params::new()
            .with("PCNNVER", ParamValue::Int(MAPPING_VERSION))
            .with("PCNNMODL", ParamValue::Text(m.name.clone()))
            .with("PCNNSHA", ParamValue::Text(m.sha256.clone()));
        if options.pcnn_sixteen {
            p.set("PCNNCODE", ParamValue::Text("16".into()));
        }
        p
    }

    fn encode(&self, pixels: &Pixels, spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        let model = model_for(spec)?;
        let (w, h) = spec.width_height();
        let sixteen = spec
            .params
            .get_text("PCNNCODE")
            .is_some_and(|s| s.trim() == "16");
        let px = to_unsigned(pixels, "PCNN_1")?;
        let mode = match pixels {
            Pixels::U8(_) => Mode::Byte,
            _ if sixteen => Mode::Sixteen,
            _ => Mode::Split,
        };
        pcnn::encode_tile(&model, &px, w, h, mode, spec.context.pcnn_batch)
    }

    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError> {
        let model = model_for(spec)?;
        let (w, h) = spec.width_height();
        let byte = spec.pixel_type == PixelType::U8;
        if !self.supports(spec.pixel_type) {
            return Err(CodecError::Unsupported(format!(
                "PCNN_1 does not code {:?}",
                spec.pixel_type
            )));
        }
        let px = pcnn::decode_tile(&model, bytes, w, h, byte)?;
        from_unsigned(&px, spec.pixel_type, "PCNN_1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::TestRng;

    fn spec<'a>(shape: &'a [usize], pt: PixelType, params: &'a Params) -> TileSpec<'a> {
        TileSpec {
            shape,
            pixel_type: pt,
            params,
            context: Default::default(),
        }
    }

    #[test]
    fn edge_values_odd_sizes_and_both_codings_round_trip() {
        let mut rng = TestRng(11);
        for sixteen in [false, true] {
            let o = EncodeOptions {
                pcnn_sixteen: sixteen,
                ..EncodeOptions::default()
            };
            let params = Pcnn.encode_params(PixelType::I16, &o);
            for &(w, h) in &[(1usize, 1usize), (1, 9), (9, 1), (3, 5), (17, 9), (64, 33)] {
                for pattern in 0..5 {
                    let v: Vec<i16> = (0..w * h)
                        .map(|i| match pattern {
                            0 => i16::MIN,
                            1 => i16::MAX,
                            2 => {
                                if i % 2 == 0 {
                                    i16::MIN
                                } else {
                                    i16::MAX
                                }
                            }
                            3 => rng.noise(-31000.0, 30.0) as i16,
                            _ => rng.range(-32768, 32767) as i16,
                        })
                        .collect();
                    let px = Pixels::I16(v);
                    let shape = [w, h];
                    let s = spec(&shape, PixelType::I16, &params);
                    let bytes = Pcnn.encode(&px, &s).unwrap();
                    let back = Pcnn.decode(&bytes, &s).unwrap();
                    assert!(
                        back.bits_eq(&px),
                        "{w}x{h} pattern {pattern} sixteen {sixteen}"
                    );
                }
            }
        }
    }

    #[test]
    fn u8_tiles_round_trip() {
        let params = Pcnn.encode_params(PixelType::U8, &EncodeOptions::default());
        let mut rng = TestRng(5);
        let px = Pixels::U8((0..40 * 24).map(|_| rng.range(0, 255) as u8).collect());
        let shape = [40, 24];
        let s = spec(&shape, PixelType::U8, &params);
        let back = Pcnn.decode(&Pcnn.encode(&px, &s).unwrap(), &s).unwrap();
        assert!(back.bits_eq(&px));
    }

    #[test]
    fn damaged_tiles_and_unknown_models_are_errors() {
        let params = Pcnn.encode_params(PixelType::I16, &EncodeOptions::default());
        let mut rng = TestRng(9);
        let px = Pixels::I16(
            (0..64 * 32)
                .map(|_| rng.noise(1000.0, 20.0) as i16)
                .collect(),
        );
        let shape = [64, 32];
        let s = spec(&shape, PixelType::I16, &params);
        let bytes = Pcnn.encode(&px, &s).unwrap();
        // Words after the last pixel: an error, not a silent success (one
        // word can fall in the range coder's lookahead; two cannot).
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]);
        assert!(Pcnn.decode(&longer, &s).is_err(), "trailing word accepted");
        for cut in [
            0,
            3,
            7,
            8,
            bytes.len() / 2,
            bytes.len() - 4,
            bytes.len() - 1,
        ] {
            assert!(
                Pcnn.decode(&bytes[..cut], &s).is_err(),
                "truncated at {cut}"
            );
        }
        // A flipped byte must give an error or, where it only touched the
        // range coder's final slack bits, the exact pixels: never others.
        let mut errors = 0;
        for i in (0..bytes.len()).step_by(5) {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            match Pcnn.decode(&b, &s) {
                Err(_) => errors += 1,
                Ok(back) => assert!(
                    back.bits_eq(&px),
                    "flipped byte {i} decoded to other pixels"
                ),
            }
        }
        assert!(
            errors * 10 > bytes.len() / 5 * 9,
            "only {errors} flips detected"
        );
        let other = params
            .clone()
            .with("PCNNSHA", ParamValue::Text("00".repeat(32)));
        let err = Pcnn
            .decode(&bytes, &spec(&shape, PixelType::I16, &other))
            .unwrap_err();
        assert!(matches!(err, CodecError::ModelUnavailable { .. }), "{err}");
        assert!(err
            .to_string()
            .contains(store::default_model().name.as_str()));
    }
}
