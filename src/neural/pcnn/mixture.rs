//! From network outputs to integer CDFs: the discretised logistic mixture.
//!
//! Per component k the network gives logits over the [`NCAND`] candidate
//! predictors, a log2 scale and a mixture logit. Softmaxes use an integer
//! table of 2^(−t/16); the mean is the weighted candidate mean, rounded to
//! quarter units by integer division; the scale index is j = o/4 + 12
//! (σ = 2^(j/4 − 3), as in IDF_1). The CDF of a logistic at a half-integer
//! boundary is read from a 2049-knot table of the logistic function
//! (t ∈ [−16, 16], computed once with the pure-Rust `libm`) with integer
//! linear interpolation at 1/4096 resolution, so it is monotone and the
//! same on every machine. The mixture CDF has 30 fraction bits.
//!
//! [`SymbolModel`] turns that CDF into the range coder's 24-bit frequencies
//! over 256 (an MSB or an LSB) or 65536 (a 16-bit value) symbols: every
//! symbol gets at least 1/2^24, the rest is shared by the CDF. The LSB model
//! is the mixture restricted to the MSB's bin and renormalised, which is
//! what conditioning the low byte on the high byte means for a distribution
//! over the 16-bit value (PixelCNN++'s channel conditioning).

use std::num::NonZeroU32;
use std::sync::OnceLock;

use constriction::stream::model::{DecoderModel, EncoderModel, EntropyModel};

use super::features::NCAND;
use super::model::PER_COMPONENT;
use crate::neural::semantics::NSCALE;

pub const PRECISION: usize = 24;
/// CDF values carry this many fraction bits.
pub const CDF_BITS: u32 = 30;
const ONE: i64 = 1 << CDF_BITS;
/// Mixture weights sum to 2^PI_BITS.
const PI_BITS: u32 = 15;
/// 2^16 · 2^(−f/4), f = 0..3.
const MF: [i64; 4] = [65536, 55109, 46341, 38968];

struct Tables {
    exp2: [i64; 256],
    sig: Vec<i64>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut exp2 = [0i64; 256];
        for (t, e) in exp2.iter_mut().enumerate() {
            *e = libm::round(65536.0 * libm::exp2(-(t as f64) / 16.0)) as i64;
        }
        let sig = (0..=2048)
            .map(|i| {
                let t = i as f64 / 64.0 - 16.0;
                let s = if t >= 0.0 {
                    1.0 / (1.0 + libm::exp(-t))
                } else {
                    libm::exp(t) / (1.0 + libm::exp(t))
                };
                libm::round(s * ONE as f64) as i64
            })
            .collect();
        Tables { exp2, sig }
    })
}

/// A digest of the tables, for tests that they are the same everywhere.
pub fn table_fingerprint() -> u64 {
    let t = tables();
    t.exp2
        .iter()
        .chain(t.sig.iter())
        .fold(0xcbf29ce484222325u64, |h, &v| {
            (h ^ v as u64).wrapping_mul(0x100000001b3)
        })
}

/// Integer softmax weights (each ≥ 1) of logits in 1/16 units.
fn softmax(z: &[i32], e: &mut [i64]) -> i64 {
    let t = tables();
    let m = z.iter().copied().max().unwrap_or(0) as i64;
    let mut s = 0;
    for (ei, &zi) in e.iter_mut().zip(z) {
        *ei = t.exp2[(m - zi as i64).min(255) as usize];
        s += *ei;
    }
    s
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Component {
    /// Mean in quarter units.
    pub mu4: i32,
    /// Scale index before the tile's offset.
    pub j: u8,
    /// Weight, out of 2^15.
    pub pi: u16,
}

/// One pixel's predicted distribution.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dist {
    pub k: u8,
    pub comps: [Component; super::model::MAX_MIXTURE],
}

