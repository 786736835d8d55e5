//! Decompressing a tile-compressed binary table back into image pixels.
//!
//! Everything the table says is checked before it is trusted: the image
//! size against the limits, the number of rows against the tile grid, every
//! heap descriptor against the heap, and every decoded tile's length against
//! its shape. A bad tile is an error naming the HDU and the tile.

use rayon::prelude::*;

use super::keywords::restore_image_header;
use crate::codec::{self, CodecContext, ParamValue, Params, TileSpec};
use crate::error::{Context, Error, Result};
use crate::fits::{hdu::axes, Hdu, Header, Value};
use crate::limits::Limits;
use crate::tile::quantize::{self, QuantizeMethod};
use crate::tile::table::CompressedTable;
use crate::tile::{PixelType, Pixels, TileGrid};

/// What a compressed HDU declares, parsed from its header.
#[derive(Debug, Clone)]
pub struct CompressedImageInfo {
    pub algorithm: String,
    pub pixel_type: PixelType,
    pub axes: Vec<usize>,
    pub tile_axes: Vec<usize>,
    pub params: Params,
    /// Quantization method when the pixels were quantized floats.
    pub quantize: Option<QuantizeMethod>,
    pub dither_seed: i32,
}

impl CompressedImageInfo {
    pub fn parse(header: &Header, ctx: &Context) -> Result<Self> {
        let bad = |m: String| Error::malformed(ctx.clone(), m);
        let zbitpix = header
            .get_int("ZBITPIX")
            .ok_or_else(|| bad("missing or invalid ZBITPIX".into()))?;
        let pixel_type = PixelType::from_bitpix(zbitpix)
            .ok_or_else(|| bad(format!("invalid ZBITPIX = {zbitpix}")))?;
        let axes = axes(header, "ZNAXIS")
            .ok_or_else(|| bad("missing or invalid ZNAXIS/ZNAXISn".into()))?;
        if axes.is_empty() {
            return Err(bad("ZNAXIS = 0: a compressed image without pixels".into()));
        }
        let mut tile_axes = Vec::with_capacity(axes.len());
        for (i, &n) in axes.iter().enumerate() {
            let key = format!("ZTILE{}", i + 1);
            let t = match header.get_int(&key) {
                Some(v) if v >= 1 => v as usize,
                Some(v) => return Err(bad(format!("{key} = {v} is not a positive tile size"))),
                None if i == 0 => n,
                None => 1,
            };
            tile_axes.push(t);
        }
        let algorithm = header
            .get_string("ZCMPTYPE")
            .ok_or_else(|| bad("missing ZCMPTYPE".into()))?
            .trim()
            .to_string();
        let mut params = Params::new();
        for i in 1..=999 {
            let Some(name) = header.get_string(&format!("ZNAME{i}")) else {
                break;
            };
            let value = match header.value(&format!("ZVAL{i}")) {
                Some(Value::Int(v)) => ParamValue::Int(v),
                Some(Value::Float(v)) => ParamValue::Float(v),
                Some(Value::Text(v)) => ParamValue::Text(v),
                Some(Value::Logical(b)) => ParamValue::Int(b as i64),
                _ => return Err(bad(format!("ZNAME{i} = '{name}' has no valid ZVAL{i}"))),
            };
            params.set(name.trim(), value);
        }
        let quantize = if pixel_type.is_float() {
            match header.get_string("ZQUANTIZ").as_deref().map(str::trim) {
                Some("NONE") => None,
                Some("NO_DITHER") => Some(QuantizeMethod::NoDither),
                Some("SUBTRACTIVE_DITHER_1") => Some(QuantizeMethod::SubtractiveDither1),
                Some("SUBTRACTIVE_DITHER_2") => Some(QuantizeMethod::SubtractiveDither2),
                Some(other) => return Err(bad(format!("unknown ZQUANTIZ = '{other}'"))),
                // Older writers quantized without saying so: a ZSCALE column
                // or keyword tells.
                None if header.contains("ZSCALE")
                    || (1..=999).any(|i| {
                        header.get_string(&format!("TTYPE{i}")).as_deref() == Some("ZSCALE")
                    }) =>
                {
                    Some(QuantizeMethod::NoDither)
                }
                None => None,
            }
        } else {
            None
        };
        let dither_seed = match header.get_int("ZDITHER0") {
            Some(v) if (1..=10000).contains(&v) => v as i32,
            Some(v) => return Err(bad(format!("ZDITHER0 = {v} is outside 1..10000"))),
            None => 1,
        };
        Ok(CompressedImageInfo {
            algorithm,
            pixel_type,
            axes,
            tile_axes,
            params,
            quantize,
            dither_seed,
        })
    }
}

