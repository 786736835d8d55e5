//! What the user asks for: the library's view of fpack's and funpack's flags.
//!
//! The CLI only translates flags into these structs; every decision (which
//! codec, which tiles, whether to quantize) is made in the library, so the
//! same choices apply to archive jobs and to the cfitsio shim.

use crate::codec::cube::Predictor;
use crate::codec::{self, CodecContext, EncodeOptions};
use crate::limits::Limits;
use crate::tile::quantize::{QuantizeMethod, QuantizeSpec};

/// How an image is cut into tiles (fpack's default, `-w`, `-t`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Tiling {
    /// fpack's default: one image row per tile (HCOMPRESS_1: 16-row
    /// blocks, chosen as cfitsio chooses them).
    #[default]
    Rows,
    /// The whole image as one tile (`-w`).
    Whole,
    /// Explicit tile axes, ZTILE1 first (`-t 100,100`); 0 or a value larger
    /// than the image axis means the whole axis.
    Axes(Vec<usize>),
}

/// Whether integer images with 3 or more axes are coded as inter-plane
/// residuals (CUBE_1, see docs/cube.md); `--cube`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CubeMode {
    /// With a codec outside the FITS standard: compress both ways and keep
    /// CUBE_1 only when it is at least [`CUBE_MIN_GAIN`] smaller than
    /// plane-by-plane coding. With a standard codec: never CUBE_1, so that
    /// the output stays standard unless the user names a new algorithm.
    #[default]
    Auto,
    /// Always CUBE_1 where it applies, with this predictor choice.
    On(Predictor),
    /// Never: plane-by-plane coding, readable by every standard reader.
    Off,
}

/// How much smaller (as a fraction) CUBE_1 must be for `CubeMode::Auto` to
/// keep it: a file standard readers refuse must be worth it.
pub const CUBE_MIN_GAIN: f64 = 0.02;

/// Where ZDITHER0 comes from (fpack `-q`, `-qt`, `-qN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DitherSeed {
    /// From the system clock, as fpack's `-q` does.
    #[default]
    Clock,
    /// From a checksum of the first tile (`-qt`): reproducible output.
    FirstTile,
    /// A fixed seed 1..=10000 (`-qN`).
    Fixed(i32),
}

/// Options for compressing a file.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressOptions {
    /// ZCMPTYPE of the codec to use, e.g. "RICE_1".
    pub algorithm: String,
    pub tiling: Tiling,
    /// Quantize floating-point images (fpack `-q`). `None`: floating-point
    /// images are compressed losslessly (our default, unlike fpack).
    pub quantize: Option<QuantizeSpec>,
    pub dither_seed: DitherSeed,
    pub codec: EncodeOptions,
    /// Inter-plane prediction for cubes (CUBE_1).
    pub cube: CubeMode,
    /// With a standard codec (where CUBE_1 is never chosen automatically),
    /// also code cubes as CUBE_1 to report what it would save (`-v`).
    pub report_cube_saving: bool,
    /// Write CHECKSUM/DATASUM in every output HDU (fpack `-C` turns it off).
    pub checksums: bool,
    /// Honour FZALGOR, FZTILE, FZQVALUE, FZQMETHD, FZDTHRSD, FZHSCALE in
    /// each HDU's header, which override the options above, as fpack does.
    pub header_directives: bool,
    pub limits: Limits,
    /// How codecs compute (engine, batch); never changes the output.
    pub context: CodecContext,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            algorithm: codec::standard::default_codec().id().into(),
            tiling: Tiling::Rows,
            quantize: None,
            dither_seed: DitherSeed::Clock,
            codec: EncodeOptions::default(),
            cube: CubeMode::default(),
            report_cube_saving: false,
            checksums: true,
            header_directives: true,
            limits: Limits::default(),
            context: CodecContext::default(),
        }
    }
}

impl CompressOptions {
    /// fpack's `-q level` with its dither method.
    pub fn with_quantize(mut self, level: f32, method: QuantizeMethod) -> Self {
        self.quantize = Some(QuantizeSpec { method, level });
        self
    }

    /// Whether the chosen codec, with these options, returns exactly the
    /// pixels it was given (an unknown algorithm is refused later, by name).
    pub fn is_lossless_codec(&self) -> bool {
        codec::find(&self.algorithm).is_none_or(|c| c.is_lossless_with(&self.codec))
    }

    /// Whether compressing with these options may change pixel values
    /// (quantization or a lossy codec), before header directives.
    pub fn is_lossy(&self) -> bool {
        self.quantize.is_some() || !self.is_lossless_codec()
    }
}

/// Options for decompressing a file.
#[derive(Debug, Clone, PartialEq)]
pub struct DecompressOptions {
    /// Only these HDUs (funpack `-E`); `None` means all. A single selected
    /// image becomes the primary array of the output, as funpack does.
    pub hdus: Option<Vec<HduSelector>>,
    /// Write CHECKSUM/DATASUM in restored HDUs (funpack `-C` turns it off).
    pub checksums: bool,
    /// Verify CHECKSUM/DATASUM of every HDU that has them while reading.
    pub verify_checksums: bool,
    pub limits: Limits,
    /// How codecs compute (engine); never changes the pixels.
    pub context: CodecContext,
}

impl Default for DecompressOptions {
    fn default() -> Self {
        DecompressOptions {
            hdus: None,
            checksums: true,
            verify_checksums: true,
            limits: Limits::default(),
            context: CodecContext::default(),
        }
    }
}

/// One entry of funpack's `-E` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HduSelector {
    /// Extension number as funpack counts: 0 is the primary HDU.
    Extension(usize),
    /// EXTNAME (case-insensitive).
    Name(String),
}

impl HduSelector {
    /// Parse funpack's comma-separated `-E` list ("2,4,SCI").
    pub fn parse_list(list: &str) -> Vec<HduSelector> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s.parse::<usize>() {
                Ok(n) => HduSelector::Extension(n),
                Err(_) => HduSelector::Name(s.to_string()),
            })
            .collect()
    }
}
