//! The integer semantics every engine implements, bit for bit.
//!
//! Written down in docs/neural.md; in short: weights are integers with
//! [`W_FRAC`] fraction bits and |w| ≤ [`W_MAX`]; hidden activations are
//! integers with [`A_FRAC`] fraction bits clamped to ±[`ACT_MAX`]; first-layer
//! inputs are pixel differences clamped to ±[`IN_MAX`]. A layer accumulates
//! exactly in i32 (model loading proves the bound), rounds by
//! `(acc + 2^(s-1)) >> s` (round half up, arithmetic shift = floor), and
//! applies the integer leaky ReLU `v >= 0 ? v : v >> 3` with the clamp.
//! Nothing here is floating point, so every machine computes the same
//! numbers; the float64 reference and the tch engine are checked against it.

pub const W_FRAC: u32 = 8;
pub const W_MAX: i32 = 1023;
pub const A_FRAC: u32 = 4;
pub const ACT_MAX: i32 = 4095;
pub const IN_MAX: i32 = 4095;
pub const BIAS_MAX: i32 = 1 << 20;
/// Number of prior scale indices: sigma_j = 2^(j/4 - 3).
pub const NSCALE: u32 = 64;
/// Prior means carry this many fraction bits (quarter units).
pub const MU_FRAC: u32 = 2;
/// Accumulators must stay strictly inside i32.
pub const ACC_LIMIT: i64 = i32::MAX as i64;

/// Round-half-up right shift: `(acc + 2^(s-1)) >> s`.
#[inline(always)]
pub fn requant(acc: i32, shift: u32) -> i32 {
    if shift == 0 {
        acc
    } else {
        // In i64: the model bound keeps |acc| < 2^31, but acc + 2^(s-1)
        // may exceed i32 (a valid model with a large shift); the result,
        // halved at least once, always fits. Same value as the i32 formula
        // wherever that did not overflow.
        ((acc as i64 + (1i64 << (shift - 1))) >> shift) as i32
    }
}

/// Integer leaky ReLU with the activation clamp.
#[inline(always)]
pub fn act(v: i32) -> i32 {
    let v = if v >= 0 { v } else { v >> 3 };
    v.clamp(-ACT_MAX, ACT_MAX)
}