/// A decompressed image: its restored header and big-endian pixel bytes.
#[derive(Debug, Clone)]
pub struct DecompressedImage {
    pub header: Header,
    pub data: Vec<u8>,
}

fn pixels_to_i32(p: Pixels) -> Option<Vec<i32>> {
    Some(match p {
        Pixels::I32(v) => v,
        Pixels::I16(v) => v.into_iter().map(i32::from).collect(),
        Pixels::U8(v) => v.into_iter().map(i32::from).collect(),
        _ => return None,
    })
}

/// Decodes the tiles of one compressed HDU, one at a time or in parallel,
/// after every table-level check has passed.
pub struct TileDecoder<'a> {
    pub info: CompressedImageInfo,
    pub grid: TileGrid,
    table: CompressedTable<'a>,
    codec: &'static dyn crate::codec::Codec,
    ctx: Context,
    compressed_col: Option<usize>,
    gzip_col: Option<usize>,
    raw_col: Option<usize>,
    scale_col: Option<usize>,
    zero_col: Option<usize>,
    blank_col: Option<usize>,
    scale_key: Option<f64>,
    zero_key: Option<f64>,
    blank_key: Option<i32>,
    /// See [`super::compress::plio_offset`].
    plio_shift: i32,
    /// Handed to the codec with every tile.
    context: CodecContext,
}

impl<'a> TileDecoder<'a> {
    pub fn new(hdu: &'a Hdu, limits: &Limits, context: &CodecContext) -> Result<Self> {
        let ctx = Context::hdu(hdu.number);
        let info = CompressedImageInfo::parse(&hdu.header, &ctx)?;
        let codec = codec::find(&info.algorithm).ok_or_else(|| {
            Error::unsupported(
                ctx.clone(),
                format!(
                    "unknown compression algorithm ZCMPTYPE = '{}'",
                    info.algorithm
                ),
            )
        })?;
        let grid = TileGrid::new(&info.axes, &info.tile_axes, limits, &ctx)?;
        let total = (grid.n_pixels() as u128) * info.pixel_type.size() as u128;
        if total > u128::from(limits.max_hdu_bytes) {
            return Err(Error::LimitExceeded {
                context: ctx,
                what: "the decompressed image size in bytes".into(),
                value: total,
                limit: limits.max_hdu_bytes.into(),
            });
        }
        let table = CompressedTable::parse(&hdu.header, hdu.data_bytes(), &ctx)?;
        if table.n_rows() != grid.n_tiles() {
            return Err(Error::malformed(
                ctx,
                format!(
                    "the table has {} rows but the image needs {} tiles",
                    table.n_rows(),
                    grid.n_tiles()
                ),
            ));
        }
        let compressed_col = table.column("COMPRESSED_DATA");
        let gzip_col = table.column("GZIP_COMPRESSED_DATA");
        let raw_col = table.column("UNCOMPRESSED_DATA");
        if compressed_col.is_none() && gzip_col.is_none() && raw_col.is_none() {
            return Err(Error::malformed(ctx, "no COMPRESSED_DATA column"));
        }
        let plio_shift = super::compress::plio_offset(codec, info.pixel_type, &hdu.header);
        Ok(TileDecoder {
            plio_shift,
            context: *context,
            scale_col: table.column("ZSCALE"),
            zero_col: table.column("ZZERO"),
            blank_col: table.column("ZBLANK"),
            scale_key: hdu.header.get_float("ZSCALE"),
            zero_key: hdu.header.get_float("ZZERO"),
            blank_key: hdu
                .header
                .get_int("ZBLANK")
                .and_then(|v| i32::try_from(v).ok()),
            info,
            grid,
            table,
            codec,
            ctx,
            compressed_col,
            gzip_col,
            raw_col,
        })
    }

    pub fn n_tiles(&self) -> usize {
        self.grid.n_tiles()
    }

