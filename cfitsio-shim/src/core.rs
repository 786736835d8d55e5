//! The safe core behind both doors of this library (the C API and the
//! cfitsio interposer): find a codec by ZCMPTYPE and code one tile, with
//! every argument checked before any work, and every failure a [`ShimError`]
//! that maps to one stable C error code.
//!
//! Nothing here knows about raw pointers: the FFI modules turn C arguments
//! into slices first. Codecs come only from `fpackng::codec::REGISTRY`, so a
//! codec registered there is reachable through the C API, the interposer and
//! the Python package without any change here.
#![forbid(unsafe_code)]

use fpackng::codec::{self, Codec, EncodeOptions, Params, TileSpec};
use fpackng::tile::{PixelType, Pixels};
use fpackng::{CodecError, Limits};

/// Algorithms Debian's libcfitsio 4.2 decodes itself that this library's
/// registry does not have (it predates FITS 4.0's list).
const CFITSIO_ONLY: &[&str] = &["BZIP2_1"];

/// Whether libcfitsio decodes this ZCMPTYPE without help: the FITS-standard
/// codecs of the registry ([`Codec::is_standard`], aliases such as RICE_ONE
/// included) and the few cfitsio knows beyond them.
pub fn is_cfitsio_native(zcmptype: &str) -> bool {
    let name = zcmptype.trim();
    codec::find(name).is_some_and(|c| c.is_standard())
        || CFITSIO_ONLY.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The codecs only this library (not cfitsio) knows, in registry order.
pub fn new_codecs() -> impl Iterator<Item = &'static dyn Codec> {
    codec::REGISTRY
        .iter()
        .copied()
        .filter(|c| !is_cfitsio_native(c.id()))
}

/// Why a call failed. Each variant is one C error code (see `code`).
#[derive(Debug, Clone, PartialEq)]
pub enum ShimError {
    NullPointer(&'static str),
    BadArgument(String),
    UnknownCodec(String),
    Unsupported(String),
    BufferSize {
        needed: usize,
        given: usize,
    },
    Corrupt(String),
    BadParameter(String),
    Limit(String),
    Internal(String),
    StructVersion(String),
    /// Reading or writing a file failed (the C API's file functions).
    Io(String),
    /// A written file did not read back as the source: nothing was replaced.
    Verification(String),
}

impl ShimError {
    /// The C error code (`FPNG_ERR_*` in fpackng_shim.h).
    pub fn code(&self) -> i32 {
        match self {
            ShimError::NullPointer(_) => -1,
            ShimError::BadArgument(_) => -2,
            ShimError::UnknownCodec(_) => -3,
            ShimError::Unsupported(_) => -4,
            ShimError::BufferSize { .. } => -5,
            ShimError::Corrupt(_) => -6,
            ShimError::BadParameter(_) => -7,
            ShimError::Limit(_) => -8,
            ShimError::Internal(_) => -9,
            ShimError::StructVersion(_) => -10,
            ShimError::Io(_) => -11,
            ShimError::Verification(_) => -12,
        }
    }
}

impl std::fmt::Display for ShimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShimError::NullPointer(what) => write!(f, "null pointer passed for {what}"),
            ShimError::BadArgument(m) => write!(f, "bad argument: {m}"),
            ShimError::UnknownCodec(name) => write!(
                f,
                "unknown compression type '{name}' (this build knows: {})",
                codec::REGISTRY
                    .iter()
                    .map(|c| c.id())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ShimError::Unsupported(m) => write!(f, "unsupported: {m}"),
            ShimError::BufferSize { needed, given } => write!(
                f,
                "buffer of {given} bytes given where {needed} bytes are needed"
            ),
            ShimError::Corrupt(m) => write!(f, "corrupt tile: {m}"),
            ShimError::BadParameter(m) => write!(f, "bad codec parameter: {m}"),
            ShimError::Limit(m) => write!(f, "limit exceeded: {m}"),
            ShimError::Internal(m) => write!(f, "internal error: {m}"),
            ShimError::StructVersion(m) => write!(f, "struct version mismatch: {m}"),
            ShimError::Io(m) | ShimError::Verification(m) => write!(f, "{m}"),
        }
    }
}

