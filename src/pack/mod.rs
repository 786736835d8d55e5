//! Whole HDUs and files: compress, decompress, verify, write safely.
//!
//! This is the layer the command-line tools, archive jobs and the cfitsio
//! shim call. It decides which codec and tiles an HDU gets, runs the tiles
//! in parallel, and guarantees that nothing reaches its final name before it
//! has been read back and checked.

pub mod compress;
pub mod decompress;
pub mod file;
pub mod keywords;
pub mod list;
pub mod options;

pub use compress::{compress_image, CompressSummary, CompressedHdu};
pub use decompress::{decompress_image, decompress_pixels, CompressedImageInfo};
pub use file::{
    compress_file, compress_stream, decompress_file, decompress_stream, verify_compressed,
    FileReport, HduAction, HduReport, Input, InputAfter,
};
pub use options::{CompressOptions, CubeMode, DecompressOptions, DitherSeed, HduSelector, Tiling};
