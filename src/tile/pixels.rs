//! Typed pixel buffers: what a codec receives and returns for one tile.
//!
//! FITS stores pixels big-endian; the tile layer converts them once into
//! native typed vectors so codecs work on plain numbers. Integer pixels are
//! the *stored* values: BZERO/BSCALE are never applied inside the
//! compression path (a uint16 frame with BZERO=32768 is coded as the signed
//! int16 values on disk, as fpack does), which is what makes the round trip
//! bit-exact for every value.

/// The numeric type of a FITS array, by BITPIX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelType {
    U8,
    I16,
    I32,
    I64,
    F32,
    F64,
}

impl PixelType {
    /// Every pixel type, in BITPIX order 8, 16, 32, 64, -32, -64.
    pub const ALL: [PixelType; 6] = [
        PixelType::U8,
        PixelType::I16,
        PixelType::I32,
        PixelType::I64,
        PixelType::F32,
        PixelType::F64,
    ];

    pub fn from_bitpix(bitpix: i64) -> Option<Self> {
        Some(match bitpix {
            8 => PixelType::U8,
            16 => PixelType::I16,
            32 => PixelType::I32,
            64 => PixelType::I64,
            -32 => PixelType::F32,
            -64 => PixelType::F64,
            _ => return None,
        })
    }

    pub fn bitpix(self) -> i64 {
        match self {
            PixelType::U8 => 8,
            PixelType::I16 => 16,
            PixelType::I32 => 32,
            PixelType::I64 => 64,
            PixelType::F32 => -32,
            PixelType::F64 => -64,
        }
    }

    /// Bytes per pixel.
    pub fn size(self) -> usize {
        (self.bitpix().unsigned_abs() / 8) as usize
    }

    pub fn is_float(self) -> bool {
        matches!(self, PixelType::F32 | PixelType::F64)
    }
}

/// One tile's pixels, in the type the codec codes.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    U8(Vec<u8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Pixels {
    pub fn pixel_type(&self) -> PixelType {
        match self {
            Pixels::U8(_) => PixelType::U8,
            Pixels::I16(_) => PixelType::I16,
            Pixels::I32(_) => PixelType::I32,
            Pixels::I64(_) => PixelType::I64,
            Pixels::F32(_) => PixelType::F32,
            Pixels::F64(_) => PixelType::F64,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Pixels::U8(v) => v.len(),
            Pixels::I16(v) => v.len(),
            Pixels::I32(v) => v.len(),
            Pixels::I64(v) => v.len(),
            Pixels::F32(v) => v.len(),
            Pixels::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Equal type, length and bit patterns (NaNs compare equal to identical
    /// NaNs, unlike `==`): what "lossless" means.
    pub fn bits_eq(&self, other: &Pixels) -> bool {
        match (self, other) {
            (Pixels::F32(a), Pixels::F32(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Pixels::F64(a), Pixels::F64(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            _ => self == other,
        }
    }

    /// Decode big-endian FITS bytes into typed pixels. `bytes.len()` must be
    /// a multiple of the pixel size.
    pub fn from_be_bytes(pixel_type: PixelType, bytes: &[u8]) -> Pixels {
        macro_rules! conv {
            ($t:ty, $n:expr, $variant:ident) => {
                Pixels::$variant(
                    bytes
                        .chunks_exact($n)
                        .map(|c| <$t>::from_be_bytes(c.try_into().unwrap()))
                        .collect(),
                )
            };
        }
        match pixel_type {
            PixelType::U8 => Pixels::U8(bytes.to_vec()),
            PixelType::I16 => conv!(i16, 2, I16),
            PixelType::I32 => conv!(i32, 4, I32),
            PixelType::I64 => conv!(i64, 8, I64),
            PixelType::F32 => conv!(f32, 4, F32),
            PixelType::F64 => conv!(f64, 8, F64),
        }
    }

    /// Append the big-endian FITS bytes of these pixels to `out`.
    pub fn write_be_bytes(&self, out: &mut Vec<u8>) {
        // Sized once, then filled element by element through fixed-size
        // chunks: the compiler turns that into vector byte swaps (pushing
        // each element was 6% of a funpack-ng run).
        macro_rules! put {
            ($v:expr) => {{
                let size = std::mem::size_of_val(&$v[0..1.min($v.len())]).max(1);
                let start = out.len();
                out.resize(start + $v.len() * size, 0);
                for (dst, x) in out[start..].chunks_exact_mut(size).zip($v.iter()) {
                    dst.copy_from_slice(&x.to_be_bytes());
                }
            }};
        }
        match self {
            Pixels::U8(v) => out.extend_from_slice(v),
            Pixels::I16(v) => put!(v),
            Pixels::I32(v) => put!(v),
            Pixels::I64(v) => put!(v),
            Pixels::F32(v) => put!(v),
            Pixels::F64(v) => put!(v),
        }
    }

    /// The big-endian FITS bytes of these pixels.
    pub fn to_be_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.pixel_type().size());
        self.write_be_bytes(&mut out);
        out
    }
}
