//! PLIO_1 (stub: to be implemented).

use super::{Codec, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

pub struct Plio;

impl Codec for Plio {
    fn id(&self) -> &'static str {
        "PLIO_1"
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