impl From<CodecError> for ShimError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Truncated => ShimError::Corrupt("compressed tile is truncated".into()),
            CodecError::Corrupt(m) => ShimError::Corrupt(m),
            CodecError::Unsupported(m) => ShimError::Unsupported(m),
            CodecError::BadParameter(m) => ShimError::BadParameter(m),
            // The HDU names a model (IDF_1's IDFSHA) this build cannot find.
            e @ CodecError::ModelUnavailable { .. } => ShimError::BadParameter(e.to_string()),
            other => ShimError::Corrupt(other.to_string()),
        }
    }
}

/// The codec for a ZCMPTYPE value.
pub fn find_codec(zcmptype: &str) -> Result<&'static dyn Codec, ShimError> {
    codec::find(zcmptype).ok_or_else(|| ShimError::UnknownCodec(zcmptype.trim().to_string()))
}

/// The pixel type for a BITPIX value.
pub fn pixel_type(bitpix: i64) -> Result<PixelType, ShimError> {
    PixelType::from_bitpix(bitpix).ok_or_else(|| {
        ShimError::BadArgument(format!(
            "BITPIX {bitpix} is not one of 8, 16, 32, 64, -32, -64"
        ))
    })
}

/// Checks a tile shape against the library's limits and returns its number
/// of pixels.
pub fn tile_pixels(shape: &[usize]) -> Result<usize, ShimError> {
    let limits = Limits::default();
    if shape.is_empty() {
        return Err(ShimError::BadArgument(
            "a tile needs at least one axis".into(),
        ));
    }
    if shape.len() > limits.max_axes {
        return Err(ShimError::Limit(format!(
            "{} axes (at most {})",
            shape.len(),
            limits.max_axes
        )));
    }
    if shape.contains(&0) {
        return Err(ShimError::BadArgument(format!(
            "tile shape {shape:?} has an empty axis"
        )));
    }
    let n = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .filter(|&n| n <= limits.max_tile_pixels)
        .ok_or_else(|| {
            ShimError::Limit(format!(
                "tile shape {shape:?} exceeds {} pixels",
                limits.max_tile_pixels
            ))
        })?;
    usize::try_from(n).map_err(|_| ShimError::Limit(format!("tile shape {shape:?}")))
}

/// One tile to be coded: which codec, which pixel type, which shape, which
/// parameters. Built with [`TileJob::new`], which checks all of them.
pub struct TileJob<'a> {
    pub codec: &'static dyn Codec,
    pub pixel_type: PixelType,
    pub shape: &'a [usize],
    pub params: &'a Params,
    pub pixels: usize,
}

impl<'a> TileJob<'a> {
    pub fn new(
        zcmptype: &str,
        bitpix: i64,
        shape: &'a [usize],
        params: &'a Params,
    ) -> Result<Self, ShimError> {
        let codec = find_codec(zcmptype)?;
        let pixel_type = pixel_type(bitpix)?;
        if !codec.supports(pixel_type) {
            return Err(ShimError::Unsupported(format!(
                "{} does not code BITPIX={bitpix} tiles",
                codec.id()
            )));
        }
        let pixels = tile_pixels(shape)?;
        Ok(TileJob {
            codec,
            pixel_type,
            shape,
            params,
            pixels,
        })
    }

    /// Bytes of one tile of pixels.
    pub fn pixel_bytes(&self) -> usize {
        self.pixels * self.pixel_type.size()
    }

    fn spec(&self) -> TileSpec<'_> {
        TileSpec {
            shape: self.shape,
            pixel_type: self.pixel_type,
            params: self.params,
            context: Default::default(),
        }
    }

    /// Decodes `bytes` into this tile's pixels, checked for type and length.
    pub fn decode(&self, bytes: &[u8]) -> Result<Pixels, ShimError> {
        let pixels = guarded(|| self.codec.decode(bytes, &self.spec()))?;
        if pixels.pixel_type() != self.pixel_type || pixels.len() != self.pixels {
            return Err(ShimError::Corrupt(format!(
                "{} decoded {} pixels of BITPIX={} where {} of BITPIX={} were expected",
                self.codec.id(),
                pixels.len(),
                pixels.pixel_type().bitpix(),
                self.pixels,
                self.pixel_type.bitpix()
            )));
        }
        Ok(pixels)
    }

    /// Encodes native-endian pixel bytes (exactly one tile of them).
    pub fn encode_native(&self, native: &[u8]) -> Result<Vec<u8>, ShimError> {
        if native.len() != self.pixel_bytes() {
            return Err(ShimError::BufferSize {
                needed: self.pixel_bytes(),
                given: native.len(),
            });
        }
        self.encode(&pixels_from_native(self.pixel_type, native))
    }

    /// Encodes one tile of pixels of this job's type and size.
    pub fn encode(&self, pixels: &Pixels) -> Result<Vec<u8>, ShimError> {
        if !self.codec.can_encode() {
            return Err(ShimError::Unsupported(format!(
                "{} is read-only in this library",
                self.codec.id()
            )));
        }
        if pixels.pixel_type() != self.pixel_type || pixels.len() != self.pixels {
            return Err(ShimError::BadArgument(format!(
                "{} pixels of BITPIX={} given for a tile of {} pixels of BITPIX={}",
                pixels.len(),
                pixels.pixel_type().bitpix(),
                self.pixels,
                self.pixel_type.bitpix()
            )));
        }
        guarded(|| self.codec.encode(pixels, &self.spec()))
    }
}

