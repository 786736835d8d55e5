//! Where models come from: the default model compiled into the library, files
//! named on the command line, and model directories.
//!
//! Decoding looks a model up by the SHA-256 recorded in the HDU, never by
//! name: a file with the right name and other weights would decode to other
//! pixels. Directories listed in `FPACKNG_MODELS` (colon-separated) are
//! searched for model files (`*.idfm` for IDF_1, `*.pcnm` for PCNN_1) when a
//! hash is not yet known. [`Store`] is that logic once, for any model type;
//! the free functions here are IDF_1's store.

use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use super::model::{Model, ModelError};

/// A model type a [`Store`] can hold.
pub trait StoredModel: Send + Sync + 'static {
    /// File extension of this kind of model in `FPACKNG_MODELS` directories.
    const EXTENSION: &'static str;
    /// Parse and validate a model file.
    fn parse(bytes: &[u8]) -> Result<Arc<Self>, ModelError>;
    /// SHA-256 of the model file, lower-case hex.
    fn sha256(&self) -> &str;
}

/// The built-in model of one kind plus every model loaded so far.
pub struct Store<M: StoredModel> {
    default_bytes: &'static [u8],
    default: OnceLock<Arc<M>>,
    loaded: RwLock<Vec<Arc<M>>>,
}

impl<M: StoredModel> Store<M> {
    pub const fn new(default_bytes: &'static [u8]) -> Self {
        Store {
            default_bytes,
            default: OnceLock::new(),
            loaded: RwLock::new(Vec::new()),
        }
    }

    /// The built-in model.
    pub fn default_model(&self) -> Arc<M> {
        self.default
            .get_or_init(|| {
                M::parse(self.default_bytes).expect("the built-in model is valid (tested)")
            })
            .clone()
    }

    /// Load a model file and make it known to decoders.
    pub fn load_file(&self, path: &Path) -> Result<Arc<M>, ModelError> {
        let bytes =
            std::fs::read(path).map_err(|e| ModelError(format!("{}: {e}", path.display())))?;
        let m = M::parse(&bytes).map_err(|e| ModelError(format!("{}: {}", path.display(), e.0)))?;
        Ok(self.register(m))
    }

    /// Make a model known to decoders; returns the stored instance.
    pub fn register(&self, m: Arc<M>) -> Arc<M> {
        let mut s = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        if let Some(have) = s.iter().find(|x| x.sha256() == m.sha256()) {
            return have.clone();
        }
        s.push(m.clone());
        m
    }

    /// The model with this SHA-256 (hex), if built in, loaded, or found in a
    /// directory of `FPACKNG_MODELS`.
    pub fn find(&self, sha256: &str) -> Option<Arc<M>> {
        let sha = sha256.trim().to_ascii_lowercase();
        let d = self.default_model();
        if d.sha256() == sha {
            return Some(d);
        }
        if let Some(m) = self
            .loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|m| m.sha256() == sha)
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
                if p.extension().is_some_and(|x| x == M::EXTENSION) {
                    if let Ok(m) = self.load_file(&p) {
                        if m.sha256() == sha {
                            return Some(m);
                        }
                    }
                }
            }
        }
        None
    }
}

impl StoredModel for Model {
    const EXTENSION: &'static str = "idfm";
    fn parse(bytes: &[u8]) -> Result<Arc<Self>, ModelError> {
        Model::from_bytes(bytes)
    }
    fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// The default IDF model, shipped in the repository and in the binary.
pub const DEFAULT_MODEL_FILE: &str = "idf16-small-v1.idfm";
static IDF: Store<Model> = Store::new(include_bytes!("../../models/idf16-small-v1.idfm"));

/// The built-in IDF_1 model.
pub fn default_model() -> Arc<Model> {
    IDF.default_model()
}

/// Load an IDF_1 model file and make it known to decoders.
pub fn load_file(path: &Path) -> Result<Arc<Model>, ModelError> {
    IDF.load_file(path)
}

/// Make an IDF_1 model known to decoders; returns the stored instance.
pub fn register(m: Arc<Model>) -> Arc<Model> {
    IDF.register(m)
}

/// The IDF_1 model with this SHA-256 (hex), if known or found.
pub fn find(sha256: &str) -> Option<Arc<Model>> {
    IDF.find(sha256)
}
