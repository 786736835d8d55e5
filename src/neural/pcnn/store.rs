//! Where PCNN_1 models come from: the default model compiled into the
//! library, files named on the command line, and the `FPACKNG_MODELS`
//! directories (`*.pcnm`). Decoding finds a model by the SHA-256 recorded in
//! the HDU, never by name.

use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use super::model::PcnnModel;
use crate::neural::model::ModelError;

/// The default model, shipped in the repository and in the binary.
pub const DEFAULT_MODEL_FILE: &str = "pcnn-small-v1.pcnm";
static DEFAULT_BYTES: &[u8] = include_bytes!("../../../models/pcnn-small-v1.pcnm");

fn store() -> &'static RwLock<Vec<Arc<PcnnModel>>> {
    static S: OnceLock<RwLock<Vec<Arc<PcnnModel>>>> = OnceLock::new();
    S.get_or_init(|| RwLock::new(Vec::new()))
}

/// The built-in model.
pub fn default_model() -> Arc<PcnnModel> {
    static D: OnceLock<Arc<PcnnModel>> = OnceLock::new();
    D.get_or_init(|| {
        PcnnModel::from_bytes(DEFAULT_BYTES).expect("the built-in model is valid (tested)")
    })
    .clone()
}

/// Load a model file and make it known to decoders.
pub fn load_file(path: &Path) -> Result<Arc<PcnnModel>, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError(format!("{}: {e}", path.display())))?;
    let m = PcnnModel::from_bytes(&bytes)
        .map_err(|e| ModelError(format!("{}: {}", path.display(), e.0)))?;
    Ok(register(m))
}

/// Make a model known to decoders; returns the stored instance.
pub fn register(m: Arc<PcnnModel>) -> Arc<PcnnModel> {
    let mut s = store().write().unwrap_or_else(|e| e.into_inner());
    if let Some(have) = s.iter().find(|x| x.sha256 == m.sha256) {
        return have.clone();
    }
    s.push(m.clone());
    m
}

/// The model with this SHA-256 (hex), if built in, loaded, or found in a
/// directory of `FPACKNG_MODELS`.
pub fn find(sha256: &str) -> Option<Arc<PcnnModel>> {
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
            if p.extension().is_some_and(|x| x == "pcnm") {
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
