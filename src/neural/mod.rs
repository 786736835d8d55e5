//! Neural codecs' foundation: integer networks, their engines, entropy coding
//! from integer tables, and model files.
//!
//! The one property research code never needs and a codec cannot do without:
//! the decoder must reproduce the encoder's numbers exactly, on any machine.
//! So the networks are defined as integer arithmetic ([`semantics`]), every
//! engine computes exactly those integers ([`engine`] on the CPU, a tch engine
//! behind the `tch` feature), and probabilities come from fixed integer
//! tables indexed by the networks' integer outputs ([`entropy`]). A model is
//! identified by the SHA-256 of its file ([`model`]); the default model is
//! compiled into the library, others are loaded from files and found by
//! hash ([`store`]). Which engine runs is the caller's choice, handed to the
//! codecs with every tile ([`crate::codec::CodecContext`]), never a
//! process-wide setting.

pub mod engine;
pub mod entropy;
pub mod flow;
pub mod model;
pub mod pcnn;
pub mod reference;
pub mod semantics;
pub mod store;
#[cfg(feature = "tch")]
pub mod tch_engine;

pub use engine::{Cpu, Engine, Planes};

pub use model::{Model, ModelError, Variant};

/// A model file loaded by [`load_model_file`].
pub enum LoadedModel {
    Idf(std::sync::Arc<Model>),
    Pcnn(std::sync::Arc<pcnn::PcnnModel>),
}

/// Load an IDF_1 (`.idfm`) or PCNN_1 (`.pcnm`) model file, told apart by its
/// magic bytes, and make it known to decoders.
pub fn load_model_file(path: &std::path::Path) -> Result<LoadedModel, ModelError> {
    let head = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut b = [0u8; 8];
            std::io::Read::read(&mut f, &mut b).map(|n| b[..n].to_vec())
        })
        .map_err(|e| ModelError(format!("{}: {e}", path.display())))?;
    if pcnn::model::is_pcnn_model(&head) {
        pcnn::store::load_file(path).map(LoadedModel::Pcnn)
    } else {
        store::load_file(path).map(LoadedModel::Idf)
    }
}
