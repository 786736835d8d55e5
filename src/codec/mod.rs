//! The codec interface and the registry of codecs by ZCMPTYPE.
//!
//! A codec turns one tile of typed pixels into bytes and back, nothing more:
//! it does not know about files, HDUs, quantization or BZERO. Its identity is
//! the ZCMPTYPE string; its parameters are the ZNAMEn/ZVALn pairs of the
//! compressed HDU ([`Params`]). Adding a codec means one module here and one
//! line in [`REGISTRY`]: everything the pipeline, the command line and the
//! archive code need to know about a codec (its names, default tiles,
//! whether it is lossless, how `-L` describes it, its FITS quirks) is a
//! method of [`Codec`], so nothing outside this folder tests codec names.
//! Where FITS itself names a codec (the GZIP_1 column of tiles that could not
//! be quantized, fpack's Rice fallback), [`standard`] is the one place.

use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

pub mod choice;
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
#[cfg(feature = "test-codec")]
pub mod toy;

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

/// How a codec computes, as opposed to what it writes: chosen per run (the
/// CLI's `--device`, `--pcnn-batch`) and handed to the codec with every tile.
/// Nothing here may change a single output byte; it changes speed only.
#[derive(Clone, Copy)]
pub struct CodecContext {
    /// The engine the neural codecs run their networks on.
    pub engine: &'static dyn crate::neural::Engine,
    /// PCNN_1's encoder: pixels per network run (0: whole rows).
    pub pcnn_batch: usize,
}

impl Default for CodecContext {
    fn default() -> Self {
        CodecContext {
            engine: &crate::neural::Cpu,
            pcnn_batch: 0,
        }
    }
}

impl std::fmt::Debug for CodecContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodecContext")
            .field("engine", &self.engine.name())
            .field("pcnn_batch", &self.pcnn_batch)
            .finish()
    }
}

/// Contexts are equal when they compute the same way (engines by name).
impl PartialEq for CodecContext {
    fn eq(&self, other: &Self) -> bool {
        self.engine.name() == other.engine.name() && self.pcnn_batch == other.pcnn_batch
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
    /// How to compute (engine, batch); never changes the bytes.
    pub context: CodecContext,
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

    /// Names people type for this codec (`--codec`, `recompress --to`,
    /// fpack's FZALGOR = 'RICE'), lower case: e.g. `rice`, `gzip2`, `pcnn`.
    /// [`find_by_name`] also accepts the id and aliases, with or without
    /// the `_1` suffix.
    fn short_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// One line for people: what the algorithm is (`-L`'s codec list).
    fn description(&self) -> &'static str {
        ""
    }

    /// How `-L` and `-v` show an HDU coded with this codec and `params`:
    /// the id, or the id with what decides whether the HDU can be read here
    /// (CUBE_1's inner codec, a neural codec's model).
    fn describe_hdu(&self, params: &Params, context: &CodecContext) -> String {
        let _ = (params, context);
        self.id().to_string()
    }

    /// Whether decoding returns exactly the pixels encoded with `params`
    /// (HCOMPRESS_1 with a nonzero SCALE does not). Must not depend on the
    /// pixel type.
    fn is_lossless(&self, params: &Params) -> bool {
        let _ = params;
        true
    }

    /// [`Codec::is_lossless`] for the parameters `options` lead to, before
    /// any image is seen.
    fn is_lossless_with(&self, options: &EncodeOptions) -> bool {
        PixelType::ALL
            .into_iter()
            .filter(|&t| self.supports(t))
            .all(|t| self.is_lossless(&self.encode_params(t, options)))
    }

    /// Whether this codec codes its tiles with another codec of the registry
    /// (CUBE_1, whose parameters name the inner codec): the pipeline builds
    /// its parameters itself, chooses its tiles across planes, and leaves it
    /// out of `-T`'s plain comparisons.
    fn wraps_inner_codec(&self) -> bool {
        false
    }

    /// Whether tiles are stored as they are, in the UNCOMPRESSED_DATA column
    /// (NOCOMPRESS), rather than in COMPRESSED_DATA.
    fn stores_uncompressed(&self) -> bool {
        false
    }