/// The parameters a codec writes for tiles of `bitpix`, with the library's
/// default encoder options.
pub fn default_params(zcmptype: &str, bitpix: i64) -> Result<Params, ShimError> {
    let codec = find_codec(zcmptype)?;
    let pixel_type = pixel_type(bitpix)?;
    if !codec.supports(pixel_type) {
        return Err(ShimError::Unsupported(format!(
            "{} does not code BITPIX={bitpix} tiles",
            codec.id()
        )));
    }
    Ok(codec.encode_params(pixel_type, &EncodeOptions::default()))
}

/// Runs a codec call, turning a panic (which the codec contract forbids,
/// but which must never cross the C boundary) into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, CodecError>) -> Result<T, ShimError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(ShimError::from),
        Err(_) => Err(ShimError::Internal("the codec panicked".into())),
    }
}

/// Typed pixels from native-endian bytes (length a multiple of the size).
pub fn pixels_from_native(pixel_type: PixelType, bytes: &[u8]) -> Pixels {
    macro_rules! conv {
        ($t:ty, $variant:ident) => {
            Pixels::$variant(
                bytes
                    .chunks_exact(std::mem::size_of::<$t>())
                    .map(|c| <$t>::from_ne_bytes(c.try_into().expect("chunk size")))
                    .collect(),
            )
        };
    }
    match pixel_type {
        PixelType::U8 => Pixels::U8(bytes.to_vec()),
        PixelType::I16 => conv!(i16, I16),
        PixelType::I32 => conv!(i32, I32),
        PixelType::I64 => conv!(i64, I64),
        PixelType::F32 => conv!(f32, F32),
        PixelType::F64 => conv!(f64, F64),
    }
}

/// Writes pixels as native-endian bytes into `out` (exactly their size).
pub fn pixels_to_native(pixels: &Pixels, out: &mut [u8]) {
    macro_rules! put {
        ($v:expr) => {
            for (dst, x) in out.chunks_exact_mut(std::mem::size_of_val(&$v[0])).zip($v) {
                dst.copy_from_slice(&x.to_ne_bytes());
            }
        };
    }
    match pixels {
        Pixels::U8(v) => out[..v.len()].copy_from_slice(v),
        Pixels::I16(v) if !v.is_empty() => put!(v),
        Pixels::I32(v) if !v.is_empty() => put!(v),
        Pixels::I64(v) if !v.is_empty() => put!(v),
        Pixels::F32(v) if !v.is_empty() => put!(v),
        Pixels::F64(v) if !v.is_empty() => put!(v),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_round_trip_every_type() {
        for bitpix in [8, 16, 32, 64, -32, -64] {
            let t = pixel_type(bitpix).unwrap();
            let bytes: Vec<u8> = (0..t.size() * 5).map(|i| (i * 37 + 11) as u8).collect();
            let p = pixels_from_native(t, &bytes);
            let mut back = vec![0u8; bytes.len()];
            pixels_to_native(&p, &mut back);
            assert_eq!(back, bytes, "BITPIX {bitpix}");
        }
    }

    #[test]
    fn registry_codecs_outside_cfitsio_are_new() {
        let new: Vec<_> = new_codecs().map(|c| c.id()).collect();
        assert!(new.contains(&"JXL_1"), "{new:?}");
        assert!(!new.contains(&"RICE_1"));
    }

    #[test]
    fn shape_checks() {
        assert!(tile_pixels(&[]).is_err());
        assert!(tile_pixels(&[3, 0]).is_err());
        assert_eq!(tile_pixels(&[3, 4]), Ok(12));
        assert!(matches!(
            tile_pixels(&[usize::MAX, 2]),
            Err(ShimError::Limit(_))
        ));
    }
}
