//! NOCOMPRESS (stub: to be implemented).

use super::{Codec, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

pub struct NoCompress;

impl Codec for NoCompress {
    fn id(&self) -> &'static str {
        "NOCOMPRESS"
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