impl Dist {
    /// Interpret the network outputs `out` (K × PER_COMPONENT) with the
    /// candidate means `cand` (quarter units).
    pub fn new(out: &[i32], cand: &[i64; NCAND], k: usize) -> Dist {
        let mut d = Dist {
            k: k as u8,
            ..Default::default()
        };
        let mut e = [0i64; NCAND];
        let mut pe = [0i64; super::model::MAX_MIXTURE];
        let mut plog = [0i32; super::model::MAX_MIXTURE];
        for (ci, comp) in d.comps[..k].iter_mut().enumerate() {
            let o = &out[ci * PER_COMPONENT..(ci + 1) * PER_COMPONENT];
            let s = softmax(&o[..NCAND], &mut e);
            let num: i64 = e.iter().zip(cand).map(|(a, b)| a * b).sum();
            let mu4 = (num + s / 2).div_euclid(s);
            comp.mu4 = mu4.clamp(-(1 << 21), 1 << 21) as i32;
            comp.j = ((((o[NCAND] as i64) + 2) >> 2) + 12).clamp(0, NSCALE as i64 - 1) as u8;
            plog[ci] = o[NCAND + 1];
        }
        let s = softmax(&plog[..k], &mut pe[..k]);
        let mut total = 0;
        let mut best = 0;
        for ci in 0..k {
            let p = (pe[ci] << PI_BITS) / s;
            d.comps[ci].pi = p as u16;
            total += p;
            if pe[ci] > pe[best] {
                best = ci;
            }
        }
        d.comps[best].pi += ((1 << PI_BITS) - total) as u16;
        d
    }

    /// The mixture CDF (2^30 scale) at the boundary `x4` (quarter units),
    /// with every scale index shifted by `dj`.
    #[inline]
    pub fn cdf(&self, x4: i64, dj: i32) -> i64 {
        let t = tables();
        let mut acc = 0i64;
        for c in &self.comps[..self.k as usize] {
            let j = (c.j as i32 + dj).clamp(0, NSCALE as i32 - 1) as u32;
            let d = x4 - c.mu4 as i64;
            let tf = (d * MF[(j & 3) as usize]) >> ((j >> 2) + 3);
            let u = tf + 16 * 4096;
            let f = if u <= 0 {
                0
            } else if u >= 32 * 4096 {
                ONE
            } else {
                let i = (u >> 6) as usize;
                t.sig[i] + (((t.sig[i + 1] - t.sig[i]) * (u & 63)) >> 6)
            };
            acc += c.pi as i64 * f;
        }
        acc >> PI_BITS
    }
}

/// The range coder's view of one symbol: `n` symbols whose boundaries are at
/// `base4 + step4·b` (quarter units) of a pixel's CDF.
pub struct SymbolModel<'a> {
    dist: &'a Dist,
    dj: i32,
    n: u32,
    base4: i64,
    step4: i64,
    lo: i64,
    total: i64,
}

impl<'a> SymbolModel<'a> {
    /// The high byte of a 16-bit value.
    pub fn msb(dist: &'a Dist, dj: i32) -> Self {
        SymbolModel {
            dist,
            dj,
            n: 256,
            base4: -2,
            step4: 1024,
            lo: 0,
            total: ONE,
        }
    }

    /// The low byte, given the high byte `m`.
    pub fn lsb(dist: &'a Dist, dj: i32, m: u32) -> Self {
        let base4 = 1024 * m as i64 - 2;
        let lo = if m == 0 { 0 } else { dist.cdf(base4, dj) };
        let hi = if m == 255 {
            ONE
        } else {
            dist.cdf(base4 + 1024, dj)
        };
        SymbolModel {
            dist,
            dj,
            n: 256,
            base4,
            step4: 4,
            lo,
            total: hi - lo,
        }
    }

    /// A whole 16-bit value (the 1×16-bit variant).
    pub fn value16(dist: &'a Dist, dj: i32) -> Self {
        SymbolModel {
            dist,
            dj,
            n: 65536,
            base4: -2,
            step4: 4,
            lo: 0,
            total: ONE,
        }
    }

    pub fn symbols(&self) -> u32 {
        self.n
    }

    /// Left cumulative frequency of symbol `b` (0..=n), out of 2^24.
    #[inline]
    pub fn cum(&self, b: u32) -> u32 {
        if self.total <= 0 {
            return b * ((1u32 << PRECISION) / self.n);
        }
        let g = if b == 0 {
            0
        } else if b >= self.n {
            self.total
        } else {
            (self.dist.cdf(self.base4 + self.step4 * b as i64, self.dj) - self.lo)
                .clamp(0, self.total)
        };
        b + ((g as u64 * ((1u64 << PRECISION) - self.n as u64)) / self.total as u64) as u32
    }

    /// Bits the coder spends on symbol `b` (for the encoder's choices).
    pub fn cost(&self, b: u32) -> f64 {
        PRECISION as f64 - libm::log2((self.cum(b + 1) - self.cum(b)) as f64)
    }
}

