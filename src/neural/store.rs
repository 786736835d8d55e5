//! Where models come from: the default model compiled into the library, files
//! named on the command line, and model directories.
//!
//! Decoding looks a model up by the SHA-256 recorded in the HDU, never by
//! name: a file with the right name and other weights would decode to other
//! pixels. Directories listed in `FPACKNG_MODELS` (colon-separated) are
//! searched for `*.idfm` files when a hash is not yet known.

use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use super::model::{Model, ModelError};

/// The default IDF model, shipped in the repository and in the binary.
pub const DEFAULT_MODEL_FILE: &str = "idf16-small-v1.idfm";
static DEFAULT_BYTES: &[u8] = include_bytes!("../../models/idf16-small-v1.idfm");

fn store() -> &'static RwLock<Vec<Arc<Model>>> {
    static S: OnceLock<RwLock<Vec<Arc<Model>>>> = OnceLock::new();
    S.get_or_init(|| RwLock::new(Vec::new()))
}

/// The built-in model.
pub fn default_model() -> Arc<Model> {
    static D: OnceLock<Arc<Model>> = OnceLock::new();
    D.get_or_init(|| {
        Model::from_bytes(DEFAULT_BYTES).expect("the built-in model is valid (tested)")
    })
    .clone()
}

/// Load a model file and make it known to decoders.
pub fn load_file(path: &Path) -> Result<Arc<Model>, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError(format!("{}: {e}", path.display())))?;
    let m = Model::from_bytes(&bytes)
        .map_err(|e| ModelError(format!("{}: {}", path.display(), e.0)))?;
    Ok(register(m))
}

/// Make a model known to decoders; returns the stored instance.
pub fn register(m: Arc<Model>) -> Arc<Model> {
    let mut s = store().write().unwrap_or_else(|e| e.into_inner());
    if let Some(have) = s.iter().find(|x| x.sha256 == m.sha256) {
        return have.clone();
    }
    s.push(m.clone());
    m
}

/// The model with this SHA-256 (hex), if built in, loaded, or found in a
/// directory of `FPACKNG_MODELS`.
pub fn find(sha256: &str) -> Option<Arc<Model>> {
    let sha = sha256.trim().to_ascii_lowercase();
    let d = default_model();
    if d.sha256 == sha {
        return Some(d);
    }
    if let Some(m) = store()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|m| m.sha256 == sha)
    {
        return Some(m.clone());
    }
    let dirs = std::env::var_os("FPACKNG_MODELS")?;
    for dir in std::env::split_paths(&dirs) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "idfm") {
                if let Ok(m) = load_file(&p) {
                    if m.sha256 == sha {
                        return Some(m);
                    }
                }
            }
        }
    }
    None
}
