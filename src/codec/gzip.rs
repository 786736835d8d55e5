//! GZIP_1 and GZIP_2 (stub: to be implemented).

use super::{Codec, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

pub struct Gzip1;
pub struct Gzip2;

impl Codec for Gzip1 {
    fn id(&self) -> &'static str {
        "GZIP_1"
    }
    fn supports(&self, _pixel_type: PixelType) -> bool {
        false
    }
    fn encode(&self, _pixels: &Pixels, _spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        Err(CodecError::Unsupported("not implemented yet".into()))
    }
    fn decode(&self, _bytes: &[u8], _spec: &TileSpec) -> Result<Pixels, CodecError> {
        Err(CodecError::Unsupported("not implemented yet".into()))
    }
}

impl Codec for Gzip2 {
    fn id(&self) -> &'static str {
        "GZIP_2"
    }
    fn supports(&self, _pixel_type: PixelType) -> bool {
        false
    }
    fn encode(&self, _pixels: &Pixels, _spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        Err(CodecError::Unsupported("not implemented yet".into()))
    }
    fn decode(&self, _bytes: &[u8], _spec: &TileSpec) -> Result<Pixels, CodecError> {
        Err(CodecError::Unsupported("not implemented yet".into()))
    }
}