impl EntropyModel<PRECISION> for SymbolModel<'_> {
    type Symbol = u32;
    type Probability = u32;
}

impl EncoderModel<PRECISION> for SymbolModel<'_> {
    fn left_cumulative_and_probability(
        &self,
        symbol: impl std::borrow::Borrow<u32>,
    ) -> Option<(u32, NonZeroU32)> {
        let b = *symbol.borrow();
        if b >= self.n {
            return None;
        }
        let l = self.cum(b);
        NonZeroU32::new(self.cum(b + 1) - l).map(|p| (l, p))
    }
}

impl DecoderModel<PRECISION> for SymbolModel<'_> {
    fn quantile_function(&self, quantile: u32) -> (u32, u32, NonZeroU32) {
        let (mut lo, mut hi) = (0u32, self.n);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.cum(mid) <= quantile {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let l = self.cum(lo);
        let p = self.cum(lo + 1) - l;
        (
            lo,
            l,
            NonZeroU32::new(p).expect("cumulative frequencies are strictly increasing"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::TestRng;

    /// The coding tables are part of the PCNN_1 format: built at run time
    /// from libm, so a change of libm, of the construction or of a constant
    /// would change coded streams under an unchanged version keyword. The
    /// fingerprint is pinned here (and tests/compat decodes frozen files);
    /// a deliberate change needs a new format version.
    #[test]
    fn coding_tables_are_pinned() {
        assert_eq!(
            table_fingerprint(),
            PINNED_FINGERPRINT,
            "{:#x}",
            table_fingerprint()
        );
    }
    const PINNED_FINGERPRINT: u64 = 0x1b41_32d0_d129_de7d;

    fn random_dist(rng: &mut TestRng) -> Dist {
        let k = 1 + (rng.next() % 4) as usize;
        let out: Vec<i32> = (0..k * PER_COMPONENT)
            .map(|_| rng.range(-3000, 3000) as i32)
            .collect();
        let base = rng.range(0, 65535);
        let cand = [base * 4; NCAND].map(|c| c + rng.range(-4000, 4000));
        Dist::new(&out, &cand, k)
    }

    #[test]
    fn frequencies_are_positive_and_sum_to_one_for_every_model() {
        let mut rng = TestRng(21);
        for _ in 0..300 {
            let d = random_dist(&mut rng);
            assert_eq!(
                d.comps[..d.k as usize]
                    .iter()
                    .map(|c| c.pi as u32)
                    .sum::<u32>(),
                1 << 15
            );
            let dj = rng.range(-8, 8) as i32;
            let m = rng.range(0, 255) as u32;
            for sm in [SymbolModel::msb(&d, dj), SymbolModel::lsb(&d, dj, m)] {
                assert_eq!(sm.cum(0), 0);
                assert_eq!(sm.cum(256), 1 << 24);
                for b in 0..256 {
                    assert!(sm.cum(b + 1) > sm.cum(b));
                    let q = sm.cum(b) + (sm.cum(b + 1) - sm.cum(b)) / 2;
                    assert_eq!(sm.quantile_function(q).0, b);
                }
            }
            let v = SymbolModel::value16(&d, dj);
            assert_eq!(v.cum(65536), 1 << 24);
        }
    }

    #[test]
    fn split_costs_what_the_16_bit_value_costs() {
        // Chain rule: P(msb)·P(lsb | msb) = P(value), up to the frequency
        // floors (which decide the cost of values the model all but excludes;
        // those are skipped).
        let mut rng = TestRng(5);
        let mut checked = 0;
        for _ in 0..400 {
            let d = random_dist(&mut rng);
            let v = (d.comps[0].mu4 as i64 / 4 + rng.range(-50, 50)).clamp(0, 65535) as u32;
            let split = SymbolModel::msb(&d, 0).cost(v >> 8)
                + SymbolModel::lsb(&d, 0, v >> 8).cost(v & 255);
            let whole = SymbolModel::value16(&d, 0).cost(v);
            if whole > 16.0 {
                continue;
            }
            checked += 1;
            assert!(
                (split - whole).abs() < 0.05 + 0.01 * whole,
                "split {split} whole {whole}"
            );
        }
        assert!(checked > 100, "only {checked} values checked");
    }
}
