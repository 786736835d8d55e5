//! Model files: an integer network and what identifies it.
//!
//! A model file is `FPNGIDF\0`, a little-endian u32 length, a JSON header
//! (architecture, the integer semantics it was trained for, a model card) and
//! the weights as little-endian i32. The SHA-256 of the whole file is the
//! model's identity: every IDF_1 HDU records it (ZNAMEn/ZVALn), and decoding
//! with any other model is refused, because a single different weight
//! changes the decoded pixels.
//!
//! Loading checks every number against the engine's bounds (weight and bias
//! magnitudes, widths, shifts) so that the i32 accumulators of the engine
//! provably cannot overflow: a hostile model file is an error, not undefined
//! arithmetic.

use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::semantics::{
    ACC_LIMIT, ACT_MAX, A_FRAC, BIAS_MAX, IN_MAX, MU_FRAC, NSCALE, W_FRAC, W_MAX,
};

const MAGIC: &[u8; 8] = b"FPNGIDF\0";
/// Largest model file accepted (the default model is ~200 KB).
const MAX_MODEL_BYTES: usize = 64 << 20;

/// Why a model file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model file: {0}")]
pub struct ModelError(pub String);

fn bad(msg: impl Into<String>) -> ModelError {
    ModelError(msg.into())
}

/// How the 16-bit pixels enter the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// One channel holding the uint16 value.
    Sixteen,
    /// Two 8-bit channels: most- and least-significant byte (the MSB/LSB split).
    Split,
}

impl Variant {
    pub fn channels(self) -> usize {
        match self {
            Variant::Sixteen => 1,
            Variant::Split => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// 3x3 patches of the input minus a per-position reference, clamped to
    /// ±IN_MAX, edges replicated.
    Patch3,
    /// 3x3 convolution, zero padding.
    Conv3,
    /// 1x1 convolution.
    Conv1,
}

impl LayerKind {
    pub fn taps(self) -> usize {
        match self {
            LayerKind::Conv1 => 1,
            _ => 9,
        }
    }
}

/// One integer layer: `out = requant(bias + Σ w·in, shift)`, then the integer
/// activation if `act`.
#[derive(Debug, Clone)]
pub struct Layer {
    pub kind: LayerKind,
    pub cin: usize,
    pub cout: usize,
    pub act: bool,
    /// Right shift per output channel.
    pub shift: Vec<u32>,
    /// `[cout][cin][taps]`.
    pub w: Vec<i32>,
    pub b: Vec<i32>,
}

/// A small network: a Patch3 layer, then Conv3/Conv1 layers.
#[derive(Debug, Clone)]
pub struct Net {
    pub name: String,
    pub layers: Vec<Layer>,
}

impl Net {
    pub fn cin(&self) -> usize {
        self.layers[0].cin
    }
    pub fn cout(&self) -> usize {
        self.layers[self.layers.len() - 1].cout
    }
    /// The widest layer input, for scratch buffers.
    pub fn max_width(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.cin.max(l.cout))
            .max()
            .unwrap_or(0)
    }
}

/// The nets of one flow level.
#[derive(Debug, Clone)]
pub struct LevelNets {
    pub t1: Net,
    pub t2: Net,
    pub t3: Net,
    pub t4: Net,
    pub prior: Net,
}

/// A loaded, validated model.
#[derive(Debug)]
pub struct Model {
    pub name: String,
    pub version: String,
    pub variant: Variant,
    pub hidden: usize,
    pub levels: Vec<LevelNets>,
    /// SHA-256 of the model file, lower-case hex.
    pub sha256: String,
    /// The model card from the header, as JSON text.
    pub card: String,
    pub file_bytes: usize,
}

#[derive(Deserialize)]
struct RawLayer {
    kind: String,
    cin: usize,
    cout: usize,
    act: bool,
    shift: Vec<u32>,
}

#[derive(Deserialize)]
struct RawNet {
    name: String,
    layers: Vec<RawLayer>,
}

#[derive(Deserialize)]
struct RawHeader {
    name: String,
    version: String,
    variant: String,
    channels: usize,
    levels: usize,
    hidden: usize,
    #[serde(flatten)]
    common: CommonHeader,
    nets: Vec<RawNet>,
    #[serde(default)]
    card: serde_json::Value,
}

impl Model {
    /// Parse and validate a model file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Arc<Model>, ModelError> {
        let (h, data): (RawHeader, &[u8]) = split_file(bytes, MAGIC, "IDF")?;
        h.common.check()?;
        let variant = match h.variant.as_str() {
            "16" => Variant::Sixteen,
            "split" => Variant::Split,
            v => return Err(bad(format!("unknown variant {v:?}"))),
        };
        if h.channels != variant.channels() {
            return Err(bad("channel count does not match the variant"));
        }
        if h.levels == 0 || h.levels > 8 {
            return Err(bad(format!("{} levels (1..=8 supported)", h.levels)));
        }
        if h.nets.len() != 5 * h.levels {
            return Err(bad(format!(
                "{} nets for {} levels (5 per level expected)",
                h.nets.len(),
                h.levels
            )));
        }
        let mut data = data;
        if data.len() % 4 != 0 {
            return Err(bad("weight data is not a whole number of i32"));
        }
        let c = h.channels;
        let mut nets = Vec::with_capacity(h.nets.len());
        for (i, rn) in h.nets.iter().enumerate() {
            let role = i % 5;
            let (cin, cout) = if role == 4 {
                (2 * c, 6 * c)
            } else {
                (2 * c, 2 * c)
            };
            nets.push(parse_net(rn, cin, cout, &mut data)?);
        }
        if !data.is_empty() {
            return Err(bad(format!(
                "{} bytes of weight data left over",
                data.len()
            )));
        }
        let mut levels = Vec::with_capacity(h.levels);
        let mut it = nets.into_iter();
        for _ in 0..h.levels {
            let mut next = || it.next().expect("5 nets per level were counted above");
            levels.push(LevelNets {
                t1: next(),
                t2: next(),
                t3: next(),
                t4: next(),
                prior: next(),
            });
        }
        let sha256 = hex(&Sha256::digest(bytes));
        Ok(Arc::new(Model {
            name: h.name,
            version: h.version,
            variant,
            hidden: h.hidden,
            levels,
            sha256,
            card: h.card.to_string(),
            file_bytes: bytes.len(),
        }))
    }

