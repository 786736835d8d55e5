//! Compressing one image HDU into a tile-compressed binary table.
//!
//! Tiles are independent, so they are encoded in parallel with rayon; the
//! HDU's pixels and its compressed tiles are the only large buffers alive,
//! which keeps memory near twice the HDU. Every decision that changes what
//! the user asked for (a codec that cannot code this pixel type, floats
//! kept lossless) is recorded in the summary's notes so `-v` can say it.

use rayon::prelude::*;

use super::keywords::image_cards_for_table;
use super::options::{CompressOptions, CubeMode, DitherSeed, Tiling, CUBE_MIN_GAIN};
use crate::codec::cube::{self, Predictor};
use crate::codec::{self, Codec, EncodeOptions, ParamValue, Params, TileSpec};
use crate::error::{Context, Error, Result};
use crate::fits::{Card, Hdu, Header, Value};
use crate::tile::quantize::{self, QuantizeMethod, QuantizeSpec, NULL_VALUE};
use crate::tile::table::{self, Layout, TileRow};
use crate::tile::{PixelType, Pixels, TileGrid};

/// What happened to one HDU.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressSummary {
    pub algorithm: String,
    pub tile_axes: Vec<usize>,
    pub n_tiles: usize,
    /// True when the decoded pixels equal the input bit for bit.
    pub lossless: bool,
    /// True when the codec itself loses information (HCOMPRESS_1 with a
    /// scale), beyond any quantization: such tiles cannot be compared for
    /// equality, so the written file is decoded again and bounded.
    pub lossy_codec: bool,
    /// Bytes of pixel data in the input HDU.
    pub raw_bytes: u64,
    /// Bytes of the compressed table's data unit (rows + heap, unpadded).
    pub compressed_bytes: u64,
    pub notes: Vec<String>,
}

/// A compressed HDU ready to be written.
#[derive(Debug, Clone)]
pub struct CompressedHdu {
    pub header: Header,
    pub data: Vec<u8>,
    pub summary: CompressSummary,
}

/// The effective settings for one HDU after header directives (FZALGOR...).
#[derive(Clone)]
struct Plan {
    codec: &'static dyn Codec,
    tiling: Tiling,
    quantize: Option<QuantizeSpec>,
    dither_seed: DitherSeed,
    codec_options: EncodeOptions,
    /// ZNAMEn/ZVALn to write instead of the codec's defaults (CUBE_1, whose
    /// parameters name its inner codec).
    params: Option<Params>,
    notes: Vec<String>,
}

