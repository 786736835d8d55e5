//! `-L` listings and `-T` algorithm comparisons.
//!
//! Listing reads only headers and data sizes (no decoding), like fpack -L,
//! and adds what an archive operator wants to know about a compressed HDU:
//! its algorithm, tile shape and ratio. The comparison compresses each image
//! HDU in memory with every algorithm that can code it, decodes it back,
//! and reports ratio, times and whether the round trip was exact.

use std::time::Instant;

use super::compress::compress_image;
use super::decompress::{decompress_pixels, CompressedImageInfo};
use super::file::Input;
use super::options::{CompressOptions, CubeMode};
use crate::codec::cube::{self, Predictor};
use crate::codec::{Codec, CodecContext, REGISTRY};
use crate::error::{Context, Result};
use crate::fits::{Hdu, HduKind};
use crate::limits::Limits;
use crate::tile::PixelType;

/// One line of a `-L` listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ListEntry {
    pub number: usize,
    /// IMAGE, BINARY_TBL, ASCII_TBL, RANDOM_GROUPS or OTHER (as fpack).
    pub kind: &'static str,
    pub bitpix: Option<i64>,
    pub axes: Vec<usize>,
    /// Compressed images: the algorithm and tile axes.
    pub compression: Option<(String, Vec<usize>)>,
    /// Raw image bytes / compressed data bytes, for compressed images.
    pub ratio: Option<f64>,
    /// CHECKSUM/DATASUM status: None if absent, Some(true) if they match.
    pub checksum_ok: Option<bool>,
}

impl std::fmt::Display for ListEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>3} {}", self.number, self.kind)?;
        if let Some(b) = self.bitpix {
            let dims = if self.axes.is_empty() {
                "no_pixels".to_string()
            } else {
                self.axes
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join("x")
            };
            write!(f, " BITPIX={b} [{dims}]")?;
        }
        match &self.compression {
            Some((alg, tiles)) => {
                let t = tiles
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join("x");
                write!(f, " tiled {alg} tiles=[{t}]")?;
                if let Some(r) = self.ratio {
                    write!(f, " ratio={r:.3}")?;
                }
            }
            None if self.kind == "IMAGE" => write!(f, " not_tiled")?,
            None => {}
        }
        match self.checksum_ok {
            Some(true) => write!(f, " checksum=ok"),
            Some(false) => write!(f, " checksum=BAD"),
            None => Ok(()),
        }
    }
}

fn entry_for(hdu: &Hdu, context: &CodecContext) -> ListEntry {
    let ctx = Context::hdu(hdu.number);
    let checksum_ok = if hdu.header.contains("CHECKSUM") || hdu.header.contains("DATASUM") {
        Some(hdu.checksum_mismatch().is_none())
    } else {
        None
    };
    let kind = hdu.kind();
    let name = match kind {
        HduKind::Image | HduKind::CompressedImage => "IMAGE",
        HduKind::BinTable => "BINARY_TBL",
        HduKind::AsciiTable => "ASCII_TBL",
        HduKind::RandomGroups => "RANDOM_GROUPS",
        HduKind::Other => "OTHER",
    };
    let mut entry = ListEntry {
        number: hdu.number,
        kind: name,
        bitpix: None,
        axes: Vec::new(),
        compression: None,
        ratio: None,
        checksum_ok,
    };
    match kind {
        HduKind::Image => {
            entry.bitpix = hdu.header.get_int("BITPIX");
            entry.axes = hdu.image_axes();
        }
        HduKind::CompressedImage => {
            if let Ok(info) = CompressedImageInfo::parse(&hdu.header, &ctx) {
                entry.bitpix = Some(info.pixel_type.bitpix());
                let raw: usize = info.axes.iter().product::<usize>() * info.pixel_type.size();
                entry.ratio = (hdu.data_len > 0).then(|| raw as f64 / hdu.data_len as f64);
                entry.axes = info.axes;
                // The codec says what decides whether this HDU can be read
                // here (CUBE_1's inner codec, a neural codec's model).
                let algorithm = match crate::codec::find(&info.algorithm) {
                    Some(c) => c.describe_hdu(&info.params, context),
                    None => info.algorithm,
                };
                entry.compression = Some((algorithm, info.tile_axes));
            }
        }
        _ => {}
    }
    entry
}

