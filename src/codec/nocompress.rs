//! NOCOMPRESS: tiles stored as plain big-endian pixels.
//!
//! cfitsio (and so fpack) keeps NOCOMPRESS as a diagnostic mode: it writes
//! each tile's pixels, unchanged and big-endian, into a separate heap column
//! called `UNCOMPRESSED_DATA` (TFORM `1PI`, `1PJ` or `1QE`; cfitsio itself
//! only accepts int16, int32 and float32 images) and leaves the tile's
//! `COMPRESSED_DATA` descriptor empty. The same layout, plain big-endian
//! words, is what this codec produces for every pixel type; which column the
//! bytes go to, and with which TFORM, is the tile driver's business.
//!
//! This module also holds the conversion "a run of big-endian words of some
//! width → pixels of the requested type", shared with GZIP_1/GZIP_2 (whose
//! inflated bytes are exactly this layout) and RICE_1. The invariant all of
//! them keep: integers are converted only when every value fits the
//! requested type (otherwise [`CodecError::Corrupt`]), and floating-point
//! pixels are never converted, only reinterpreted from words of their own
//! width.

use super::{Codec, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

pub struct NoCompress;

impl Codec for NoCompress {
    fn is_standard(&self) -> bool {
        true
    }

    fn id(&self) -> &'static str {
        "NOCOMPRESS"
    }

    fn short_names(&self) -> &'static [&'static str] {
        &["nocompress"]
    }

    fn description(&self) -> &'static str {
        "tiles stored uncompressed (FITS standard; for debugging)"
    }

    fn stores_uncompressed(&self) -> bool {
        true
    }

    fn supports(&self, _pixel_type: PixelType) -> bool {
        true
    }

    fn encode(&self, pixels: &Pixels, _spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        Ok(pixels.to_be_bytes())
    }

    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError> {
        let width = stored_word_width(bytes.len(), spec.len(), spec.pixel_type)?;
        pixels_from_be_words(bytes, width, spec.pixel_type)
    }
}

/// The width in bytes of the words a tile of `pixel_count` pixels was stored
/// with, inferred from the stored length the way cfitsio does for GZIP tiles:
/// it must be exactly 1, 2, 4 or 8 bytes per pixel. An empty tile is read with
/// the width of `preferred`.
pub(crate) fn stored_word_width(
    stored_len: usize,
    pixel_count: usize,
    preferred: PixelType,
) -> Result<usize, CodecError> {
    if pixel_count == 0 {
        return if stored_len == 0 {
            Ok(preferred.size())
        } else {
            Err(CodecError::Corrupt(format!(
                "{stored_len} bytes stored for an empty tile"
            )))
        };
    }
    [1, 2, 4, 8]
        .into_iter()
        .find(|&width| pixel_count.checked_mul(width) == Some(stored_len))
        .ok_or_else(|| {
            if stored_len < pixel_count {
                CodecError::Truncated
            } else {
                CodecError::Corrupt(format!(
                    "{stored_len} bytes cannot hold {pixel_count} pixels of 1, 2, 4 or 8 bytes"
                ))
            }
        })
}

/// Big-endian words of `width` bytes → pixels of `target`.
///
/// Words of 1 byte are unsigned (FITS BITPIX 8), wider words signed, as
/// cfitsio reads them. Floating-point targets accept only words of their own
/// width, reinterpreted bit for bit.
pub(crate) fn pixels_from_be_words(
    bytes: &[u8],
    width: usize,
    target: PixelType,
) -> Result<Pixels, CodecError> {
    if !bytes.len().is_multiple_of(width.max(1)) {
        return Err(CodecError::Corrupt(format!(
            "{} bytes is not a whole number of {width}-byte words",
            bytes.len()
        )));
    }
    if width == target.size() {
        return Ok(Pixels::from_be_bytes(target, bytes));
    }
    let stored = match width {
        1 => PixelType::U8,
        2 => PixelType::I16,
        4 => PixelType::I32,
        8 => PixelType::I64,
        _ => {
            return Err(CodecError::Corrupt(format!(
                "stored words of {width} bytes"
            )))
        }
    };
    if target.is_float() {
        return Err(CodecError::Corrupt(format!(
            "a {}-bit floating-point tile was stored with {width}-byte words",
            target.size() * 8
        )));
    }
    convert_integers(Pixels::from_be_bytes(stored, bytes), target)
}

