//! The modelling layer of MIXPRED_1: prediction by mixing, contexts, bias
//! cancellation, the residual fold and the hybrid-integer tokens.
//!
//! One pixel loop ([`run`]) serves the encoder and the decoder, so both
//! compute the same predictions and contexts by construction. All
//! arithmetic is on integers; nothing depends on the platform.
//!
//! Per pixel, in raster order over the tile's mapped values `u` (0..=maxv):
//! - **Predictors.** [`N_PRED`] simple causal predictors in 1/8 units.
//! - **Mixing.** Each predictor's recent absolute error at the four causal
//!   neighbours (N, NW, NE, W) is summed; its weight is the reciprocal of
//!   that sum (a 256-entry table and a shift, so ~8 significant bits). The
//!   prediction is the weighted mean (the idea of JPEG-XL's self-correcting
//!   weighted predictor, and of PCNN_1's learned mixing, without a network).
//! - **Context.** The coding context is the quantised log of the local
//!   activity: the final absolute residuals at N, W, NW and NE, plus the
//!   spread of the predictors (so edges and stars get their own context).
//! - **Bias cancellation.** Per context, the running mean residual is added
//!   to the prediction (LOCO-I's C[Q], as an exponential mean: no division).
//! - **Fold.** The residual is folded to 0..=maxv given the prediction, so
//!   no value is ever out of range and tiles next to 0 or the maximum cost
//!   nothing extra.
//! - **Token.** The folded value becomes a token (0..=127: values below 16
//!   as themselves, others by their bit length and two more bits) and raw
//!   bits, coded by the entropy layer in the pixel's context.

/// Number of mixed predictors.
pub const N_PRED: usize = 5;
/// Taps of the per-tile least-squares predictor (see [`fit_linear`]).
pub const N_TAPS: usize = 9;
/// Number of coding contexts.
/// Activity classes.
pub const N_ACT: usize = 40;
/// Signal-level classes.
pub const N_LVL: usize = 8;
/// Number of coding contexts: level-major, activity-minor.
pub const N_CTX: usize = N_ACT * N_LVL;
/// Errors are capped so that sums of them cannot overflow.
const ERR_CAP: u32 = 1 << 26;
const LVL_SHIFT: u32 = 1;
/// Bias-cancellation contexts: coding context × 4 local-shape classes.
const N_BIAS: usize = N_ACT * 4;
/// The bias follows the mean residual with weight 2^-BIAS_SHIFT per pixel.
const BIAS_SHIFT: u32 = 4;

/// Reciprocals for the predictor weights: RECIP[j] = 2^24 / j.
static RECIP: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut j = 1;
    while j < 256 {
        t[j] = (1 << 24) / j as u32;
        j += 1;
    }
    t
};

#[inline(always)]
fn weight(err_sum: u32) -> u64 {
    // err_sum + 1 ≥ 1; keep its top 8 bits.
    let e = err_sum + 1;
    let bits = 32 - e.leading_zeros();
    let s = bits.saturating_sub(8);
    (RECIP[(e >> s) as usize] >> s) as u64 + 1
}

/// Quantised log2 with two steps per octave, capped at N_ACT - 1.
#[inline(always)]
fn quantise(a: u32) -> usize {
    let q = if a < 4 {
        a
    } else {
        let bl = 32 - a.leading_zeros();
        2 * bl - 2 + ((a >> (bl - 2)) & 1)
    };
    (q as usize).min(N_ACT - 1)
}

/// Fold residual `v - p` (both in 0..=maxv) to 0..=maxv.
#[inline(always)]
pub fn fold(v: u32, p: u32, maxv: u32) -> u32 {
    // 2 * d ≤ 2 * m ≤ maxv, so nothing overflows.
    let m = p.min(maxv - p);
    let d = v.abs_diff(p);
    if d > m {
        m + d
    } else if v >= p {
        2 * d
    } else {
        2 * d - 1
    }
}

/// The inverse of [`fold`]; None when `z` exceeds maxv (a corrupt stream).
#[inline(always)]
pub fn unfold(z: u32, p: u32, maxv: u32) -> Option<u32> {
    if z > maxv {
        return None;
    }
    let m = p.min(maxv - p);
    if (z as u64) <= 2 * m as u64 {
        Some(if z & 1 == 0 { p + z / 2 } else { p - z.div_ceil(2) })
    } else {
        let d = z - m;
        Some(if p < maxv - p { p + d } else { p - d })
    }
}

/// Token, raw-bit count and raw bits of a folded value.
#[inline(always)]
pub fn tokenise(z: u32) -> (u32, u32, u32) {
    if z < 16 {
        (z, 0, 0)
    } else {
        let n = 31 - z.leading_zeros();
        let tok = 16 + (n - 4) * 4 + ((z >> (n - 2)) & 3);
        (tok, n - 2, z & ((1 << (n - 2)) - 1))
    }
}

