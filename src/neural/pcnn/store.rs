//! Where PCNN_1 models come from: the default model compiled into the
//! library, files named on the command line, and the `FPACKNG_MODELS`
//! directories (`*.pcnm`); the logic is [`crate::neural::store::Store`].
//! Decoding finds a model by the SHA-256 recorded in the HDU, never by name.

use std::path::Path;
use std::sync::Arc;

use super::model::PcnnModel;
use crate::neural::model::ModelError;
use crate::neural::store::{Store, StoredModel};

impl StoredModel for PcnnModel {
    const EXTENSION: &'static str = "pcnm";
    fn parse(bytes: &[u8]) -> Result<Arc<Self>, ModelError> {
        PcnnModel::from_bytes(bytes)
    }
    fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// The default model, shipped in the repository and in the binary.
pub const DEFAULT_MODEL_FILE: &str = "pcnn-small-v1.pcnm";
static PCNN: Store<PcnnModel> = Store::new(include_bytes!("../../../models/pcnn-small-v1.pcnm"));

/// The built-in model.
pub fn default_model() -> Arc<PcnnModel> {
    PCNN.default_model()
}

/// Load a model file and make it known to decoders.
pub fn load_file(path: &Path) -> Result<Arc<PcnnModel>, ModelError> {
    PCNN.load_file(path)
}

/// Make a model known to decoders; returns the stored instance.
pub fn register(m: Arc<PcnnModel>) -> Arc<PcnnModel> {
    PCNN.register(m)
}

/// The model with this SHA-256 (hex), if built in, loaded, or found in a
/// directory of `FPACKNG_MODELS`.
pub fn find(sha256: &str) -> Option<Arc<PcnnModel>> {
    PCNN.find(sha256)
}