    /// The ZCMPTYPE to write for floating-point images quantized with
    /// SUBTRACTIVE_DITHER_2 (exact zeros), or `None` when this codec cannot
    /// keep those zeros and SUBTRACTIVE_DITHER_1 must be used instead (as
    /// cfitsio does for HCOMPRESS_1). cfitsio writes Rice's as `RICE_ONE`,
    /// so that readers too old to restore the zeros refuse the file.
    fn dither2_zcmptype(&self) -> Option<&'static str> {
        Some(self.id())
    }

    /// Whether 16-bit images with BZERO = 32768 (unsigned) are coded as
    /// their physical values, i.e. as 32-bit integers `stored + 32768`
    /// (cfitsio's rule for PLIO_1, whose stream holds no negative values).
    fn codes_unsigned_16_physically(&self) -> bool {
        false
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

    /// The tile axes to use for an image of axes `image`, given those the
    /// user's tiling produced (`tile`; `user_default` when the user chose
    /// none, i.e. fpack's rows). The default applies [`Codec::default_strip`];
    /// codecs with rules of their own (HCOMPRESS_1's blocks) override it.
    fn tile_axes(
        &self,
        image: &[usize],
        tile: Vec<usize>,
        user_default: bool,
    ) -> Result<Vec<usize>, CodecError> {
        let (Some((min_rows, min_pixels)), true) = (self.default_strip(), user_default) else {
            return Ok(tile);
        };
        // Full-width strips of at least `min_rows` rows and `min_pixels`
        // pixels, so narrow images are not cut into tiny tiles; the strips
        // code in parallel.
        let n = image.len();
        let mut tile = vec![1; n];
        tile[0] = image[0];
        if n > 1 {
            let rows = min_rows.max(min_pixels.div_ceil(image[0].max(1)));
            tile[1] = image[1].min(rows);
        }
        Ok(tile)
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

    /// [`Codec::encode`] from the tile's big-endian FITS bytes (`bytes.len()
    /// == spec.len() * spec.pixel_type.size()`), for codecs that can read
    /// them directly and spare the pipeline a typed copy of every tile.
    /// `None`: not supported, call `encode`. Must give exactly the bytes
    /// `encode` gives for the same pixels.
    fn encode_be(&self, bytes: &[u8], spec: &TileSpec) -> Option<Result<Vec<u8>, CodecError>> {
        let _ = (bytes, spec);
        None
    }

    /// [`Codec::decode`] straight into the tile's big-endian FITS bytes
    /// (`out.len() == spec.len() * spec.pixel_type.size()`), for codecs that
    /// can write them directly. `Ok(false)`: not supported for this tile
    /// (`out` untouched), call `decode`. The same guarantees as `decode`;
    /// on an error `out` may hold anything.
    fn decode_be_into(
        &self,
        bytes: &[u8],
        spec: &TileSpec,
        out: &mut [u8],
    ) -> Result<bool, CodecError> {
        let _ = (bytes, spec, out);
        Ok(false)
    }
}

/// Every codec this library knows, in the order `-T` tries them.
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
    #[cfg(feature = "test-codec")]
    &toy::Toy,
];

/// The codecs the FITS standard names, where the pipeline needs one by the
/// standard's rules rather than by the user's choice.
pub mod standard {
    use super::{gzip, rice, Codec};
    use crate::tile::PixelType;

    /// GZIP_1: tiles of floating-point images that could not be quantized
    /// are stored with it (GZIP_COMPRESSED_DATA column, FITS 4.0 §10.4).
    pub fn gzip1() -> &'static dyn Codec {
        &gzip::Gzip1
    }

    /// The standard codec fpack uses when the chosen one cannot code a
    /// pixel type: Rice for integers up to 32 bits (also quantized floats),
    /// GZIP_2 for the rest.
    pub fn fallback_for(pixel_type: PixelType) -> &'static dyn Codec {
        if rice::Rice.supports(pixel_type) {
            &rice::Rice
        } else {
            &gzip::Gzip2
        }
    }

    /// What fpack writes when the user names no algorithm.
    pub fn default_codec() -> &'static dyn Codec {
        &rice::Rice
    }
}

/// The codec for a ZCMPTYPE value (case-insensitive, trailing blanks ignored).
pub fn find(zcmptype: &str) -> Option<&'static dyn Codec> {
    let name = zcmptype.trim();
    REGISTRY.iter().copied().find(|c| {
        c.id().eq_ignore_ascii_case(name)
            || c.aliases().iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The codec for a name a person typed: a ZCMPTYPE ("RICE_1"), a short name
/// ([`Codec::short_names`]: "rice", "gzip2", "pcnn"), or a ZCMPTYPE without
/// its `_1` or with its last underscore dropped ("RICE", "GZIP2", "gzip-2").
/// Case-insensitive.
pub fn find_by_name(name: &str) -> Option<&'static dyn Codec> {
    let typed = name.trim();
    if let Some(c) = REGISTRY.iter().copied().find(|c| {
        c.short_names()
            .iter()
            .any(|s| s.eq_ignore_ascii_case(typed))
    }) {
        return Some(c);
    }
    let upper = typed.to_ascii_uppercase().replace('-', "_");
    let mut candidates = vec![upper.clone(), format!("{upper}_1")];
    if let Some(pos) = upper.rfind(|c: char| !c.is_ascii_digit()) {
        if pos + 1 < upper.len() && !upper[..=pos].ends_with('_') {
            candidates.push(format!("{}_{}", &upper[..=pos], &upper[pos + 1..]));
        }
    }
    candidates.iter().find_map(|c| find(c))
}