    /// Decode tile `index` (from 0) into `out`, its big-endian pixel bytes
    /// (`out.len()` must be the tile's bytes): straight from the codec when
    /// it writes FITS bytes itself (RICE_1 tiles that are neither quantized
    /// nor shifted), else through [`TileDecoder::decode_tile`].
    pub fn decode_tile_into(&self, index: usize, out: &mut [u8]) -> Result<()> {
        let main = match self.compressed_col {
            Some(c) => self.table.var_bytes(index, c)?,
            None => &[],
        };
        if !main.is_empty() && self.info.quantize.is_none() && self.plio_shift == 0 {
            let (_, shape) = self.grid.tile_bounds(index);
            let spec = TileSpec {
                shape: &shape,
                pixel_type: self.info.pixel_type,
                params: &self.info.params,
                context: self.context,
            };
            if spec.len() * self.info.pixel_type.size() == out.len()
                && self
                    .codec
                    .decode_be_into(main, &spec, out)
                    .map_err(|e| Error::Codec {
                        context: self.ctx.clone().tile(index + 1),
                        algorithm: self.codec.id().to_string(),
                        error: e,
                    })?
            {
                return Ok(());
            }
        }
        let tile = self.decode_tile(index)?;
        if tile.len() != out.len() {
            return Err(Error::malformed(
                self.ctx.clone().tile(index + 1),
                "the tile has the wrong size",
            ));
        }
        out.copy_from_slice(&tile);
        Ok(())
    }

    /// Decode tile `index` (from 0) into its big-endian pixel bytes.
    pub fn decode_tile(&self, index: usize) -> Result<Vec<u8>> {
        let info = &self.info;
        let table = &self.table;
        let elem = info.pixel_type.size();
        let coded_type = if info.quantize.is_some() || self.plio_shift != 0 {
            PixelType::I32
        } else {
            info.pixel_type
        };
        let tctx = self.ctx.clone().tile(index + 1);
        let (_, shape) = self.grid.tile_bounds(index);
        let n = shape.iter().product::<usize>();
        let codec_err = |algorithm: &str, source| Error::Codec {
            context: tctx.clone(),
            algorithm: algorithm.to_string(),
            error: source,
        };
        let main = match self.compressed_col {
            Some(c) => table.var_bytes(index, c)?,
            None => &[],
        };
        if main.is_empty() {
            if let Some(g) = self.gzip_col {
                let bytes = table.var_bytes(index, g)?;
                if !bytes.is_empty() {
                    // Stored losslessly because it could not be quantized.
                    let gzip = codec::standard::gzip1();
                    let params = Params::new();
                    let spec = TileSpec {
                        shape: &shape,
                        pixel_type: info.pixel_type,
                        params: &params,
                        context: self.context,
                    };
                    let p = gzip
                        .decode(bytes, &spec)
                        .map_err(|e| codec_err(gzip.id(), e))?;
                    return Ok(p.to_be_bytes());
                }
            }
            if let Some(r) = self.raw_col {
                let bytes = table.var_bytes(index, r)?;
                let stored = match table.var_element(r) {
                    Some('B') => PixelType::U8,
                    Some('I') => PixelType::I16,
                    Some('J') => PixelType::I32,
                    Some('K') => PixelType::I64,
                    Some('E') => PixelType::F32,
                    Some('D') => PixelType::F64,
                    other => {
                        return Err(Error::malformed(
                            tctx,
                            format!("UNCOMPRESSED_DATA of type {other:?}"),
                        ))
                    }
                };
                if stored != info.pixel_type || bytes.len() != n * elem {
                    return Err(Error::malformed(
                        tctx,
                        "UNCOMPRESSED_DATA does not match the tile",
                    ));
                }
                return Ok(bytes.to_vec());
            }
        }
        let spec = TileSpec {
            shape: &shape,
            pixel_type: coded_type,
            params: &info.params,
            context: self.context,
        };
        let pixels = self
            .codec
            .decode(main, &spec)
            .map_err(|e| codec_err(self.codec.id(), e))?;
        if pixels.len() != n || pixels.pixel_type() != coded_type {
            return Err(Error::malformed(
                tctx,
                "the codec returned a tile of the wrong size or type",
            ));
        }
        if self.plio_shift != 0 {
            let Pixels::I32(v) = pixels else {
                return Err(Error::malformed(tctx, "PLIO_1 tile is not integer"));
            };
            let stored: Option<Vec<i16>> = v
                .iter()
                .map(|&x| i16::try_from(x - self.plio_shift).ok())
                .collect();
            let stored = stored
                .ok_or_else(|| Error::malformed(tctx, "PLIO_1 value out of range for uint16"))?;
            return Ok(Pixels::I16(stored).to_be_bytes());
        }
        let Some(method) = info.quantize else {
            return Ok(pixels.to_be_bytes());
        };
        let ints = pixels_to_i32(pixels)
            .ok_or_else(|| Error::malformed(tctx.clone(), "quantized tile is not integer"))?;
        let scale = match self.scale_col {
            Some(c) => table.scalar(index, c)?,
            None => self
                .scale_key
                .ok_or_else(|| Error::malformed(tctx.clone(), "no ZSCALE for a quantized tile"))?,
        };
        let zero = match self.zero_col {
            Some(c) => table.scalar(index, c)?,
            None => self
                .zero_key
                .ok_or_else(|| Error::malformed(tctx.clone(), "no ZZERO for a quantized tile"))?,
        };
        let zblank = match self.blank_col {
            Some(c) => Some(table.scalar(index, c)? as i32),
            None => self.blank_key,
        };
        let out = match info.pixel_type {
            PixelType::F32 => Pixels::F32(quantize::dequantize_f32(
                &ints,
                scale,
                zero,
                method,
                index + 1,
                info.dither_seed,
                zblank,
            )),
            _ => Pixels::F64(quantize::dequantize_f64(
                &ints,
                scale,
                zero,
                method,
                index + 1,
                info.dither_seed,
                zblank,
            )),
        };
        Ok(out.to_be_bytes())
    }
}

