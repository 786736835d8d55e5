//! Whole arrays (not FITS files) coded with one codec: the format behind the
//! Python API and its numcodecs/zarr codecs.
//!
//! An array of up to [`MAX_ARRAY_AXES`] axes is cut into tiles as fpack-ng
//! cuts an image (the codec's default strips, or the caller's tile shape),
//! the tiles are coded in parallel with the same codec calls as FITS tiles,
//! and the result is one self-describing stream, because numcodecs and zarr
//! hand a codec nothing but bytes on decoding:
//!
//! ```text
//! "FPNGAR" version(u8)=1 flags(u8)=0 dtype(2 ASCII: u1 i1 i2 u2 i4 u4 i8 u8 f4 f8)
//! ndim(u8) len(u8) ZCMPTYPE(len bytes)
//! shape[ndim] tile[ndim]         u64 each, numpy order (slowest axis first)
//! nparams(u16), per parameter: len(u8) name, kind(u8: 1 int, 2 float, 3 text),
//!     i64 | f64 | len(u16) text   (the ZNAMEn/ZVALn pairs the tiles were coded with)
//! ntiles(u64) size[ntiles](u64)  tiles in FITS order (first axis fastest)
//! tile bytes, concatenated       exactly as a FITS heap would hold them
//! CRC-32 (u32) of everything before it
//! ```
//!
//! All integers are little-endian. Unsigned and signed-byte arrays are coded
//! as FITS stores them (BZERO convention): uint16 as int16 with the sign bit
//! flipped (value - 32768), int8 as uint8 + 128, and likewise uint32/uint64.
//! Every field is checked before it is used (a damaged stream is an error,
//! never a panic or an allocation the shape does not imply), and the CRC
//! catches damage a codec could not notice.
#![forbid(unsafe_code)]

use rayon::prelude::*;

use fpackng::codec::{EncodeOptions, ParamValue, Params};
use fpackng::pack::compress::{cube_tile_axes, resolve_tile_axes};
use fpackng::pack::Tiling;
use fpackng::tile::{PixelType, TileGrid};
use fpackng::{Context, Limits};

use crate::core::{self, ShimError, TileJob};

pub const MAGIC: &[u8; 6] = b"FPNGAR";
pub const FORMAT_VERSION: u8 = 1;
/// Arrays of 1 to this many axes (numpy's own limit is 64; images and
/// cubes need 2 to 4).
pub const MAX_ARRAY_AXES: usize = 8;

/// A numpy element type and how it is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementType {
    /// numpy's kind and size, e.g. "u2".
    pub code: &'static str,
    /// The FITS pixel type the tiles are coded as.
    pub pixel_type: PixelType,
    /// Whether the sign bit is flipped on the way in and out (the FITS
    /// BZERO convention for unsigned integers and signed bytes).
    pub flip_sign: bool,
}

pub const ELEMENT_TYPES: &[ElementType] = &[
    ElementType {
        code: "u1",
        pixel_type: PixelType::U8,
        flip_sign: false,
    },
    ElementType {
        code: "i1",
        pixel_type: PixelType::U8,
        flip_sign: true,
    },
    ElementType {
        code: "i2",
        pixel_type: PixelType::I16,
        flip_sign: false,
    },
    ElementType {
        code: "u2",
        pixel_type: PixelType::I16,
        flip_sign: true,
    },
    ElementType {
        code: "i4",
        pixel_type: PixelType::I32,
        flip_sign: false,
    },
    ElementType {
        code: "u4",
        pixel_type: PixelType::I32,
        flip_sign: true,
    },
    ElementType {
        code: "i8",
        pixel_type: PixelType::I64,
        flip_sign: false,
    },
    ElementType {
        code: "u8",
        pixel_type: PixelType::I64,
        flip_sign: true,
    },
    ElementType {
        code: "f4",
        pixel_type: PixelType::F32,
        flip_sign: false,
    },
    ElementType {
        code: "f8",
        pixel_type: PixelType::F64,
        flip_sign: false,
    },
];

