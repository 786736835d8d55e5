//! Typed errors for the whole library, split by who is at fault.
//!
//! An archive operator who meets an error must learn three things from one
//! line: which file, which HDU (numbered from 1 like fpack and funpack do),
//! and where relevant which tile. Every error therefore carries a
//! [`Context`], filled in layer by layer: a codec knows nothing about files
//! and reports a bare [`CodecError`]; the tile driver adds the tile number;
//! the file driver adds the HDU and the path.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a file an error happened. Every field is optional because the
/// lower layers do not know the upper ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub file: Option<PathBuf>,
    /// HDU number counted from 1 (the primary HDU is 1), as fpack prints it.
    pub hdu: Option<usize>,
    /// Tile (row of the compressed table) counted from 1.
    pub tile: Option<usize>,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = &self.file {
            parts.push(p.display().to_string());
        }
        if let Some(h) = self.hdu {
            parts.push(format!("HDU {h}"));
        }
        if let Some(t) = self.tile {
            parts.push(format!("tile {t}"));
        }
        if parts.is_empty() {
            f.write_str("<input>")
        } else {
            f.write_str(&parts.join(": "))
        }
    }
}

/// Errors raised by a codec on one tile. A codec never knows the file or
/// HDU; the tile driver wraps this into [`Error::Codec`] with context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The compressed bytes ended before the tile was complete.
    #[error("compressed tile is truncated")]
    Truncated,
    /// The compressed bytes are not a valid stream for this codec.
    #[error("compressed tile is corrupt: {0}")]
    Corrupt(String),
    /// The codec cannot handle this pixel type or tile shape.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A ZNAMEn/ZVALn parameter is missing or has a bad value.
    #[error("bad codec parameter: {0}")]
    BadParameter(String),
    /// The tile was coded with a model this program does not have.
    #[error("needs model '{name}' (SHA-256 {sha256}), which is neither built in nor loaded: pass --model PATH to its model file (.idfm, .pcnm) or put it in a directory listed in FPACKNG_MODELS")]
    ModelUnavailable { name: String, sha256: String },
}

/// The library's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing failed at the operating-system level.
    #[error("{context}: {source}")]
    Io {
        context: Context,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid FITS, or not a valid tile-compressed image.
    #[error("{context}: {message}")]
    Malformed { context: Context, message: String },
    /// A header asks for more than the configured limits allow.
    #[error("{context}: {what} is {value}, above the limit of {limit}")]
    LimitExceeded {
        context: Context,
        what: String,
        value: u128,
        limit: u128,
    },
    /// A tile could not be encoded or decoded.
    // The codec's error is part of the message and deliberately not a
    // `source()`: printed with `{:#}` it would otherwise appear twice.
    #[error("{context}: {algorithm}: {error}")]
    Codec {
        context: Context,
        algorithm: String,
        error: CodecError,
    },
    /// The file uses something this library does not implement.
    #[error("{context}: {message}")]
    Unsupported { context: Context, message: String },
    /// The caller asked for something invalid (bad option or parameter).
    #[error("{message}")]
    BadParameter { message: String },
    /// A written file did not decode back to the source: nothing was replaced.
    #[error("{context}: verification failed: {message}")]
    Verification { context: Context, message: String },
    /// A CHECKSUM or DATASUM keyword does not match the bytes.
    #[error("{context}: {message}")]
    Checksum { context: Context, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn malformed(context: Context, message: impl Into<String>) -> Self {
        Error::Malformed {
            context,
            message: message.into(),
        }
    }

    pub fn unsupported(context: Context, message: impl Into<String>) -> Self {
        Error::Unsupported {
            context,
            message: message.into(),
        }
    }

    pub fn bad_parameter(message: impl Into<String>) -> Self {
        Error::BadParameter {
            message: message.into(),
        }
    }

    pub fn io(context: Context, source: std::io::Error) -> Self {
        Error::Io { context, source }
    }

    /// The context this error carries, if any.
    pub fn context_mut(&mut self) -> Option<&mut Context> {
        match self {
            Error::Io { context, .. }
            | Error::Malformed { context, .. }
            | Error::LimitExceeded { context, .. }
            | Error::Codec { context, .. }
            | Error::Unsupported { context, .. }
            | Error::Verification { context, .. }
            | Error::Checksum { context, .. } => Some(context),
            Error::BadParameter { .. } => None,
        }
    }

    /// Fill in the file name where a lower layer did not know it.
    pub fn with_file(mut self, path: &Path) -> Self {
        if let Some(c) = self.context_mut() {
            if c.file.is_none() {
                c.file = Some(path.to_path_buf());
            }
        }
        self
    }

    /// Fill in the HDU number where a lower layer did not know it.
    pub fn with_hdu(mut self, hdu: usize) -> Self {
        if let Some(c) = self.context_mut() {
            if c.hdu.is_none() {
                c.hdu = Some(hdu);
            }
        }
        self
    }
}

impl Context {
    pub fn hdu(hdu: usize) -> Self {
        Context {
            hdu: Some(hdu),
            ..Default::default()
        }
    }
    pub fn tile(mut self, tile: usize) -> Self {
        self.tile = Some(tile);
        self
    }
}