/// Raw-bit count of a token.
#[inline(always)]
pub fn token_bits(tok: u32) -> u32 {
    if tok < 16 {
        0
    } else {
        (tok - 16) / 4 + 2
    }
}

/// The folded value from a token and its raw bits.
#[inline(always)]
pub fn detokenise(tok: u32, bits: u32) -> u32 {
    if tok < 16 {
        tok
    } else {
        let nb = (tok - 16) / 4 + 2;
        ((4 | ((tok - 16) & 3)) << nb) | bits
    }
}

/// What codes one folded value in a context: the encoder records the given
/// value and returns it; the decoder ignores it and returns the next one.
pub trait SymbolCoder {
    fn code(&mut self, ctx: usize, z: u32) -> u32;
}

/// Per-predictor and residual error rows (previous and current), padded
/// by two on the left and one on the right.
struct Rows {
    width: usize,
    err: [Vec<u32>; N_PRED],
    res: Vec<u32>,
}

impl Rows {
    fn new(width: usize) -> Self {
        let n = 2 * (width + 3) + 1;
        Rows {
            width,
            err: std::array::from_fn(|_| vec![0; n]),
            res: vec![0; n],
        }
    }
    #[inline(always)]
    fn base(&self, y: usize) -> (usize, usize) {
        let stride = self.width + 3;
        if y & 1 == 0 {
            (1, 1 + stride)
        } else {
            (1 + stride, 1)
        }
    }
}

/// Run the model over a `width` × `height` tile of values in 0..=maxv.
/// Encoding (`DECODE = false`) reads `u`; decoding fills it. Returns false
/// when the decoder met a value out of range (a corrupt stream); `u` is then
/// incomplete.
pub fn run<C: SymbolCoder, const DECODE: bool>(
    u: &mut [u32],
    width: usize,
    height: usize,
    maxv: u32,
    coef: &[i32; N_TAPS],
    coder: &mut C,
) -> bool {
    debug_assert_eq!(u.len(), width * height);
    let mut rows = Rows::new(width);
    let mut bias_acc = [0i32; N_BIAS];
    let mut bias = [0i32; N_BIAS];
    let max8 = (maxv as i64) * 8;
    for y in 0..height {
        let (cur, prev) = rows.base(y);
        // Left padding of the current rows: the first pixel sees its N's errors.
        for e in rows.err.iter_mut() {
            e[cur] = e[prev + 1];
            e[prev + width + 1] = e[prev + width];
        }
        rows.res[cur] = rows.res[prev + 1];
        rows.res[cur - 1] = rows.res[prev + 1];
        rows.res[prev + width + 1] = rows.res[prev + width];
        let row = y * width;
        for x in 0..width {
            let i = row + x;
            // Neighbours; outside the tile they repeat the nearest inside.
            let (w, n, nw, ne) = if y == 0 {
                let w = if x > 0 { u[i - 1] } else { 0 };
                (w, w, w, w)
            } else {
                let n = u[i - width];
                let w = if x > 0 { u[i - 1] } else { n };
                let nw = if x > 0 { u[i - width - 1] } else { n };
                let ne = if x + 1 < width { u[i - width + 1] } else { n };
                (w, n, nw, ne)
            };
            let (w, n, nw, ne) = (w as i64, n as i64, nw as i64, ne as i64);
            let linear = if y >= 2 && x >= 2 && x + 2 < width {
                let f = taps(u, i, width);
                let mut s = 0i64;
                for k in 0..N_TAPS {
                    s += coef[k] as i64 * (f[k] - n);
                }
                8 * n + (s >> 5)
            } else {
                8 * (w + n - nw)
            };
            let preds: [i64; N_PRED] = [
                8 * w,
                8 * n,
                4 * (w + ne),
                8 * (w + n - nw),
                linear,
            ];
            let mut wsum = 0u64;
            let mut acc = 0i64;
            let mut lo = i64::MAX;
            let mut hi = i64::MIN;
            for (k, &p) in preds.iter().enumerate() {
                let e = &rows.err[k];
                let s = e[prev + x + 1] + e[prev + x] + e[prev + x + 2] + e[cur + x];
                let wt = weight(s);
                wsum += wt;
                let p = p.clamp(0, max8);
                acc += wt as i64 * p;
                lo = lo.min(p);
                hi = hi.max(p);
            }
            let mix8 = (acc + (wsum / 2) as i64) / wsum as i64;
            let r = &rows.res;
            let act = r[prev + x + 1] + r[cur + x] + (r[prev + x] + r[prev + x + 2] + r[cur + x - 1]) / 2
                + ((hi - lo) as u64 >> 1).min(ERR_CAP as u64) as u32;
            let act_class = quantise(act);
            let shape = ((n > nw) as usize) | (((w > nw) as usize) << 1);
            let bctx = act_class * 4 + shape;
            let p8 = (mix8 + bias[bctx] as i64).clamp(0, max8);
            let pred = ((p8 + 4) >> 3) as u32;
            let lvl = (((32 - pred.leading_zeros()) as usize) >> LVL_SHIFT).min(N_LVL - 1);
            let ctx = lvl * N_ACT + act_class;
            let v = if DECODE {
                let z = coder.code(ctx, 0);
                match unfold(z, pred, maxv) {
                    Some(v) => {
                        u[i] = v;
                        v
                    }
                    None => return false,
                }
            } else {
                let v = u[i];
                coder.code(ctx, fold(v, pred, maxv));
                v
            };
            let v8 = v as i64 * 8;
            for (k, &p) in preds.iter().enumerate() {
                rows.err[k][cur + x + 1] = ((v8 - p.clamp(0, max8)).unsigned_abs() as u32).min(ERR_CAP);
            }
            rows.res[cur + x + 1] = ((v8 - p8).unsigned_abs() as u32).min(ERR_CAP);
            // Bias cancellation: an exponential mean (1/16) of v - mix, in 1/8 units.
            let d = (v8 - mix8).clamp(-(1 << 20), 1 << 20) as i32;
            let a = &mut bias_acc[bctx];
            *a += d - (*a >> BIAS_SHIFT);
            bias[bctx] = *a >> BIAS_SHIFT;
        }
    }
    true
}

