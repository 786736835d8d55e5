//! PCNN_1 model files (`.pcnm`): the autoregressive network and what
//! identifies it.
//!
//! A model file is `FPNGPCN\0`, a little-endian u32 length, a JSON header
//! (the layer list, the integer semantics it was trained for, a model card)
//! and the weights as little-endian i32, `[cout][cin][tap]` then `[cout]`
//! biases per layer. As for IDF models, the SHA-256 of the whole file is the
//! model's identity and every number is checked against the engine's bounds
//! on load, so that the i32 accumulators provably cannot overflow.

use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::features::{NCAND, NFEAT};
use crate::neural::model::{hex, split_file, take_layer, CommonHeader, ModelError};

const MAGIC: &[u8; 8] = b"FPNGPCN\0";
/// Outputs per mixture component: NCAND predictor logits, a log2 scale, a
/// mixture logit.
pub const PER_COMPONENT: usize = NCAND + 2;
/// Most mixture components a model may have.
pub const MAX_MIXTURE: usize = 4;
/// Widest layer accepted.
pub const MAX_WIDTH: usize = 64;

fn bad(msg: impl Into<String>) -> ModelError {
    ModelError(msg.into())
}

/// Whether a file starts like a PCNN_1 model.
pub fn is_pcnn_model(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1x1: the pixel's own input vector.
    Point,
    /// Masked 3x3 ("mask B"): taps NW, N, NE, W and the pixel itself, zero
    /// outside the tile.
    Causal5,
}

impl Kind {
    pub fn taps(self) -> usize {
        match self {
            Kind::Point => 1,
            Kind::Causal5 => 5,
        }
    }
}

/// One integer layer, weights rearranged `[tap][cin][cout]` for the engine.
#[derive(Debug, Clone)]
pub struct Layer {
    pub kind: Kind,
    pub cin: usize,
    pub cout: usize,
    pub act: bool,
    pub shift: u32,
    pub w: Vec<i32>,
    pub b: Vec<i32>,
}

#[derive(Debug)]
pub struct PcnnModel {
    pub name: String,
    pub version: String,
    pub mixture: usize,
    pub hidden: usize,
    pub layers: Vec<Layer>,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    pub card: String,
    pub file_bytes: usize,
}

#[derive(Deserialize)]
struct RawLayer {
    kind: String,
    cin: usize,
    cout: usize,
    act: bool,
    shift: u32,
}

#[derive(Deserialize)]
struct RawHeader {
    name: String,
    version: String,
    features: usize,
    candidates: usize,
    mixture: usize,
    hidden: usize,
    layers: Vec<RawLayer>,
    #[serde(flatten)]
    common: CommonHeader,
    #[serde(default)]
    card: serde_json::Value,
}