/// The element type for a numpy code ("u2", ...).
pub fn element_type(code: &str) -> Result<ElementType, ShimError> {
    ELEMENT_TYPES
        .iter()
        .copied()
        .find(|e| e.code == code)
        .ok_or_else(|| {
            ShimError::BadArgument(format!(
                "dtype '{code}' is not one of {}",
                ELEMENT_TYPES
                    .iter()
                    .map(|e| e.code)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Flips the sign bit of every native-endian element of `size` bytes.
fn flip_sign_bits(bytes: &mut [u8], size: usize) {
    let msb = if cfg!(target_endian = "little") {
        size - 1
    } else {
        0
    };
    for element in bytes.chunks_exact_mut(size) {
        element[msb] ^= 0x80;
    }
}

/// What a stream says about the array in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayHeader {
    pub element: ElementType,
    pub zcmptype: String,
    /// numpy order (slowest axis first).
    pub shape: Vec<usize>,
    /// numpy order, clipped to the shape.
    pub tile: Vec<usize>,
    pub params: Params,
    pub tile_sizes: Vec<usize>,
    /// Offset of the first tile's bytes.
    pub data_start: usize,
}

impl ArrayHeader {
    pub fn pixels(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn nbytes(&self) -> usize {
        self.pixels() * self.element.pixel_type.size()
    }
}

fn checked_pixels(shape: &[usize]) -> Result<usize, ShimError> {
    if shape.is_empty() || shape.len() > MAX_ARRAY_AXES {
        return Err(ShimError::BadArgument(format!(
            "an array of {} axes (1 to {MAX_ARRAY_AXES} are coded)",
            shape.len()
        )));
    }
    if shape.contains(&0) {
        return Err(ShimError::BadArgument(format!(
            "array shape {shape:?} has no pixels"
        )));
    }
    let limit = Limits::default().max_hdu_bytes;
    shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .filter(|&n| n.saturating_mul(8) <= limit)
        .map(|n| n as usize)
        .ok_or_else(|| ShimError::Limit(format!("array shape {shape:?} exceeds {limit} bytes")))
}

fn grid(shape_numpy: &[usize], tile_numpy: &[usize]) -> Result<TileGrid, ShimError> {
    let image: Vec<usize> = shape_numpy.iter().rev().copied().collect();
    let tile: Vec<usize> = tile_numpy.iter().rev().copied().collect();
    TileGrid::new(&image, &tile, &Limits::default(), &Context::default())
        .map_err(|e| ShimError::Limit(e.to_string()))
}

/// The tile shape (numpy order) for an array: the caller's (0 = whole
/// axis), or the one fpack-ng would choose for an image of this shape.
pub fn tile_shape(
    zcmptype: &str,
    shape_numpy: &[usize],
    tile_numpy: Option<&[usize]>,
) -> Result<Vec<usize>, ShimError> {
    let codec = core::find_codec(zcmptype)?;
    let image: Vec<usize> = shape_numpy.iter().rev().copied().collect();
    // A codec that codes planes with an inner codec (CUBE_1) needs a cube.
    let is_cube = codec.wraps_inner_codec();
    if is_cube && image.len() < 3 {
        return Err(ShimError::Unsupported(format!(
            "{} codes arrays of 3 or more axes, not {}",
            codec.id(),
            image.len()
        )));
    }
    let tiling = match tile_numpy {
        Some(t) if t.len() != image.len() => {
            return Err(ShimError::BadArgument(format!(
                "tile shape {t:?} has {} axes, the array {}",
                t.len(),
                image.len()
            )))
        }
        Some(t) => Tiling::Axes(
            t.iter()
                .rev()
                .zip(&image)
                .map(|(&t, &n)| if t == 0 { n } else { t })
                .collect(),
        ),
        None => Tiling::Rows,
    };
    let tile = if is_cube {
        cube_tile_axes(&image, &tiling)
    } else {
        resolve_tile_axes(&image, &tiling, codec.id())
            .map_err(|e| ShimError::BadArgument(e.to_string()))?
    };
    Ok(tile.into_iter().rev().collect())
}

/// Codes an array of native-endian elements: the stream described above.
/// `user_params` override the codec's defaults (same ZNAMEn names).
pub fn encode_array(
    zcmptype: &str,
    dtype: &str,
    shape: &[usize],
    tile: Option<&[usize]>,
    user_params: &Params,
    native: &[u8],
) -> Result<Vec<u8>, ShimError> {
    let element = element_type(dtype)?;
    let codec = core::find_codec(zcmptype)?;
    if !codec.supports(element.pixel_type) {
        return Err(ShimError::Unsupported(format!(
            "{} does not code {dtype} arrays (FITS BITPIX={})",
            codec.id(),
            element.pixel_type.bitpix()
        )));
    }
    if !codec.can_encode() {
        return Err(ShimError::Unsupported(format!(
            "{} is read-only in this library",
            codec.id()
        )));
    }
    let pixels = checked_pixels(shape)?;
    let size = element.pixel_type.size();
    if native.len() != pixels * size {
        return Err(ShimError::BufferSize {
            needed: pixels * size,
            given: native.len(),
        });
    }
    let tile = tile_shape(codec.id(), shape, tile)?;
    let grid = grid(shape, &tile)?;
    let mut params = codec.encode_params(element.pixel_type, &EncodeOptions::default());
    for (name, value) in &user_params.0 {
        params.set(name, value.clone());
    }
    let bitpix = element.pixel_type.bitpix();
    let tiles: Vec<Vec<u8>> = (0..grid.n_tiles())
        .into_par_iter()
        .map(|index| {
            let (_, fits_shape) = grid.tile_bounds(index);
            let mut bytes = grid.gather(native, size, index);
            if element.flip_sign {
                flip_sign_bits(&mut bytes, size);
            }
            TileJob::new(codec.id(), bitpix, &fits_shape, &params)?.encode_native(&bytes)
        })
        .collect::<Result<_, ShimError>>()?;

    let mut out = Vec::with_capacity(64 + tiles.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[FORMAT_VERSION, 0]);
    out.extend_from_slice(element.code.as_bytes());
    out.push(shape.len() as u8);
    out.push(codec.id().len() as u8);
    out.extend_from_slice(codec.id().as_bytes());
    for &n in shape.iter().chain(&grid_tile_numpy(&grid)) {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    write_params(&mut out, &params)?;
    out.extend_from_slice(&(tiles.len() as u64).to_le_bytes());
    for t in &tiles {
        out.extend_from_slice(&(t.len() as u64).to_le_bytes());
    }
    for t in &tiles {
        out.extend_from_slice(t);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn grid_tile_numpy(grid: &TileGrid) -> Vec<usize> {
    grid.tile_axes().iter().rev().copied().collect()
}

fn write_params(out: &mut Vec<u8>, params: &Params) -> Result<(), ShimError> {
    let too_long = |what: &str| ShimError::BadParameter(format!("{what} is too long"));
    out.extend_from_slice(
        &u16::try_from(params.0.len())
            .map_err(|_| too_long("the parameter list"))?
            .to_le_bytes(),
    );
    for (name, value) in &params.0 {
        out.push(u8::try_from(name.len()).map_err(|_| too_long(name))?);
        out.extend_from_slice(name.as_bytes());
        match value {
            ParamValue::Int(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_le_bytes());
            }
            ParamValue::Float(f) => {
                out.push(2);
                out.extend_from_slice(&f.to_le_bytes());
            }
            ParamValue::Text(s) => {
                out.push(3);
                out.extend_from_slice(
                    &u16::try_from(s.len())
                        .map_err(|_| too_long(name))?
                        .to_le_bytes(),
                );
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    Ok(())
}

/// Reads fields off the front of a stream; running out is a damaged stream.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ShimError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| ShimError::Corrupt("the array stream is truncated".into()))?;
        let field = &self.bytes[self.at..end];
        self.at = end;
        Ok(field)
    }

    fn u8(&mut self) -> Result<u8, ShimError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ShimError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, ShimError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn usize(&mut self) -> Result<usize, ShimError> {
        usize::try_from(self.u64()?)
            .map_err(|_| ShimError::Corrupt("a size in the array stream is impossible".into()))
    }

    fn text(&mut self, n: usize) -> Result<String, ShimError> {
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| ShimError::Corrupt("text in the array stream is not UTF-8".into()))
    }
}

/// Parses and checks a stream's header (and its CRC).
pub fn read_header(stream: &[u8]) -> Result<ArrayHeader, ShimError> {
    if stream.len() < MAGIC.len() + 4 || &stream[..MAGIC.len()] != MAGIC {
        return Err(ShimError::Corrupt(
            "not an fpack-ng array stream (no FPNGAR signature)".into(),
        ));
    }
    let (body, crc) = stream.split_at(stream.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(ShimError::Corrupt(
            "the array stream is damaged (CRC-32 mismatch)".into(),
        ));
    }
    let mut f = Fields {
        bytes: body,
        at: MAGIC.len(),
    };
    let version = f.u8()?;
    if version != FORMAT_VERSION {
        return Err(ShimError::Unsupported(format!(
            "array stream version {version}; this library reads {FORMAT_VERSION}"
        )));
    }
    let _flags = f.u8()?;
    let code = f.text(2)?;
    let element = element_type(&code).map_err(|e| ShimError::Corrupt(e.to_string()))?;
    let ndim = usize::from(f.u8()?);
    let name_len = usize::from(f.u8()?);
    let zcmptype = f.text(name_len)?;
    let mut shape = Vec::with_capacity(ndim.min(MAX_ARRAY_AXES));
    for _ in 0..ndim {
        shape.push(f.usize()?);
    }
    checked_pixels(&shape).map_err(|e| ShimError::Corrupt(e.to_string()))?;
    let mut tile = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        tile.push(f.usize()?);
    }
    let mut params = Params::new();
    for _ in 0..f.u16()? {
        let len = usize::from(f.u8()?);
        let name = f.text(len)?;
        let value = match f.u8()? {
            1 => ParamValue::Int(i64::from_le_bytes(f.take(8)?.try_into().expect("8"))),
            2 => ParamValue::Float(f64::from_le_bytes(f.take(8)?.try_into().expect("8"))),
            3 => {
                let len = usize::from(f.u16()?);
                ParamValue::Text(f.text(len)?)
            }
            k => return Err(ShimError::Corrupt(format!("parameter kind {k}"))),
        };
        params.set(&name, value);
    }
    let grid = grid(&shape, &tile).map_err(|e| ShimError::Corrupt(e.to_string()))?;
    if grid_tile_numpy(&grid) != tile {
        return Err(ShimError::Corrupt(
            "tile shape larger than the array".into(),
        ));
    }
    let ntiles = f.usize()?;
    if ntiles != grid.n_tiles() {
        return Err(ShimError::Corrupt(format!(
            "{ntiles} tiles where the shapes imply {}",
            grid.n_tiles()
        )));
    }
    // Each size takes 8 bytes of the stream: this bounds the allocation.
    if ntiles > body.len() / 8 {
        return Err(ShimError::Corrupt("the array stream is truncated".into()));
    }
    let mut tile_sizes = Vec::with_capacity(ntiles);
    for _ in 0..ntiles {
        tile_sizes.push(f.usize()?);
    }
    let data_start = f.at;
    let total = tile_sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
    if total != Some(body.len() - data_start) {
        return Err(ShimError::Corrupt(
            "tile sizes do not add up to the stream's length".into(),
        ));
    }
    Ok(ArrayHeader {
        element,
        zcmptype,
        shape,
        tile,
        params,
        tile_sizes,
        data_start,
    })
}

/// Decodes a stream into `out`: native-endian elements of the stream's
/// dtype, exactly `ArrayHeader::nbytes()` of them.
pub fn decode_array(stream: &[u8], out: &mut [u8]) -> Result<(), ShimError> {
    let header = read_header(stream)?;
    if out.len() != header.nbytes() {
        return Err(ShimError::BufferSize {
            needed: header.nbytes(),
            given: out.len(),
        });
    }
    let grid = grid(&header.shape, &header.tile)?;
    let mut offsets = Vec::with_capacity(header.tile_sizes.len());
    let mut at = header.data_start;
    for &size in &header.tile_sizes {
        offsets.push(at..at + size);
        at += size;
    }
    let bitpix = header.element.pixel_type.bitpix();
    let size = header.element.pixel_type.size();
    let tiles: Vec<Vec<u8>> = offsets
        .into_par_iter()
        .enumerate()
        .map(|(index, range)| {
            let (_, fits_shape) = grid.tile_bounds(index);
            let job = TileJob::new(&header.zcmptype, bitpix, &fits_shape, &header.params)?;
            let pixels = job.decode(&stream[range])?;
            let mut bytes = vec![0u8; job.pixel_bytes()];
            core::pixels_to_native(&pixels, &mut bytes);
            if header.element.flip_sign {
                flip_sign_bits(&mut bytes, size);
            }
            Ok(bytes)
        })
        .collect::<Result<_, ShimError>>()?;
    for (index, tile) in tiles.iter().enumerate() {
        grid.scatter(out, size, index, tile);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize, size: usize) -> Vec<u8> {
        (0..n * size)
            .map(|i| ((i * 7 + i / 13) % 251) as u8)
            .collect()
    }

    #[test]
    fn every_encodable_codec_and_type_round_trips() {
        for codec in fpackng::codec::REGISTRY.iter().filter(|c| c.can_encode()) {
            for element in ELEMENT_TYPES {
                if !codec.supports(element.pixel_type) {
                    continue;
                }
                let shape: &[usize] = if codec.id() == "CUBE_1" {
                    &[3, 20, 17]
                } else {
                    &[20, 17]
                };
                let size = element.pixel_type.size();
                let mut native = ramp(shape.iter().product(), size);
                if matches!(element.pixel_type, PixelType::F32 | PixelType::F64) {
                    native = (0..native.len() / size)
                        .flat_map(|i| {
                            let v = i as f64 * 0.5 - 3.0;
                            if size == 4 {
                                (v as f32).to_ne_bytes().to_vec()
                            } else {
                                v.to_ne_bytes().to_vec()
                            }
                        })
                        .collect();
                }
                if codec.id() == "PLIO_1" {
                    // PLIO_1 codes non-negative values below 2^24: coded
                    // zeros (the BZERO offset of unsigned types undone).
                    native = vec![0u8; native.len()];
                    if element.flip_sign {
                        flip_sign_bits(&mut native, size);
                    }
                }
                let stream = encode_array(
                    codec.id(),
                    element.code,
                    shape,
                    None,
                    &Params::new(),
                    &native,
                )
                .unwrap_or_else(|e| panic!("{} {}: {e}", codec.id(), element.code));
                let header = read_header(&stream).unwrap();
                assert_eq!(header.shape, shape);
                let mut back = vec![0u8; native.len()];
                decode_array(&stream, &mut back).unwrap();
                assert_eq!(back, native, "{} {}", codec.id(), element.code);
            }
        }
    }

    #[test]
    fn damage_is_an_error() {
        let native = ramp(40 * 30, 2);
        let stream = encode_array(
            "RICE_1",
            "u2",
            &[30, 40],
            Some(&[7, 0]),
            &Params::new(),
            &native,
        )
        .unwrap();
        let mut out = vec![0u8; native.len()];
        for cut in [0, 5, 20, stream.len() / 2, stream.len() - 1] {
            assert!(decode_array(&stream[..cut], &mut out).is_err());
        }
        for at in (0..stream.len()).step_by(7) {
            let mut bad = stream.clone();
            bad[at] ^= 0x5a;
            assert!(decode_array(&bad, &mut out).is_err(), "byte {at}");
        }
    }
}