    /// Number of channels the flow works on.
    pub fn channels(&self) -> usize {
        self.variant.channels()
    }

    /// Tile dimensions must be padded to a multiple of this.
    pub fn block(&self) -> usize {
        1 << self.levels.len()
    }
}

/// The header fields every model file has: its format and the integer
/// semantics it was trained for, which must be this engine's.
#[derive(Deserialize)]
pub(crate) struct CommonHeader {
    format: u32,
    w_frac: u32,
    a_frac: u32,
    act_max: i32,
    in_max: i32,
    bias_max: i32,
    nscale: u32,
    mu_frac: u32,
}

impl CommonHeader {
    pub(crate) fn check(&self) -> Result<(), ModelError> {
        if self.format != 1 {
            return Err(bad(format!(
                "format {} (this build reads format 1)",
                self.format
            )));
        }
        let semantics = [
            (self.w_frac as i64, W_FRAC as i64, "w_frac"),
            (self.a_frac as i64, A_FRAC as i64, "a_frac"),
            (self.act_max as i64, ACT_MAX as i64, "act_max"),
            (self.in_max as i64, IN_MAX as i64, "in_max"),
            (self.bias_max as i64, BIAS_MAX as i64, "bias_max"),
            (self.nscale as i64, NSCALE as i64, "nscale"),
            (self.mu_frac as i64, MU_FRAC as i64, "mu_frac"),
        ];
        for (got, want, what) in semantics {
            if got != want {
                return Err(bad(format!(
                    "{what} = {got}, but this engine implements {want}"
                )));
            }
        }
        Ok(())
    }
}