/// Tiles decoded per parallel batch: enough to keep every core busy while
/// bounding the memory held beside the image.
const TILES_PER_BATCH: usize = 256;

/// Decode every tile of a compressed HDU into the image's big-endian bytes.
pub fn decompress_pixels(
    hdu: &Hdu,
    limits: &Limits,
    context: &CodecContext,
) -> Result<(CompressedImageInfo, Vec<u8>)> {
    let decoder = TileDecoder::new(hdu, limits, context)?;
    let elem = decoder.info.pixel_type.size();
    let mut image = vec![0u8; decoder.grid.n_pixels() * elem];
    let n = decoder.n_tiles();
    // Tiles that are consecutive runs of the image (fpack's row tiles, or
    // any tiling of whole rows) are decoded straight into their own slice
    // of the image, all in parallel.
    let tile_len = decoder.grid.contiguous_range(0).map(|r| r.len());
    let consecutive = tile_len.is_some_and(|len| {
        (0..n).all(|i| {
            decoder.grid.contiguous_range(i)
                == Some(i * len..((i + 1) * len).min(decoder.grid.n_pixels()))
        })
    });
    if let (true, Some(len)) = (consecutive, tile_len) {
        image
            .par_chunks_mut(len * elem)
            .enumerate()
            .try_for_each(|(i, slice)| decoder.decode_tile_into(i, slice))?;
        return Ok((decoder.info, image));
    }
    let batch = TILES_PER_BATCH.max(rayon::current_num_threads() * 8);
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let tiles: Vec<Vec<u8>> = (start..end)
            .into_par_iter()
            .map(|i| decoder.decode_tile(i))
            .collect::<Result<_>>()?;
        for (offset, tile) in tiles.iter().enumerate() {
            decoder.grid.scatter(&mut image, elem, start + offset, tile);
        }
    }
    Ok((decoder.info, image))
}

/// Decompress a compressed HDU into an image HDU (`as_primary`: as the
/// primary array of the output file).
pub fn decompress_image(
    hdu: &Hdu,
    as_primary: bool,
    limits: &Limits,
    context: &CodecContext,
) -> Result<DecompressedImage> {
    let (info, data) = decompress_pixels(hdu, limits, context)?;
    let header = restore_image_header(
        &hdu.header,
        info.pixel_type.bitpix(),
        &info.axes,
        as_primary,
    );
    Ok(DecompressedImage { header, data })
}
