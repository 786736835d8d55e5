//! The codec interface and the registry of codecs by ZCMPTYPE.
//!
//! A codec turns one tile of typed pixels into bytes and back, nothing more:
//! it does not know about files, HDUs, quantization or BZERO. Its identity is
//! the ZCMPTYPE string; its parameters are the ZNAMEn/ZVALn pairs of the
//! compressed HDU ([`Params`]). Adding a codec means one module here and one
//! line in [`REGISTRY`].

use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

pub mod cube;
pub mod gzip;
pub mod hcompress;
pub mod idf;
pub mod jxl;
pub mod mixpred;
pub mod nocompress;
pub mod pcnn;
pub mod plio;
pub mod rice;

/// A ZVALn value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Text(String),
}

/// The ZNAMEn/ZVALn pairs of a compressed image, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(pub Vec<(String, ParamValue)>);

impl Params {
    pub fn new() -> Self {
        Params(Vec::new())
    }

    pub fn with(mut self, name: &str, value: ParamValue) -> Self {
        self.set(name, value);
        self
    }

    pub fn set(&mut self, name: &str, value: ParamValue) {
        if let Some(slot) = self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            slot.1 = value;
        } else {
            self.0.push((name.to_ascii_uppercase(), value));
        }
    }

    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// An integer parameter (a float with an integral value is accepted).
    pub fn get_int(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            ParamValue::Int(i) => Some(*i),
            ParamValue::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            _ => None,
        }
    }

    pub fn get_float(&self, name: &str) -> Option<f64> {
        match self.get(name)? {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn get_text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            ParamValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Everything a codec is told about one tile.
#[derive(Debug, Clone, Copy)]
pub struct TileSpec<'a> {
    /// Tile dimensions, fastest-varying axis first (ZTILE1, ZTILE2, ...),
    /// already clipped at the image edge; trailing axes may be 1.
    pub shape: &'a [usize],
    /// The type of the pixels handed to `encode` and expected from `decode`.
    /// For quantized floating-point images this is `I32`.
    pub pixel_type: PixelType,
    /// The ZNAMEn/ZVALn pairs of the HDU.
    pub params: &'a Params,
}

impl TileSpec<'_> {
    /// Number of pixels in the tile.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width and height of the tile as cfitsio sees it for 2-D algorithms
    /// (HCOMPRESS_1) and noise estimates: the width is the first axis longer
    /// than 1, the height all the other pixels.
    pub fn width_height(&self) -> (usize, usize) {
        let w = self.shape.iter().copied().find(|&d| d > 1).unwrap_or(1);
        (w, self.len() / w.max(1))
    }
}

/// User choices that codecs turn into their ZNAMEn/ZVALn parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeOptions {
    /// HCOMPRESS_1 scale factor (fpack `-s`); 0 means lossless.
    pub hcompress_scale: f32,
    /// HCOMPRESS_1 smoothing on decode (fpack's `-h` with smoothing).
    pub hcompress_smooth: bool,
    /// Deflate level for GZIP_1/GZIP_2 (1..=9); cfitsio uses 1 by default.
    pub gzip_level: u32,
    /// JPEG-XL encoder effort 1..=10 (`--jxl-effort`); informational for
    /// decoders, written as a ZNAMEn/ZVALn parameter.
    pub jxl_effort: u32,
    /// SHA-256 (hex) of the IDF_1 model to code with, among the models the
    /// library knows ([`crate::neural::store`]); None: the built-in model.
    pub idf_model: Option<String>,
    /// SHA-256 (hex) of the PCNN_1 model to code with ([`crate::neural::pcnn::store`]);
    /// None: the built-in model.
    pub pcnn_model: Option<String>,
    /// PCNN_1: code each 16-bit value as one symbol instead of the MSB/LSB
    /// split (the 1×16-bit variant, for comparison; written as PCNNCODE='16').
    pub pcnn_sixteen: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            hcompress_scale: 0.0,
            hcompress_smooth: false,
            gzip_level: 1,
            jxl_effort: 7,
            idf_model: None,
            pcnn_model: None,
            pcnn_sixteen: false,
        }
    }
}

