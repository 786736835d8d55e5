//! Whole FITS files, with the command line's semantics: fpack-ng's
//! `compress_file` and funpack-ng's `decompress_file` (every tile verified,
//! written through a temporary file that is re-read before it is renamed
//! into place), for callers of the C API such as the Python package.
#![forbid(unsafe_code)]

use std::path::Path;

use fpackng::pack::file::InputAfter;
use fpackng::pack::{compress_file, decompress_file, CompressOptions, DecompressOptions, Tiling};
use fpackng::tile::quantize::QuantizeMethod;
use fpackng::Error;

use crate::core::{self, ShimError};

/// What the caller asks of [`compress`] beyond the file names.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    /// Replace an existing output.
    pub overwrite: bool,
    /// Delete the input once the output is verified (fpack `-D`).
    pub delete_input: bool,
    /// Leave CHECKSUM/DATASUM out (fpack `-C`).
    pub no_checksums: bool,
}

impl FileOptions {
    fn after(&self) -> InputAfter {
        if self.delete_input {
            InputAfter::Delete
        } else {
            InputAfter::Keep
        }
    }
}

impl From<Error> for ShimError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::Io { .. } => ShimError::Io(message),
            Error::Verification { .. } => ShimError::Verification(message),
            Error::LimitExceeded { .. } => ShimError::Limit(message),
            Error::Unsupported { .. } => ShimError::Unsupported(message),
            Error::BadParameter { .. } => ShimError::BadParameter(message),
            _ => ShimError::Corrupt(message),
        }
    }
}

/// fpack-ng `input -O output` with algorithm `zcmptype`, tile axes
/// (FITS order, `None`: the codec's default) and `-q quantize_level` for
/// floating-point images (`None`: lossless).
pub fn compress(
    input: &Path,
    output: &Path,
    zcmptype: &str,
    tile: Option<Vec<usize>>,
    quantize_level: Option<f32>,
    options: &FileOptions,
) -> Result<(), ShimError> {
    let codec = core::find_codec(zcmptype)?;
    let mut opts = CompressOptions {
        algorithm: codec.id().to_string(),
        tiling: tile.map_or(Tiling::Rows, Tiling::Axes),
        checksums: !options.no_checksums,
        ..CompressOptions::default()
    };
    if let Some(level) = quantize_level {
        opts = opts.with_quantize(level, QuantizeMethod::SubtractiveDither1);
    }
    compress_file(input, output, &opts, options.overwrite, options.after())?;
    Ok(())
}

/// funpack-ng `input -O output`.
pub fn decompress(input: &Path, output: &Path, options: &FileOptions) -> Result<(), ShimError> {
    let opts = DecompressOptions {
        checksums: !options.no_checksums,
        ..DecompressOptions::default()
    };
    decompress_file(input, output, &opts, options.overwrite, options.after())?;
    Ok(())
}
