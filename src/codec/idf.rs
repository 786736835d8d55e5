//! IDF_1: integer discrete flow (Hoogeboom et al. 2019, as adapted by the
//! AstroCompress paper) with an integer-only network, so that the decoder
//! reproduces the encoder's numbers exactly on any machine.
//!
//! Not a FITS-standard algorithm; files using it are read by fpack-ng, and by
//! cfitsio programs and astropy through the shim. The mapping, version 1:
//! - a tile of shape `[n1, n2, ...]` is coded as an image `n1` wide and
//!   `n2 × n3 × ...` high;
//! - I16 pixels are coded as the unsigned values `v + 32768` (so BZERO=32768
//!   frames are coded as their physical uint16 values); U8 pixels as they are;
//! - ZNAME1='IDFVER' ZVAL1=1, ZNAME2='IDFMODEL' (the model's name, for
//!   people), ZNAME3='IDFSHA' (the SHA-256 of the model file, which decoding
//!   requires: a missing or different model is an error naming the model);
//! - the tile stream is described in [`crate::neural::flow`].

use super::{
    from_unsigned, to_unsigned, Codec, CodecContext, EncodeOptions, ModelKeys, ParamValue, Params,
    TileSpec,
};
use crate::error::CodecError;
use crate::neural::{flow, store, Model};
use crate::tile::{PixelType, Pixels};
use std::sync::Arc;

pub const MAPPING_VERSION: i64 = 1;

pub struct Idf;

const KEYS: ModelKeys = ModelKeys {
    codec: "IDF_1",
    version: ("IDFVER", MAPPING_VERSION),
    sha256: "IDFSHA",
    name: "IDFMODEL",
};

fn model_for(spec: &TileSpec) -> Result<Arc<Model>, CodecError> {
    super::model_for(spec, &KEYS, store::find)
}

impl Codec for Idf {
    fn default_strip(&self) -> Option<(usize, usize)> {
        Some((
            super::jxl::JXL_DEFAULT_STRIP_ROWS,
            super::jxl::JXL_MIN_DEFAULT_TILE_PIXELS,
        ))
    }

    fn id(&self) -> &'static str {
        "IDF_1"
    }

    fn short_names(&self) -> &'static [&'static str] {
        &["idf"]
    }

    fn description(&self) -> &'static str {
        "integer discrete flow, neural, of 8- and 16-bit images (fpack-ng)"
    }

    /// The model decides whether this HDU can be decoded here at all; the
    /// device, how fast.
    fn describe_hdu(&self, params: &Params, context: &CodecContext) -> String {
        let sha = params.get_text(KEYS.sha256).unwrap_or("?").trim();
        let have = store::find(sha).is_some();
        format!(
            "IDF_1(model={},sha256={},{},device={})",
            params.get_text(KEYS.name).unwrap_or("?").trim(),
            sha.get(..12).unwrap_or(sha),
            if have { "available" } else { "MISSING" },
            context.engine.name()
        )
    }

    fn supports(&self, pixel_type: PixelType) -> bool {
        matches!(pixel_type, PixelType::U8 | PixelType::I16)
    }

    fn encode_params(&self, _pixel_type: PixelType, options: &EncodeOptions) -> Params {
        let m = options
            .idf_model
            .as_deref()
            .and_then(store::find)
            .unwrap_or_else(store::default_model);
        Params::new()
            .with("IDFVER", ParamValue::Int(MAPPING_VERSION))
            .with("IDFMODEL", ParamValue::Text(m.name.clone()))
            .with("IDFSHA", ParamValue::Text(m.sha256.clone()))
    }

    fn encode(&self, pixels: &Pixels, spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        let model = model_for(spec)?;
        let (w, h) = spec.width_height();
        let px = to_unsigned(pixels, "IDF_1")?;
        flow::encode_tile(&model, spec.context.engine, &px, w, h)
    }

    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError> {
        let model = model_for(spec)?;
        let (w, h) = spec.width_height();
        let px = flow::decode_tile(&model, spec.context.engine, bytes, w, h)?;
        from_unsigned(&px, spec.pixel_type, "IDF_1")
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
    fn edge_values_and_odd_sizes_round_trip() {
        let params = Idf.encode_params(PixelType::I16, &EncodeOptions::default());
        let mut rng = TestRng(11);
        for &(w, h) in &[(1usize, 1usize), (3, 5), (17, 9), (64, 33), (100, 7)] {
            for pattern in 0..4 {
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
                        _ => rng.range(-32768, 32767) as i16,
                    })
                    .collect();
                let px = Pixels::I16(v);
                let shape = [w, h];
                let s = spec(&shape, PixelType::I16, &params);
                let bytes = Idf.encode(&px, &s).unwrap();
                let back = Idf.decode(&bytes, &s).unwrap();
                assert!(back.bits_eq(&px), "{w}x{h} pattern {pattern}");
            }
        }
    }

    #[test]
    fn u8_tiles_round_trip() {
        let params = Idf.encode_params(PixelType::U8, &EncodeOptions::default());
        let mut rng = TestRng(5);
        let px = Pixels::U8((0..40 * 24).map(|_| rng.range(0, 255) as u8).collect());
        let shape = [40, 24];
        let s = spec(&shape, PixelType::U8, &params);
        let back = Idf.decode(&Idf.encode(&px, &s).unwrap(), &s).unwrap();
        assert!(back.bits_eq(&px));
    }

    #[test]
    fn damaged_tiles_and_unknown_models_are_errors() {
        let params = Idf.encode_params(PixelType::I16, &EncodeOptions::default());
        let mut rng = TestRng(9);
        let px = Pixels::I16(
            (0..64 * 32)
                .map(|_| rng.noise(1000.0, 20.0) as i16)
                .collect(),
        );
        let shape = [64, 32];
        let s = spec(&shape, PixelType::I16, &params);
        let bytes = Idf.encode(&px, &s).unwrap();
        // Words after the last pixel: an error, not a silent success (one
        // word can fall in the range coder's lookahead; two cannot).
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]);
        assert!(Idf.decode(&longer, &s).is_err(), "trailing word accepted");
        for cut in [0, 3, 5, bytes.len() / 2, bytes.len() - 1] {
            assert!(Idf.decode(&bytes[..cut], &s).is_err(), "truncated at {cut}");
        }
        for i in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            assert!(
                Idf.decode(&b, &s).is_err(),
                "flipped byte {i} decoded silently"
            );
        }
        let other = params
            .clone()
            .with("IDFSHA", ParamValue::Text("00".repeat(32)));
        let err = Idf
            .decode(&bytes, &spec(&shape, PixelType::I16, &other))
            .unwrap_err();
        assert!(matches!(err, CodecError::ModelUnavailable { .. }), "{err}");
        assert!(err
            .to_string()
            .contains(store::default_model().name.as_str()));
    }
}