/// List the HDUs of a file without decoding any pixels.
pub fn list(input: Input, limits: Limits, context: &CodecContext) -> Result<Vec<ListEntry>> {
    let name = match input {
        Input::Path(p) => p.to_path_buf(),
        Input::Bytes(_) => "<stdin>".into(),
    };
    let mut out = Vec::new();
    super::file::for_each_raw_hdu(input, limits, |hdu| {
        out.push(entry_for(&hdu, context));
        Ok(())
    })
    .map_err(|e| e.with_file(&name))?;
    Ok(out)
}

/// One row of a `-T` comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub algorithm: String,
    /// Raw pixel bytes / compressed data bytes; `None` if the algorithm
    /// cannot code this image.
    pub ratio: Option<f64>,
    pub compressed_bytes: u64,
    pub pack_seconds: f64,
    pub unpack_seconds: f64,
    pub exact: bool,
    pub note: Option<String>,
}

/// Compress one image HDU with each writable algorithm and decode it back.
pub fn compare_algorithms(hdu: &Hdu, base: &CompressOptions) -> Vec<Trial> {
    let axes = hdu.image_axes();
    let bitpix = hdu.header.get_int("BITPIX").unwrap_or(0);
    let pixel_type = PixelType::from_bitpix(bitpix);
    let mut trials = Vec::new();
    if axes.is_empty() || pixel_type.is_none() {
        return trials;
    }
    // Cubes: each codec plane by plane, then as CUBE_1's inner codec, so the
    // gain of inter-plane residuals shows per codec.
    let is_cube = axes.len() >= 3 && axes.iter().skip(2).product::<usize>() >= 2;
    let mut runs: Vec<(String, CompressOptions, &str)> = Vec::new();
    for codec in REGISTRY
        .iter()
        .filter(|c| c.can_encode() && !c.stores_uncompressed() && !c.wraps_inner_codec())
    {
        let opts = CompressOptions {
            algorithm: codec.id().to_string(),
            header_directives: false,
            checksums: false,
            cube: CubeMode::Off,
            ..base.clone()
        };
        runs.push((codec.id().to_string(), opts.clone(), codec.id()));
        if is_cube && pixel_type.is_some_and(|t| cube::inner_usable(*codec, t)) {
            let on = match base.cube {
                CubeMode::On(p) => CubeMode::On(p),
                _ => CubeMode::On(Predictor::Auto),
            };
            runs.push((
                format!("{}+{}", cube::Cube.id(), codec.id()),
                CompressOptions { cube: on, ..opts },
                cube::Cube.id(),
            ));
        }
    }
    for (label, opts, expect) in runs {
        let start = Instant::now();
        let packed = compress_image(hdu, &opts);
        let pack_seconds = start.elapsed().as_secs_f64();
        let trial = match packed {
            Ok(Some(c)) if c.summary.algorithm == expect => {
                let table = Hdu {
                    number: hdu.number,
                    header: c.header.clone(),
                    raw_header: Vec::new(),
                    data_len: c.data.len(),
                    data: c.data,
                };
                let start = Instant::now();
                let decoded = decompress_pixels(&table, &base.limits, &base.context);
                let unpack_seconds = start.elapsed().as_secs_f64();
                let exact = decoded
                    .as_ref()
                    .is_ok_and(|(_, d)| d.as_slice() == hdu.data_bytes());
                Trial {
                    algorithm: label.clone(),
                    ratio: Some(
                        c.summary.raw_bytes as f64 / c.summary.compressed_bytes.max(1) as f64,
                    ),
                    compressed_bytes: c.summary.compressed_bytes,
                    pack_seconds,
                    unpack_seconds,
                    exact,
                    note: decoded.err().map(|e| e.to_string()),
                }
            }
            Ok(Some(c)) => Trial {
                algorithm: label.clone(),
                ratio: None,
                compressed_bytes: 0,
                pack_seconds,
                unpack_seconds: 0.0,
                exact: false,
                note: Some(format!(
                    "not applicable (would use {})",
                    c.summary.algorithm
                )),
            },
            Ok(None) => continue,
            Err(e) => Trial {
                algorithm: label.clone(),
                ratio: None,
                compressed_bytes: 0,
                pack_seconds,
                unpack_seconds: 0.0,
                exact: false,
                note: Some(e.to_string()),
            },
        };
        trials.push(trial);
    }
    trials
}