fn directive_text(header: &Header, key: &str) -> Option<String> {
    match header.value(key)? {
        Value::Text(s) => Some(s.trim().to_ascii_uppercase()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// Parse "(100,100)", "100,100", "ROW", "WHOLE" (FZTILE).
fn parse_fztile(text: &str) -> Option<Tiling> {
    match text {
        "ROW" | "ROWS" => return Some(Tiling::Rows),
        "WHOLE" | "FULL" => return Some(Tiling::Whole),
        _ => {}
    }
    let inner = text.trim_start_matches('(').trim_end_matches(')');
    let axes: Option<Vec<usize>> = inner.split(',').map(|s| s.trim().parse().ok()).collect();
    axes.filter(|a| !a.is_empty()).map(Tiling::Axes)
}

/// `None` when FZALGOR = 'NONE' asks for the HDU to stay uncompressed.
fn plan(hdu: &Hdu, opts: &CompressOptions, ctx: &Context) -> Result<Option<Plan>> {
    let mut algorithm = opts.algorithm.clone();
    let mut tiling = opts.tiling.clone();
    let mut quantize = opts.quantize;
    let mut dither_seed = opts.dither_seed;
    let mut codec_options = opts.codec.clone();
    let notes = Vec::new();
    if opts.header_directives {
        let h = &hdu.header;
        if let Some(a) = directive_text(h, "FZALGOR") {
            if a == "NONE" {
                return Ok(None);
            }
            // fpack's short spellings (RICE, GZIP, HCOMPRESS, PLIO) and any
            // name a codec answers to.
            algorithm = codec::find_by_name(&a).map_or(a, |c| c.id().to_string());
        }
        if let Some(t) = directive_text(h, "FZTILE") {
            tiling = parse_fztile(&t).ok_or_else(|| {
                Error::malformed(
                    ctx.clone(),
                    format!("FZTILE = '{t}' is not ROW, WHOLE or (n,m,...)"),
                )
            })?;
        }
        if let Some(q) = h.get_float("FZQVALUE") {
            let method = quantize
                .map(|s| s.method)
                .unwrap_or(QuantizeMethod::SubtractiveDither1);
            quantize = if q == 0.0 {
                None
            } else {
                Some(QuantizeSpec {
                    method,
                    level: q as f32,
                })
            };
        }
        if let Some(m) = directive_text(h, "FZQMETHD") {
            let method = match m.as_str() {
                "NO_DITHER" | "NONE" => QuantizeMethod::NoDither,
                "SUBTRACTIVE_DITHER_1" => QuantizeMethod::SubtractiveDither1,
                "SUBTRACTIVE_DITHER_2" => QuantizeMethod::SubtractiveDither2,
                _ => {
                    return Err(Error::malformed(
                        ctx.clone(),
                        format!("FZQMETHD = '{m}' is not a known method"),
                    ))
                }
            };
            let level = quantize.map(|s| s.level).unwrap_or(4.0);
            quantize = Some(QuantizeSpec { method, level });
        }
        if let Some(d) = directive_text(h, "FZDTHRSD") {
            dither_seed = match d.as_str() {
                "CLOCK" => DitherSeed::Clock,
                "CHECKSUM" => DitherSeed::FirstTile,
                n => match n.parse::<i32>() {
                    Ok(v) if (1..=10000).contains(&v) => DitherSeed::Fixed(v),
                    _ => {
                        return Err(Error::malformed(
                            ctx.clone(),
                            format!("FZDTHRSD = '{d}' is not CLOCK, CHECKSUM or 1..10000"),
                        ))
                    }
                },
            };
        }
        if let Some(s) = h.get_float("FZHSCALE") {
            codec_options.hcompress_scale = s as f32;
        }
    }
    let codec = codec::find(&algorithm).ok_or_else(|| {
        Error::bad_parameter(format!("unknown compression algorithm '{algorithm}'"))
    })?;
    if !codec.can_encode() {
        return Err(Error::bad_parameter(format!(
            "{} can be read but not written",
            codec.id()
        )));
    }
    Ok(Some(Plan {
        codec,
        tiling,
        quantize,
        dither_seed,
        codec_options,
        params: None,
        notes,
    }))
}

pub use crate::codec::jxl::{JXL_DEFAULT_STRIP_ROWS, JXL_MIN_DEFAULT_TILE_PIXELS};

/// Tile axes for an image: fpack's rows by default, `-w`, or `-t`'s axes
/// clipped to the image, then adjusted by the codec ([`Codec::tile_axes`]:
/// strips for 2-D codecs, HCOMPRESS_1's blocks as cfitsio chooses them).
pub fn resolve_tile_axes(image: &[usize], tiling: &Tiling, algorithm: &str) -> Result<Vec<usize>> {
    let n = image.len();
    let tile: Vec<usize> = match tiling {
        Tiling::Rows => {
            let mut t = vec![1; n];
            t[0] = image[0];
            t
        }
        Tiling::Whole => image.to_vec(),
        Tiling::Axes(a) => {
            if a.len() > n {
                return Err(Error::bad_parameter(format!(
                    "{} tile axes given for a {n}-axis image",
                    a.len()
                )));
            }
            (0..n)
                .map(|i| match a.get(i).copied() {
                    Some(0) if i == 0 => image[0],
                    Some(0) | None => {
                        if i == 0 {
                            image[0]
                        } else {
                            1
                        }
                    }
                    Some(v) => v.min(image[i]),
                })
                .collect()
        }
    };
    match codec::find(algorithm) {
        Some(c) => c
            .tile_axes(image, tile, matches!(tiling, Tiling::Rows))
            .map_err(|e| match e {
                crate::error::CodecError::BadParameter(m) => Error::bad_parameter(m),
                other => Error::bad_parameter(format!("{algorithm}: {other}")),
            }),
        None => Ok(tile),
    }
}

fn seed_for(plan: &Plan, first_tile: &Pixels) -> i32 {
    match plan.dither_seed {
        DitherSeed::Clock => quantize::dither_seed_from_clock(),
        // As fpack -qt: a checksum of the first tile's values.
        DitherSeed::FirstTile => match first_tile {
            Pixels::F32(v) => quantize::dither_seed_from_f32_tile(v),
            Pixels::F64(v) => quantize::dither_seed_from_f64_tile(v),
            other => quantize::dither_seed_from_bytes(&other.to_be_bytes()),
        },
        DitherSeed::Fixed(n) => n,
    }
}

/// Compress an image HDU. `Ok(None)`: the HDU is not an image with pixels
/// (or FZALGOR = 'NONE') and must be copied unchanged.
pub fn compress_image(hdu: &Hdu, opts: &CompressOptions) -> Result<Option<CompressedHdu>> {
    let ctx = Context::hdu(hdu.number);
    let axes = hdu.image_axes();
    if axes.is_empty() || axes.contains(&0) {
        return Ok(None);
    }
    let bitpix = hdu.header.get_int("BITPIX").unwrap_or(0);
    let pixel_type = PixelType::from_bitpix(bitpix)
        .ok_or_else(|| Error::malformed(ctx.clone(), format!("invalid BITPIX = {bitpix}")))?;
    let Some(plan) = plan(hdu, opts, &ctx)? else {
        return Ok(None);
    };
    let Some((cube_plan, forced)) = cube_plan(&axes, pixel_type, &plan, opts) else {
        let mut plan = plan;
        if plan.codec.wraps_inner_codec() {
            // Asked for by name (FZALGOR, -T) for an image that is not an
            // integer cube: code it plane by plane with the standard codec.
            let wrapper = plan.codec.id();
            plan.codec = cube::default_inner();
            plan.notes.push(format!(
                "{wrapper} needs an integer image with 3 or more axes; used {}",
                plan.codec.id()
            ));
        }
        return compress_planned(hdu, opts, plan, &axes, pixel_type, bitpix, ctx).map(Some);
    };
    if forced {
        return compress_planned(hdu, opts, cube_plan, &axes, pixel_type, bitpix, ctx).map(Some);
    }
    let inner = plan.codec.id();
    if plan.codec.is_standard() {
        // Standard by default: with a FITS-standard codec the output stays
        // standard; CUBE_1 is only measured, for -v and -T.
        let mut planes = compress_planned(hdu, opts, plan, &axes, pixel_type, bitpix, ctx.clone())?;
        if opts.report_cube_saving {
            if let Ok(cubed) =
                compress_planned(hdu, opts, cube_plan, &axes, pixel_type, bitpix, ctx)
            {
                planes.summary.notes.push(format!(
                    "cube: CUBE_1 (inner {inner}) would code this cube {:.2}x smaller than {inner} plane by plane; \
                     not used, since standard readers refuse it (--cube on, or a non-standard codec with --cube auto, to use it)",
                    planes.summary.compressed_bytes as f64 / cubed.summary.compressed_bytes.max(1) as f64
                ));
            }
        }
        return Ok(Some(planes));
    }
    // Auto with a non-standard codec: both ways, and CUBE_1 only when it
    // pays for itself.
    let planes = compress_planned(hdu, opts, plan, &axes, pixel_type, bitpix, ctx.clone())?;
    let cubed = match compress_planned(hdu, opts, cube_plan, &axes, pixel_type, bitpix, ctx) {
        Ok(c) => c,
        Err(e) => {
            let mut planes = planes;
            planes.summary.notes.push(format!(
                "cube: CUBE_1 failed ({e}); kept {inner} plane by plane"
            ));
            return Ok(Some(planes));
        }
    };
    let ratio =
        |c: &CompressedHdu| c.summary.raw_bytes as f64 / c.summary.compressed_bytes.max(1) as f64;
    let (r_planes, r_cube) = (ratio(&planes), ratio(&cubed));
    let keep_cube = (cubed.summary.compressed_bytes as f64)
        < (planes.summary.compressed_bytes as f64) * (1.0 - CUBE_MIN_GAIN);
    let mut chosen = if keep_cube { cubed } else { planes };
    chosen.summary.notes.push(if keep_cube {
        format!(
            "cube: CUBE_1 (inner {inner}, inter-plane residuals) ratio {r_cube:.3} vs {r_planes:.3} plane by plane; \
             kept CUBE_1, which standard fpack/funpack/astropy refuse (--cube off for a standard file)"
        )
    } else {
        format!(
            "cube: CUBE_1 (inner {inner}) ratio {r_cube:.3} vs {r_planes:.3} plane by plane; kept {inner}"
        )
    });
    Ok(Some(chosen))
}

/// The CUBE_1 plan for this image, and whether it is forced (`--cube on`,
/// FZALGOR = 'CUBE_1'), or `None` when cube coding does not apply.
fn cube_plan(
    axes: &[usize],
    pixel_type: PixelType,
    plan: &Plan,
    opts: &CompressOptions,
) -> Option<(Plan, bool)> {
    let explicit = plan.codec.wraps_inner_codec();
    let (inner, forced, predictor) = match (explicit, opts.cube) {
        (true, CubeMode::On(p)) => (cube::default_inner(), true, p),
        (true, _) => (cube::default_inner(), true, Predictor::Auto),
        (false, CubeMode::Off) => return None,
        (false, CubeMode::On(p)) => (plan.codec, true, p),
        (false, CubeMode::Auto) => (plan.codec, false, Predictor::Auto),
    };
    let quantized = pixel_type.is_float() && plan.quantize.is_some_and(|q| q.level != 0.0);
    let planes: usize = axes.iter().skip(2).product();
    if axes.len() < 3 || planes < 2 || quantized || !cube::inner_usable(inner, pixel_type) {
        return None;
    }
    let mut notes = plan.notes.clone();
    if explicit && opts.cube != CubeMode::Off {
        notes.push(format!("CUBE_1 with inner codec {}", inner.id()));
    }
    let params = cube::params_for(
        inner,
        pixel_type,
        &plan.codec_options,
        cube::DEFAULT_AXIS,
        predictor,
    );
    Some((
        Plan {
            codec: &cube::Cube,
            tiling: Tiling::Axes(cube_tile_axes(axes, &plan.tiling)),
            params: Some(params),
            notes,
            ..plan.clone()
        },
        forced,
    ))
}

/// Pixels per CUBE_1 tile by default: large enough for the planes' blocks
/// to code well, small enough that tiles still run in parallel and the
/// per-tile working memory (a few i32/i64 copies) stays modest.
pub const CUBE_DEFAULT_TILE_PIXELS: usize = 1 << 22;

/// CUBE_1 tiles span every plane: the user's `-t` axes when they already
/// span at least two planes of axis 3 (or `-w`), else full-width blocks of
/// rows across all planes of axes 3 and up (axis 3 only when a row across
/// all of them would exceed [`CUBE_DEFAULT_TILE_PIXELS`]).
pub fn cube_tile_axes(image: &[usize], tiling: &Tiling) -> Vec<usize> {
    match tiling {
        Tiling::Whole => return image.to_vec(),
        Tiling::Axes(_) => {
            if let Ok(t) = resolve_tile_axes(image, tiling, cube::Cube.id()) {
                if t.len() >= 3 && t[2] >= 2 {
                    return t;
                }
            }
        }
        Tiling::Rows => {}
    }
    let mut tile = image.to_vec();
    let mut per_row: usize = image[0] * image[2..].iter().product::<usize>();
    if per_row > CUBE_DEFAULT_TILE_PIXELS {
        for t in tile.iter_mut().skip(3) {
            *t = 1;
        }
        per_row = image[0] * image[2];
    }
    tile[1] = (CUBE_DEFAULT_TILE_PIXELS / per_row.max(1)).clamp(1, image[1]);
    tile
}

/// Compress with a settled plan (codec, tiles, parameters).
fn compress_planned(
    hdu: &Hdu,
    opts: &CompressOptions,
    mut plan: Plan,
    axes: &[usize],
    pixel_type: PixelType,
    bitpix: i64,
    ctx: Context,
) -> Result<CompressedHdu> {
    let quantized = pixel_type.is_float() && plan.quantize.is_some_and(|q| q.level != 0.0);
    let plio_shift = plio_offset(plan.codec, pixel_type, &hdu.header);
    let coded_type = if quantized || plio_shift != 0 {
        PixelType::I32
    } else {
        pixel_type
    };
    if !plan.codec.supports(coded_type) {
        let fallback = codec::standard::fallback_for(coded_type);
        plan.notes.push(format!(
            "{} cannot code BITPIX={bitpix}{}; used {}",
            plan.codec.id(),
            if quantized { " (quantized)" } else { "" },
            fallback.id()
        ));
        plan.codec = fallback;
    }
    if pixel_type.is_float() && !quantized {
        plan.notes
            .push("floating-point pixels kept lossless (use -q to quantize)".into());
    }
    let codec = plan.codec;

    let tile_axes = resolve_tile_axes(axes, &plan.tiling, codec.id())?;
    let grid = TileGrid::new(axes, &tile_axes, &opts.limits, &ctx)?;
    let params = plan
        .params
        .clone()
        .unwrap_or_else(|| codec.encode_params(coded_type, &plan.codec_options));
    let elem = pixel_type.size();
    let image = hdu.data_bytes();
    let expected = grid.n_pixels() * elem;
    if image.len() < expected {
        return Err(Error::malformed(ctx, "data unit is shorter than the image"));
    }
    let image = &image[..expected];

    let no_compress = codec.stores_uncompressed();
    // A lossy codec (Hcompress with a scale) cannot be checked tile by tile
    // for equality; the file level check bounds its values instead.
    let lossy_codec = !codec.is_lossless(&params);
    let dither_seed = if quantized {
        seed_for(
            &plan,
            &Pixels::from_be_bytes(pixel_type, &grid.gather(image, elem, 0)),
        )
    } else {
        0
    };
    let mut qspec = plan.quantize.unwrap_or(QuantizeSpec {
        method: QuantizeMethod::SubtractiveDither1,
        level: 4.0,
    });
    if codec.dither2_zcmptype().is_none() && qspec.method == QuantizeMethod::SubtractiveDither2 {
        // As cfitsio: this codec (HCOMPRESS_1) cannot keep exact zeros.
        qspec.method = QuantizeMethod::SubtractiveDither1;
    }

    // Each tile: its table row, and whether it held null (NaN) pixels.
    let tiles: Vec<(TileRow, bool)> = (0..grid.n_tiles())
        .into_par_iter()
        .map_init(
            Vec::new,
            |scratch: &mut Vec<u8>, index| -> Result<(TileRow, bool)> {
                let (_, shape) = grid.tile_bounds(index);
                let spec = TileSpec {
                    shape: &shape,
                    pixel_type: coded_type,
                    params: &params,
                    context: opts.context,
                };
                let codec_error = |source| Error::Codec {
                    context: ctx.clone().tile(index + 1),
                    algorithm: codec.id().to_string(),
                    error: source,
                };
                // Every tile is decoded right after it is encoded and compared
                // with what went in, in the same parallel task: a codec bug can
                // never reach a file unnoticed.
                let check = |algorithm: &dyn Codec,
                             coded: &[u8],
                             spec: &TileSpec,
                             expected: &Pixels|
                 -> Result<()> {
                    let back = algorithm
                        .decode(coded, spec)
                        .map_err(|source| Error::Codec {
                            context: ctx.clone().tile(index + 1),
                            algorithm: algorithm.id().to_string(),
                            error: source,
                        })?;
                    if !back.bits_eq(expected) {
                        return Err(Error::Verification {
                            context: ctx.clone().tile(index + 1),
                            message: format!(
                                "{} did not decode back to the tile's pixels",
                                algorithm.id()
                            ),
                        });
                    }
                    Ok(())
                };
                let source = grid
                    .contiguous_range(index)
                    .map(|r| &image[r.start * elem..r.end * elem]);
                // Lossless tiles that are runs of the image, with a codec that
                // reads and writes FITS bytes (RICE_1): coded from the image's
                // own bytes, decoded back into a scratch buffer, and compared
                // with those same bytes; no typed copies.
                if let (Some(source), false) = (source, quantized || plio_shift != 0 || lossy_codec)
                {
                    if let Some(coded) = codec.encode_be(source, &spec) {
                        let mut coded = coded.map_err(codec_error)?;
                        coded.shrink_to_fit();
                        if scratch.len() != source.len() {
                            scratch.resize(source.len(), 0);
                        }
                        let direct = codec
                            .decode_be_into(&coded, &spec, scratch)
                            .map_err(codec_error)?;
                        if !direct {
                            check(
                                codec,
                                &coded,
                                &spec,
                                &Pixels::from_be_bytes(pixel_type, source),
                            )?;
                        } else if scratch[..] != *source {
                            return Err(Error::Verification {
                                context: ctx.clone().tile(index + 1),
                                message: format!(
                                    "{} did not decode back to the tile's pixels",
                                    codec.id()
                                ),
                            });
                        }
                        let row = if no_compress {
                            TileRow {
                                uncompressed: coded,
                                ..Default::default()
                            }
                        } else {
                            TileRow {
                                compressed: coded,
                                ..Default::default()
                            }
                        };
                        return Ok((row, false));
                    }
                }
                let mut pixels = match source {
                    Some(bytes) => Pixels::from_be_bytes(pixel_type, bytes),
                    None => Pixels::from_be_bytes(pixel_type, &grid.gather(image, elem, index)),
                };
                if plio_shift != 0 {
                    if let Pixels::I16(v) = &pixels {
                        pixels =
                            Pixels::I32(v.iter().map(|&x| i32::from(x) + plio_shift).collect());
                    }
                }
                if !quantized {
                    let mut coded = codec.encode(&pixels, &spec).map_err(codec_error)?;
                    // Encoders reserve room for the worst case; thousands of
                    // half-empty buffers would spread the compressed image over
                    // twice the pages (and page faults) it needs.
                    coded.shrink_to_fit();
                    if !lossy_codec {
                        check(codec, &coded, &spec, &pixels)?;
                    }
                    if no_compress {
                        return Ok((
                            TileRow {
                                uncompressed: coded,
                                ..Default::default()
                            },
                            false,
                        ));
                    }
                    return Ok((
                        TileRow {
                            compressed: coded,
                            ..Default::default()
                        },
                        false,
                    ));
                }
                let (width, height) = spec.width_height();
                let q = match &pixels {
                    Pixels::F32(v) => {
                        quantize::quantize_f32(v, width, height, index + 1, dither_seed, &qspec)
                    }
                    Pixels::F64(v) => {
                        quantize::quantize_f64(v, width, height, index + 1, dither_seed, &qspec)
                    }
                    _ => None,
                };
                match q {
                    Some(q) => {
                        let any_null = q.any_null;
                        let ints = Pixels::I32(q.values);
                        let mut compressed = codec.encode(&ints, &spec).map_err(codec_error)?;
                        compressed.shrink_to_fit();
                        if !lossy_codec {
                            check(codec, &compressed, &spec, &ints)?;
                        }
                        Ok((
                            TileRow {
                                compressed,
                                zscale: q.scale,
                                zzero: q.zero,
                                ..Default::default()
                            },
                            any_null,
                        ))
                    }
                    None => {
                        // Not quantizable (e.g. no noise): stored losslessly, as cfitsio does.
                        let gzip = codec::standard::gzip1();
                        let raw_spec = TileSpec {
                            shape: &shape,
                            pixel_type,
                            params: &Params::new(),
                            context: opts.context,
                        };
                        let gz =
                            gzip.encode(&pixels, &raw_spec)
                                .map_err(|source| Error::Codec {
                                    context: ctx.clone().tile(index + 1),
                                    algorithm: gzip.id().into(),
                                    error: source,
                                })?;
                        check(gzip, &gz, &raw_spec, &pixels)?;
                        // The original bits are kept exactly (cfitsio would
                        // canonicalise NaNs here); nulls still need ZBLANK.
                        let any_null = match &pixels {
                            Pixels::F32(v) => v.iter().any(|x| !x.is_finite()),
                            Pixels::F64(v) => v.iter().any(|x| !x.is_finite()),
                            _ => false,
                        };
                        Ok((
                            TileRow {
                                gzip_fallback: gz,
                                ..Default::default()
                            },
                            any_null,
                        ))
                    }
                }
            },
        )
        .collect::<Result<_>>()?;

    let any_null = tiles.iter().any(|(_, null)| *null);
    let rows: Vec<TileRow> = tiles.into_iter().map(|(row, _)| row).collect();
    let any_fallback = rows.iter().any(|r| !r.gzip_fallback.is_empty());
    let layout = Layout {
        heap_element: codec.heap_element(),
        gzip_fallback: any_fallback,
        uncompressed_element: no_compress.then_some(match coded_type {
            PixelType::U8 => 'B',
            PixelType::I16 => 'I',
            PixelType::I32 => 'J',
            PixelType::I64 => 'K',
            PixelType::F32 => 'E',
            PixelType::F64 => 'D',
        }),
        scale_zero: quantized,
        zblank_column: false,
    };
    let (mut cards, data) = table::write_table(&rows, layout);
    check_table_layout(&cards, &data, &rows, layout, &ctx)?;
    cards.push(Card::new_logical(
        "ZIMAGE",
        true,
        Some("extension contains compressed image"),
    ));
    for (i, t) in tile_axes.iter().enumerate() {
        cards.push(Card::new_int(
            &format!("ZTILE{}", i + 1),
            *t as i64,
            Some("size of tiles to be compressed"),
        ));
    }
    // cfitsio marks SUBTRACTIVE_DITHER_2 Rice files as 'RICE_ONE' so that
    // readers too old to restore exact zeros refuse them instead of
    // returning wrong values.
    let zcmptype = match codec.dither2_zcmptype() {
        Some(marked) if quantized && qspec.method == QuantizeMethod::SubtractiveDither2 => marked,
        _ => codec.id(),
    };
    cards.push(Card::new_string(
        "ZCMPTYPE",
        zcmptype,
        Some("compression algorithm"),
    ));
    if quantized && any_null {
        cards.push(Card::new_int(
            "ZBLANK",
            NULL_VALUE as i64,
            Some("null value in the compressed integer array"),
        ));
    }
    for (i, (name, value)) in params.0.iter().enumerate() {
        let n = i + 1;
        cards.push(Card::new_string(
            &format!("ZNAME{n}"),
            name,
            Some("compression parameter name"),
        ));
        let key = format!("ZVAL{n}");
        cards.push(match value {
            ParamValue::Int(v) => Card::new_int(&key, *v, Some("compression parameter value")),
            ParamValue::Float(v) => Card::new_float(&key, *v, Some("compression parameter value")),
            ParamValue::Text(v) => Card::new_string(&key, v, Some("compression parameter value")),
        });
    }
    if !hdu.header.contains("EXTNAME") {
        cards.push(Card::new_string(
            "EXTNAME",
            "COMPRESSED_IMAGE",
            Some("name of this binary table extension"),
        ));
    }
    let mut header = Header::from_cards(cards);
    for card in image_cards_for_table(&hdu.header) {
        // Directives steer this compression only; fpack keeps them, so do we.
        header.push(card);
    }
    header.strip_trailing_blanks();
    if quantized {
        let method = match qspec.method {
            QuantizeMethod::NoDither => "NO_DITHER",
            QuantizeMethod::SubtractiveDither1 => "SUBTRACTIVE_DITHER_1",
            QuantizeMethod::SubtractiveDither2 => "SUBTRACTIVE_DITHER_2",
        };
        header.push(Card::new_string(
            "ZQUANTIZ",
            method,
            Some("Pixel Quantization Algorithm"),
        ));
        if qspec.method != QuantizeMethod::NoDither {
            header.push(Card::new_int(
                "ZDITHER0",
                dither_seed as i64,
                Some("dithering offset when quantizing floats"),
            ));
        }
    }
    header.reserve_blocks(reserved_header_blocks(&hdu.header, &header));
    // The header must restore to the source's cards.
    let restored = super::keywords::restore_image_header(&header, bitpix, axes, hdu.is_primary());
    if super::keywords::non_structural(&restored) != super::keywords::non_structural(&hdu.header) {
        return Err(Error::Verification {
            context: ctx,
            message: "the compressed header would not restore the image's header cards".into(),
        });
    }
    let mut notes = plan.notes;
    if any_fallback {
        notes.push("some tiles could not be quantized and were stored losslessly (GZIP_1)".into());
    }
    let summary = CompressSummary {
        algorithm: codec.id().to_string(),
        tile_axes,
        n_tiles: grid.n_tiles(),
        lossless: !quantized && !lossy_codec,
        lossy_codec,
        raw_bytes: expected as u64,
        compressed_bytes: data.len() as u64,
        notes,
    };
    Ok(CompressedHdu {
        header,
        data,
        summary,
    })
}

/// Some codecs (PLIO_1) code the physical values of unsigned 16-bit images
/// (the stored value plus 32768 when BZERO = 32768), as cfitsio does
/// ([`Codec::codes_unsigned_16_physically`]): the offset to add to stored
/// int16 values before coding, 0 when none applies.
pub fn plio_offset(codec: &dyn Codec, pixel_type: PixelType, header: &Header) -> i32 {
    let unsigned = header.get_float("BZERO") == Some(32768.0)
        && header.get_float("BSCALE").is_none_or(|s| s == 1.0);
    if codec.codes_unsigned_16_physically() && pixel_type == PixelType::I16 && unsigned {
        32768
    } else {
        0
    }
}

/// The table just built must hand every tile's bytes back exactly: parse it
/// as a reader would and compare each descriptor's bytes with the tile's.
fn check_table_layout(
    cards: &[Card],
    data: &[u8],
    rows: &[TileRow],
    layout: Layout,
    ctx: &Context,
) -> Result<()> {
    let header = Header::from_cards(cards.to_vec());
    let table = table::CompressedTable::parse(&header, data, ctx)?;
    let fail = |m: &str| Error::Verification {
        context: ctx.clone(),
        message: m.to_string(),
    };
    if table.n_rows() != rows.len() {
        return Err(fail("the compressed table has the wrong number of rows"));
    }
    let main = table
        .column("COMPRESSED_DATA")
        .ok_or_else(|| fail("no COMPRESSED_DATA column"))?;
    let gzip = table.column("GZIP_COMPRESSED_DATA");
    let raw = table.column("UNCOMPRESSED_DATA");
    let scale = table.column("ZSCALE");
    let zero = table.column("ZZERO");
    for (i, row) in rows.iter().enumerate() {
        let same = table.var_bytes(i, main)? == row.compressed.as_slice()
            && gzip.map_or(Ok(true), |g| {
                table
                    .var_bytes(i, g)
                    .map(|b| b == row.gzip_fallback.as_slice())
            })?
            && raw.map_or(Ok(true), |r| {
                table
                    .var_bytes(i, r)
                    .map(|b| b == row.uncompressed.as_slice())
            })?
            && (!layout.scale_zero
                || (scale
                    .map_or(Ok(f64::NAN), |c| table.scalar(i, c))?
                    .to_bits()
                    == row.zscale.to_bits()
                    && zero.map_or(Ok(f64::NAN), |c| table.scalar(i, c))?.to_bits()
                        == row.zzero.to_bits()));
        if !same {
            return Err(Error::Verification {
                context: ctx.clone().tile(i + 1),
                message: "the compressed table does not hold the tile's bytes".into(),
            });
        }
    }
    Ok(())
}

/// How many header blocks fpack gives a compressed HDU: the image header's
/// blocks of free space beyond what its keywords need are kept, on top of
/// what the table's own keywords need. Checksum keywords added afterwards
/// go into that space. Measured against Debian's fpack 4.2 over headers of
/// 0..60 keywords and 0..110 trailing blank cards, with and without
/// checksums: the same size every time.
fn reserved_header_blocks(image: &Header, table: &Header) -> usize {
    const CARDS_PER_BLOCK: usize = crate::fits::BLOCK_LEN / crate::fits::card::CARD_LEN;
    let blocks = |cards: usize| (cards + 1).div_ceil(CARDS_PER_BLOCK);
    let spare = image.blocks() - blocks(image.len() - image.trailing_blanks());
    blocks(table.len()) + spare
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_check_catches_a_row_that_does_not_hold_its_tile() {
        let rows = vec![
            TileRow {
                compressed: vec![1, 2, 3],
                ..Default::default()
            },
            TileRow {
                compressed: vec![4, 5],
                ..Default::default()
            },
        ];
        let layout = Layout {
            heap_element: 'B',
            gzip_fallback: false,
            uncompressed_element: None,
            scale_zero: false,
            zblank_column: false,
        };
        let (cards, mut data) = table::write_table(&rows, layout);
        let ctx = Context::hdu(2);
        assert!(check_table_layout(&cards, &data, &rows, layout, &ctx).is_ok());
        // Flip one heap byte: the check must name the tile.
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let err = check_table_layout(&cards, &data, &rows, layout, &ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("HDU 2") && err.contains("tile 2"), "{err}");
    }
}
