//! Online adaptation within a tile: context-wise bias cancellation and scale
//! correction, as hand-made lossless coders do it (LOCO-I, CALIC), on top of
//! the network's distribution.
//!
//! Why: the model is fixed and trained on a few kinds of frames. On a frame
//! unlike them (a smooth solar image, say) its means are slightly biased and
//! its scales too wide or too narrow in ways that depend on the local
//! structure. Per context (the local gradient signs and the network's own
//! scale bucket) the coder keeps the mean residual and the mean absolute
//! residual against the one the model expected, and shifts the mean and the
//! scale index accordingly. Both sides update after each pixel from the
//! pixels already coded, in integers, so encoder and decoder agree exactly;
//! counts are halved every 256 pixels of a context so the statistics follow
//! the image.

use std::sync::OnceLock;

use super::features::{comp, NFEAT};
use super::mixture::Dist;
use crate::neural::semantics::NSCALE;

/// Gradient-sign patterns (3^3) × scale buckets (16).
pub const CONTEXTS: usize = 27 * 16;
const HALVE_AT: i64 = 256;
/// The mean residual is shrunk towards 0 as if SHRINK more pixels with
/// residual 0 had been seen: a context seen a few times does not move the
/// mean much. (HALVE_AT and SHRINK were chosen on corpus/train frames.)
const SHRINK: i64 = 32;

/// E|x − μ| of a logistic of scale index j, in quarter units: 4·2ln2·σ_j.
fn expected_abs(j: u32) -> i64 {
    static T: OnceLock<[i64; NSCALE as usize]> = OnceLock::new();
    T.get_or_init(|| {
        std::array::from_fn(|j| {
            libm::round(8.0 * std::f64::consts::LN_2 * libm::exp2(j as f64 / 4.0 - 3.0)).max(1.0)
                as i64
        })
    })[j as usize]
}

fn dominant(d: &Dist) -> usize {
    (0..d.k as usize).fold(0, |b, i| if d.comps[i].pi > d.comps[b].pi { i } else { b })
}

/// The adaptation context of a pixel: signs of W−WW, N−NW and NE−N (each
/// below −1, within ±1, above +1) and the network's scale bucket.
pub fn context_of(f: &[i32; NFEAT], d: &Dist) -> usize {
    let q = |v: i32| {
        if v < -16 {
            0
        } else if v > 16 {
            2
        } else {
            1
        }
    };
    let jb = (d.comps[dominant(d)].j >> 2).min(15) as usize;
    jb * 27 + q(f[0]) * 9 + q(f[1]) * 3 + q(f[3])
}

#[derive(Clone)]
pub struct Adapt {
    bias: Vec<i64>,
    abs: Vec<i64>,
    expect: Vec<i64>,
    n: Vec<i64>,
}

impl Default for Adapt {
    fn default() -> Self {
        Adapt {
            bias: vec![0; CONTEXTS],
            abs: vec![0; CONTEXTS],
            expect: vec![0; CONTEXTS],
            n: vec![0; CONTEXTS],
        }
    }
}

impl Adapt {
    /// The distribution to code with: `d` with every mean shifted by the
    /// context's mean residual and every scale index by its scale error.
    pub fn apply(&self, d: &Dist, ctx: usize) -> Dist {
        let n = self.n[ctx];
        if n == 0 {
            return *d;
        }
        let dmu =
            ((2 * self.bias[ctx] + n + SHRINK).div_euclid(2 * (n + SHRINK))).clamp(-4096, 4096);
        let dj = if n >= 4 {
            ((comp(self.abs[ctx]) - comp(self.expect[ctx]) + 2) >> 2).clamp(-8, 8)
        } else {
            0
        };
        let mut out = *d;
        for c in &mut out.comps[..d.k as usize] {
            c.mu4 = (c.mu4 as i64 + dmu).clamp(-(1 << 21), 1 << 21) as i32;
            c.j = (c.j as i32 + dj).clamp(0, NSCALE as i32 - 1) as u8;
        }
        out
    }

    /// Learn from the coded value `v` of a pixel predicted as `raw`
    /// (network) and coded with `used` (after [`Adapt::apply`]).
    pub fn update(&mut self, raw: &Dist, used: &Dist, ctx: usize, v: u32) {
        let k = dominant(raw);
        let v4 = 4 * v as i64;
        self.bias[ctx] += v4 - raw.comps[k].mu4 as i64;
        self.abs[ctx] += (v4 - used.comps[k].mu4 as i64).abs();
        self.expect[ctx] += expected_abs(raw.comps[k].j as u32);
        self.n[ctx] += 1;
        if self.n[ctx] >= HALVE_AT {
            self.bias[ctx] = self.bias[ctx].div_euclid(2);
            self.abs[ctx] >>= 1;
            self.expect[ctx] >>= 1;
            self.n[ctx] >>= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::pcnn::mixture::Component;

    fn dist(mu4: i32, j: u8) -> Dist {
        let mut d = Dist {
            k: 1,
            ..Default::default()
        };
        d.comps[0] = Component {
            mu4,
            j,
            pi: 1 << 15,
        };
        d
    }

    #[test]
    fn a_biased_overconfident_model_is_corrected_per_context() {
        let mut a = Adapt::default();
        let raw = dist(4000, 8); // mean 1000, sigma 0.5
        let f = [0i32; NFEAT];
        let ctx = context_of(&f, &raw);
        let mut other = [0i32; NFEAT];
        other[0] = 100;
        let ctx2 = context_of(&other, &raw);
        assert_ne!(ctx, ctx2);
        // The truth: mean 1010, spread of about ±20.
        for i in 0..2000u32 {
            let used = a.apply(&raw, ctx);
            let v = 1010 + (i * 7919 % 41) - 20;
            a.update(&raw, &used, ctx, v);
        }
        let used = a.apply(&raw, ctx);
        assert!(
            (used.comps[0].mu4 - 4040).abs() < 16,
            "mean {}",
            used.comps[0].mu4
        );
        assert!(used.comps[0].j >= 8 + 8, "scale index {}", used.comps[0].j);
        // Another context is untouched.
        assert_eq!(a.apply(&raw, ctx2).comps[0], raw.comps[0]);
    }
}