/// How a neural codec's HDU names its model (ZNAMEn keywords).
pub(crate) struct ModelKeys {
    pub codec: &'static str,
    /// The mapping version keyword and the version this build reads.
    pub version: (&'static str, i64),
    /// The SHA-256 keyword (decoding requires it).
    pub sha256: &'static str,
    /// The model-name keyword (for people and error messages).
    pub name: &'static str,
}

/// The model an HDU of a neural codec was coded with, found by SHA-256 with
/// `find`: a wrong mapping version, a missing hash or an unknown model is an
/// error naming what is missing.
pub(crate) fn model_for<M>(
    spec: &TileSpec,
    keys: &ModelKeys,
    find: impl Fn(&str) -> Option<std::sync::Arc<M>>,
) -> Result<std::sync::Arc<M>, CodecError> {
    let (ver_key, want) = keys.version;
    // A missing version is refused, never taken as the current one: a file
    // from before the keyword existed, or damaged, must not decode silently.
    let ver = spec.params.get_int(ver_key).ok_or_else(|| {
        CodecError::BadParameter(format!(
            "{} HDU without {ver_key} (the mapping version), which is missing or not an integer",
            keys.codec
        ))
    })?;
    if ver != want {
        return Err(CodecError::BadParameter(format!(
            "{ver_key} = {ver}; this build reads {want}"
        )));
    }
    let sha = spec.params.get_text(keys.sha256).ok_or_else(|| {
        CodecError::BadParameter(format!(
            "{} HDU without {} (the model's SHA-256)",
            keys.codec, keys.sha256
        ))
    })?;
    let name = spec.params.get_text(keys.name).unwrap_or("?");
    find(sha).ok_or_else(|| CodecError::ModelUnavailable {
        name: name.trim().to_string(),
        sha256: sha.trim().to_string(),
    })
}

/// The unsigned values the neural codecs code: U8 pixels as they are, I16
/// pixels as `v + 32768` (so BZERO=32768 frames are coded as their physical
/// uint16 values).
pub(crate) fn to_unsigned(pixels: &Pixels, codec: &str) -> Result<Vec<i32>, CodecError> {
    match pixels {
        Pixels::U8(v) => Ok(v.iter().map(|&p| p as i32).collect()),
        Pixels::I16(v) => Ok(v.iter().map(|&p| p as i32 + 32768).collect()),
        _ => Err(CodecError::Unsupported(format!(
            "{codec} codes 8- and 16-bit integers, not {:?}",
            pixels.pixel_type()
        ))),
    }
}

/// The inverse of [`to_unsigned`]; a value outside the pixel type's range is
/// an error, never a wrapped pixel.
pub(crate) fn from_unsigned(
    px: &[i32],
    pixel_type: PixelType,
    codec: &str,
) -> Result<Pixels, CodecError> {
    let out_of_range =
        |bits| CodecError::Corrupt(format!("{codec} value out of the {bits}-bit range"));
    match pixel_type {
        PixelType::U8 => px
            .iter()
            .map(|&v| u8::try_from(v).map_err(|_| out_of_range(8)))
            .collect::<Result<Vec<u8>, _>>()
            .map(Pixels::U8),
        PixelType::I16 => px
            .iter()
            .map(|&v| {
                u16::try_from(v)
                    .map(|u| (u as i32 - 32768) as i16)
                    .map_err(|_| out_of_range(16))
            })
            .collect::<Result<Vec<i16>, _>>()
            .map(Pixels::I16),
        t => Err(CodecError::Unsupported(format!(
            "{codec} does not code {t:?}"
        ))),
    }
}

/// A tile-compression algorithm.
pub trait Codec: Send + Sync {
    /// The ZCMPTYPE value this codec writes and reads.
    fn id(&self) -> &'static str;

    /// Other ZCMPTYPE spellings this codec also reads (e.g. `RICE_ONE`).
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether this library can write this algorithm (some are read-only).
    fn can_encode(&self) -> bool {
        true
    }

    /// The element type of the COMPRESSED_DATA heap array (TFORM `1P?`):
    /// 'B' (bytes) for nearly all codecs, 'I' for PLIO_1, whose stream is
    /// 16-bit words. `encode` returns, and `decode` receives, the heap bytes
    /// exactly as stored (big-endian words where the element is wider).
    fn heap_element(&self) -> char {
        'B'
    }

    /// Whether tiles of this pixel type can be coded.
    fn supports(&self, pixel_type: PixelType) -> bool;

    /// Whether this is one of the algorithms of the FITS standard (FITS 4.0
    /// §10), which every reader decodes. Only those are written unless the
    /// user names another (e.g. CUBE_1 is chosen automatically only when the
    /// user already chose a non-standard codec).
    fn is_standard(&self) -> bool {
        false
    }

    /// Default tiles when the user gives no `-t`: `None` for fpack's rows;
    /// `Some((rows, pixels))` for full-width strips of at least `rows` rows
    /// and at least `pixels` pixels (2-D codecs that need context above).
    fn default_strip(&self) -> Option<(usize, usize)> {
        None
    }

    /// The ZNAMEn/ZVALn parameters to write for an image whose coded pixels
    /// are of `pixel_type`. They are handed back in [`TileSpec::params`].
    fn encode_params(&self, pixel_type: PixelType, options: &EncodeOptions) -> Params {
        let _ = (pixel_type, options);
        Params::new()
    }

    /// Code one tile. `pixels.len() == spec.len()` and
    /// `pixels.pixel_type() == spec.pixel_type` are guaranteed by the caller.
    fn encode(&self, pixels: &Pixels, spec: &TileSpec) -> Result<Vec<u8>, CodecError>;

    /// Decode one tile. Must return exactly `spec.len()` pixels of
    /// `spec.pixel_type`, or an error: never panic, never loop without
    /// consuming input, never allocate more than the tile size implies.
    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError>;
}

/// Every codec this library knows, in the order `-L` lists them.
pub static REGISTRY: &[&dyn Codec] = &[
    &rice::Rice,
    &gzip::Gzip1,
    &gzip::Gzip2,
    &hcompress::Hcompress,
    &plio::Plio,
    &jxl::Jxl,
    &mixpred::MixPred,
    &idf::Idf,
    &pcnn::Pcnn,
    &cube::Cube,
    &nocompress::NoCompress,
];

/// The codec for a ZCMPTYPE value (case-insensitive, trailing blanks ignored).
pub fn find(zcmptype: &str) -> Option<&'static dyn Codec> {
    let name = zcmptype.trim();
    REGISTRY.iter().copied().find(|c| {
        c.id().eq_ignore_ascii_case(name)
            || c.aliases().iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}