/// The least-squares predictor's neighbours of pixel `i` (needs y ≥ 2,
/// 2 ≤ x < width - 2): W, NW, NE, WW, NN, NWW, NNW, NNE, NEE.
#[inline(always)]
fn taps(u: &[u32], i: usize, width: usize) -> [i64; N_TAPS] {
    let n = i - width;
    let nn = n - width;
    [
        u[i - 1] as i64,
        u[n - 1] as i64,
        u[n + 1] as i64,
        u[i - 2] as i64,
        u[nn] as i64,
        u[n - 2] as i64,
        u[nn - 1] as i64,
        u[nn + 1] as i64,
        u[n + 2] as i64,
    ]
}

/// Fit the tile's linear predictor: value − N as a combination of
/// (tap − N), by least squares over every third row (encoder only; the
/// coefficients travel in the stream in 1/256 units, so the decoder does no
/// floating point). Returns zeros when the system is singular.
pub fn fit_linear(u: &[u32], width: usize, height: usize) -> [i32; N_TAPS] {
    let mut ata = [[0f64; N_TAPS]; N_TAPS];
    let mut atb = [0f64; N_TAPS];
    let mut y = 2;
    while y < height {
        for x in 2..width.saturating_sub(2) {
            let i = y * width + x;
            let n = u[i - width] as f64;
            let t = taps(u, i, width);
            let mut f = [0f64; N_TAPS];
            for k in 0..N_TAPS {
                f[k] = t[k] as f64 - n;
            }
            let b = u[i] as f64 - n;
            for a in 0..N_TAPS {
                atb[a] += f[a] * b;
                for c in a..N_TAPS {
                    ata[a][c] += f[a] * f[c];
                }
            }
        }
        y += 3;
    }
    for a in 0..N_TAPS {
        for c in 0..a {
            ata[a][c] = ata[c][a];
        }
        // A little ridge keeps flat or tiny tiles well-posed.
        ata[a][a] += 1e-3 * (1.0 + ata[a][a]);
    }
    // Gaussian elimination with partial pivoting.
    let mut m = ata;
    let mut b = atb;
    for col in 0..N_TAPS {
        let piv = (col..N_TAPS)
            .max_by(|&p, &q| m[p][col].abs().total_cmp(&m[q][col].abs()))
            .unwrap_or(col);
        if m[piv][col].abs() < 1e-9 {
            return [0; N_TAPS];
        }
        m.swap(col, piv);
        b.swap(col, piv);
        for r in col + 1..N_TAPS {
            let factor = m[r][col] / m[col][col];
            for c in col..N_TAPS {
                m[r][c] -= factor * m[col][c];
            }
            b[r] -= factor * b[col];
        }
    }
    let mut sol = [0f64; N_TAPS];
    for r in (0..N_TAPS).rev() {
        let mut acc = b[r];
        for c in r + 1..N_TAPS {
            acc -= m[r][c] * sol[c];
        }
        sol[r] = acc / m[r][r];
    }
    let mut out = [0i32; N_TAPS];
    for k in 0..N_TAPS {
        let q = (sol[k] * 256.0).round();
        out[k] = if q.is_finite() { q.clamp(-32767.0, 32767.0) as i32 } else { 0 };
    }
    out
}