/// Convert integer pixels to another integer type, failing if any value does
/// not fit. Converting to the same type is free.
pub(crate) fn convert_integers(source: Pixels, target: PixelType) -> Result<Pixels, CodecError> {
    if source.pixel_type() == target {
        return Ok(source);
    }
    let values: Vec<i64> = match &source {
        Pixels::U8(v) => v.iter().map(|&x| i64::from(x)).collect(),
        Pixels::I16(v) => v.iter().map(|&x| i64::from(x)).collect(),
        Pixels::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
        Pixels::I64(v) => v.clone(),
        Pixels::F32(_) | Pixels::F64(_) => {
            return Err(CodecError::Unsupported(
                "floating-point pixels cannot be converted to integers".into(),
            ))
        }
    };
    let source_type = source.pixel_type();
    fn narrow<T: TryFrom<i64>>(
        values: &[i64],
        source_type: PixelType,
        target: PixelType,
    ) -> Result<Vec<T>, CodecError> {
        values
            .iter()
            .map(|&x| {
                T::try_from(x).map_err(|_| {
                    CodecError::Corrupt(format!(
                        "value {x} stored as BITPIX {} does not fit BITPIX {}",
                        source_type.bitpix(),
                        target.bitpix()
                    ))
                })
            })
            .collect()
    }
    Ok(match target {
        PixelType::U8 => Pixels::U8(narrow(&values, source_type, target)?),
        PixelType::I16 => Pixels::I16(narrow(&values, source_type, target)?),
        PixelType::I32 => Pixels::I32(narrow(&values, source_type, target)?),
        PixelType::I64 => Pixels::I64(values),
        PixelType::F32 | PixelType::F64 => {
            return Err(CodecError::Unsupported(
                "integer pixels cannot be converted to floating point here".into(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Params;

    fn spec<'a>(shape: &'a [usize], pixel_type: PixelType, params: &'a Params) -> TileSpec<'a> {
        TileSpec {
            shape,
            pixel_type,
            params,
            context: Default::default(),
        }
    }

    #[test]
    fn round_trip_every_type() {
        let params = Params::new();
        let cases = [
            Pixels::U8(vec![0, 1, 255]),
            Pixels::I16(vec![i16::MIN, -1, 0, i16::MAX]),
            Pixels::I32(vec![i32::MIN, -1, 0, i32::MAX]),
            Pixels::I64(vec![i64::MIN, 0, i64::MAX]),
            Pixels::F32(vec![f32::MIN, -0.0, 1.5, f32::INFINITY]),
            Pixels::F64(vec![f64::MAX, -2.25, f64::NEG_INFINITY]),
        ];
        for pixels in cases {
            let shape = [pixels.len()];
            let s = spec(&shape, pixels.pixel_type(), &params);
            let bytes = NoCompress.encode(&pixels, &s).unwrap();
            assert_eq!(
                bytes,
                pixels.to_be_bytes(),
                "stored layout is plain big-endian"
            );
            assert_eq!(NoCompress.decode(&bytes, &s).unwrap(), pixels);
        }
    }

    #[test]
    fn narrower_and_wider_words_are_converted_with_range_checks() {
        let params = Params::new();
        let shape = [3];
        let as_i32 = spec(&shape, PixelType::I32, &params);
        let words = Pixels::I16(vec![-5, 0, 7]).to_be_bytes();
        assert_eq!(
            NoCompress.decode(&words, &as_i32).unwrap(),
            Pixels::I32(vec![-5, 0, 7])
        );
        let as_u8 = spec(&shape, PixelType::U8, &params);
        assert!(matches!(
            NoCompress.decode(&words, &as_u8),
            Err(CodecError::Corrupt(_))
        ));
        let as_f32 = spec(&shape, PixelType::F32, &params);
        assert!(NoCompress.decode(&words, &as_f32).is_err());
        let bytes = [200u8, 0, 1];
        assert_eq!(
            NoCompress.decode(&bytes, &as_i32).unwrap(),
            Pixels::I32(vec![200, 0, 1]),
            "single bytes are unsigned"
        );
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let params = Params::new();
        let shape = [4];
        let s = spec(&shape, PixelType::I16, &params);
        assert_eq!(
            NoCompress.decode(&[1, 2, 3], &s),
            Err(CodecError::Truncated)
        );
        assert!(matches!(
            NoCompress.decode(&[0; 5], &s),
            Err(CodecError::Corrupt(_))
        ));
        let empty: [usize; 1] = [0];
        let s = spec(&empty, PixelType::I16, &params);
        assert_eq!(NoCompress.decode(&[], &s).unwrap(), Pixels::I16(vec![]));
    }
}