impl PcnnModel {
    /// Parse and validate a model file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Arc<PcnnModel>, ModelError> {
        let (h, mut data): (RawHeader, &[u8]) = split_file(bytes, MAGIC, "PCNN")?;
        h.common.check()?;
        for (got, want, what) in [
            (h.features, NFEAT, "features"),
            (h.candidates, NCAND, "candidates"),
        ] {
            if got != want {
                return Err(bad(format!(
                    "{what} = {got}, but this engine implements {want}"
                )));
            }
        }
        if h.mixture == 0 || h.mixture > MAX_MIXTURE {
            return Err(bad(format!(
                "{} mixture components (1..={MAX_MIXTURE} supported)",
                h.mixture
            )));
        }
        if h.layers.len() < 2 || h.layers.len() > 8 {
            return Err(bad(format!("{} layers (2..=8 supported)", h.layers.len())));
        }
        let n = h.layers.len();
        let mut layers = Vec::with_capacity(n);
        let mut prev = NFEAT;
        for (li, rl) in h.layers.iter().enumerate() {
            let kind = match (li, rl.kind.as_str()) {
                (_, "point") => Kind::Point,
                (l, "causal5") if l > 0 && l + 1 < n => Kind::Causal5,
                (_, k) => return Err(bad(format!("layer {li}: kind {k:?} not allowed here"))),
            };
            if rl.cin != prev
                || rl.cout == 0
                || rl.cout > MAX_WIDTH.max(MAX_MIXTURE * PER_COMPONENT)
            {
                return Err(bad(format!(
                    "layer {li}: {}->{} channels does not chain",
                    rl.cin, rl.cout
                )));
            }
            if rl.shift > 30 {
                return Err(bad(format!("layer {li}: shift {}", rl.shift)));
            }
            if rl.act != (li + 1 < n) {
                return Err(bad(format!(
                    "layer {li}: activations must follow every layer but the last"
                )));
            }
            let taps = kind.taps();
            let (w, b) = take_layer(&mut data, taps, rl.cin, rl.cout, &format!("layer {li}"))?;
            // [cout][cin][tap] -> [tap][cin][cout]
            let mut wt = vec![0i32; w.len()];
            for o in 0..rl.cout {
                for i in 0..rl.cin {
                    for t in 0..taps {
                        wt[(t * rl.cin + i) * rl.cout + o] = w[(o * rl.cin + i) * taps + t];
                    }
                }
            }
            layers.push(Layer {
                kind,
                cin: rl.cin,
                cout: rl.cout,
                act: rl.act,
                shift: rl.shift,
                w: wt,
                b,
            });
            prev = rl.cout;
        }
        if prev != h.mixture * PER_COMPONENT {
            return Err(bad(format!(
                "{prev} outputs; {} mixture components need {}",
                h.mixture,
                h.mixture * PER_COMPONENT
            )));
        }
        if !data.is_empty() {
            return Err(bad(format!(
                "{} bytes of weight data left over",
                data.len()
            )));
        }
        Ok(Arc::new(PcnnModel {
            name: h.name,
            version: h.version,
            mixture: h.mixture,
            hidden: h.hidden,
            layers,
            sha256: hex(&Sha256::digest(bytes)),
            card: h.card.to_string(),
            file_bytes: bytes.len(),
        }))
    }

    /// Multiply-accumulates per pixel (for documentation and benchmarks).
    pub fn macs_per_pixel(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.kind.taps() * l.cin * l.cout)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_bytes() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/pcnn-small-v1.pcnm"
        ))
        .unwrap()
    }

    #[test]
    fn the_shipped_model_loads_and_hostile_files_are_refused() {
        let good = default_bytes();
        let m = PcnnModel::from_bytes(&good).unwrap();
        assert_eq!(m.layers.last().unwrap().cout, m.mixture * PER_COMPONENT);
        let jlen = u32::from_le_bytes([good[8], good[9], good[10], good[11]]) as usize;
        let header = std::str::from_utf8(&good[12..12 + jlen])
            .unwrap()
            .to_string();
        let with_header = |h: &str| {
            let mut b = b"FPNGPCN\0".to_vec();
            b.extend_from_slice(&(h.len() as u32).to_le_bytes());
            b.extend_from_slice(h.as_bytes());
            b.extend_from_slice(&good[12 + jlen..]);
            b
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"FPNGIDF\0xxxxxxxx".to_vec(), "magic"),
            (good[..good.len() - 4].to_vec(), "ends inside"),
            ([good.clone(), vec![0; 4]].concat(), "left over"),
            (
                with_header(&header.replace("\"w_frac\": 8", "\"w_frac\": 9")),
                "w_frac",
            ),
            (
                with_header(&header.replace("\"mixture\": 2", "\"mixture\": 9")),
                "mixture",
            ),
            (
                with_header(&header.replace("\"kind\": \"causal5\"", "\"kind\": \"conv9\"")),
                "kind",
            ),
        ];
        for (bytes, want) in cases {
            let err = PcnnModel::from_bytes(&bytes).unwrap_err().to_string();
            assert!(err.contains(want), "expected {want:?} in {err:?}");
        }
        // A weight beyond W_MAX.
        let mut big = good.clone();
        let at = 12 + jlen;
        big[at..at + 4].copy_from_slice(&5000i32.to_le_bytes());
        assert!(PcnnModel::from_bytes(&big)
            .unwrap_err()
            .to_string()
            .contains("out of range"));
    }
}