/// A model file's frame: size limit, 8-byte magic, u32 length, JSON header.
/// Returns the parsed header and the weight bytes after it.
pub(crate) fn split_file<'a, H: serde::de::DeserializeOwned>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    kind: &str,
) -> Result<(H, &'a [u8]), ModelError> {
    if bytes.len() > MAX_MODEL_BYTES {
        return Err(bad(format!(
            "{} bytes, more than the {MAX_MODEL_BYTES} accepted",
            bytes.len()
        )));
    }
    if bytes.len() < 12 || &bytes[..8] != magic {
        return Err(bad(format!("not an fpack-ng {kind} model (bad magic)")));
    }
    let jlen = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let jend = 12usize
        .checked_add(jlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("header length beyond the end of the file"))?;
    let h: H = serde_json::from_slice(&bytes[12..jend]).map_err(|e| bad(format!("header: {e}")))?;
    Ok((h, &bytes[jend..]))
}

/// The weights (`[cout][cin][tap]`) and biases of one layer, after proving
/// that its i32 accumulator cannot overflow whatever the data: every input is
/// bounded by IN_MAX (first layers) or ACT_MAX (hidden layers), every weight
/// by W_MAX and every bias by BIAS_MAX, which are checked here too.
pub(crate) fn take_layer(
    data: &mut &[u8],
    taps: usize,
    cin: usize,
    cout: usize,
    what: &str,
) -> Result<(Vec<i32>, Vec<i32>), ModelError> {
    let bound = (taps * cin) as i64 * IN_MAX.max(ACT_MAX) as i64 * W_MAX as i64 + BIAS_MAX as i64;
    if bound > ACC_LIMIT {
        return Err(bad(format!(
            "{what}: {cin} inputs could overflow the accumulator"
        )));
    }
    let w = take_i32(data, cout * cin * taps, what)?;
    let b = take_i32(data, cout, what)?;
    if w.iter().any(|v| v.abs() > W_MAX) || b.iter().any(|v| v.abs() > BIAS_MAX) {
        return Err(bad(format!("{what}: weight or bias out of range")));
    }
    Ok((w, b))
}

fn take_i32(data: &mut &[u8], n: usize, what: &str) -> Result<Vec<i32>, ModelError> {
    let bytes = n
        .checked_mul(4)
        .filter(|&b| b <= data.len())
        .ok_or_else(|| bad(format!("weight data ends inside {what}")))?;
    let (head, rest) = data.split_at(bytes);
    *data = rest;
    Ok(head
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn parse_net(rn: &RawNet, cin: usize, cout: usize, data: &mut &[u8]) -> Result<Net, ModelError> {
    let name = &rn.name;
    if rn.layers.is_empty() || rn.layers.len() > 8 {
        return Err(bad(format!("net {name}: {} layers", rn.layers.len())));
    }
    let mut layers = Vec::new();
    let mut prev = cin;
    for (li, rl) in rn.layers.iter().enumerate() {
        let kind = match (li, rl.kind.as_str()) {
            (0, "patch3") => LayerKind::Patch3,
            (l, "conv3") if l > 0 => LayerKind::Conv3,
            (l, "conv1") if l > 0 => LayerKind::Conv1,
            (_, k) => {
                return Err(bad(format!(
                    "net {name} layer {li}: kind {k:?} not allowed here"
                )))
            }
        };
        if rl.cin != prev || rl.cout == 0 || rl.cout > 64 {
            return Err(bad(format!(
                "net {name} layer {li}: {}->{} channels does not chain",
                rl.cin, rl.cout
            )));
        }
        if rl.shift.len() != rl.cout || rl.shift.iter().any(|&s| s > 30) {
            return Err(bad(format!("net {name} layer {li}: bad shifts")));
        }
        let (w, b) = take_layer(
            data,
            kind.taps(),
            rl.cin,
            rl.cout,
            &format!("net {name} layer {li}"),
        )?;
        layers.push(Layer {
            kind,
            cin: rl.cin,
            cout: rl.cout,
            act: rl.act,
            shift: rl.shift.clone(),
            w,
            b,
        });
        prev = rl.cout;
    }
    if prev != cout {
        return Err(bad(format!("net {name}: {prev} outputs, {cout} expected")));
    }
    // Hidden layers must clamp (the accumulator bound of the next layer
    // relies on it); the output layer must not.
    let n = layers.len();
    if layers.iter().enumerate().any(|(i, l)| l.act != (i + 1 < n)) {
        return Err(bad(format!(
            "net {name}: activations must follow every layer but the last"
        )));
    }
    Ok(Net {
        name: name.clone(),
        layers,
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
