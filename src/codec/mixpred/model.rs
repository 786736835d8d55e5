//! The modelling layer of MIXPRED_1: prediction, contexts, bias
//! cancellation, the residual fold and the hybrid-integer tokens.
//!
//! One pixel loop ([`run`]) serves the encoder and the decoder, so both
//! compute the same predictions and contexts by construction. All
//! arithmetic is on integers; nothing depends on the platform.
//!
//! Per pixel, in raster order over the tile's mapped values `u` (0..=maxv),
//! in 1/8 units where noted (docs/formats/MIXPRED_1.md has the exact rules):
//! - **Prediction.** A linear predictor over nine causal neighbours whose
//!   coefficients the encoder fits to the tile by least squares
//!   ([`fit_linear`]) and sends (1/256 units): it averages noise where the
//!   frame is noise, follows Bayer mosaics and correlated read noise where
//!   they are there. Near the tile's edges: W + N − NW.
//! - **Bias cancellation.** Per activity class and local shape, an
//!   exponential running mean of the residual is added to the prediction
//!   (LOCO-I's C[Q] without division).
//! - **Context.** Activity (the neighbours' absolute residuals plus a
//!   gradient term), quantised on a log scale in 40 classes, times 8 classes
//!   of the predicted level (noise grows with signal): 320 contexts, which
//!   the entropy layer groups per tile.
//! - **Fold.** The residual is folded to 0..=maxv given the prediction, so
//!   no value is ever out of range and tiles next to 0 or the maximum cost
//!   nothing extra.
//! - **Token.** The folded value becomes a token (0..=127: values below 16
//!   as themselves, others by their bit length and two more bits) and raw
//!   bits, coded by the entropy layer in the pixel's context.
//!
//! What was measured and dropped (docs/mixpred.md): mixing four predictors
//! by their recent errors (JPEG-XL's weighted predictor idea) gave +0.2%
//! geometric mean but −0.3% pooled on corpus/train at 1.4× the time.

/// Taps of the per-tile least-squares predictor (see [`fit_linear`]).
pub const N_TAPS: usize = 9;
/// Activity classes.
pub const N_ACT: usize = 40;
/// Signal-level classes.
pub const N_LVL: usize = 8;
/// Number of coding contexts: level-major, activity-minor.
pub const N_CTX: usize = N_ACT * N_LVL;
/// Errors are capped so that sums of them cannot overflow.
const ERR_CAP: u32 = 1 << 26;
/// Level class = bit length of the prediction >> LVL_SHIFT.
const LVL_SHIFT: u32 = 1;
/// Weight of the gradient term in the activity (residuals are in 1/8 units).
const GRAD_WEIGHT: u32 = 8;
/// Tiles of at most this many pixels fit their predictor on every pixel.
const FIT_ALL_BELOW: usize = 1 << 15;
/// Bias-cancellation classes: activity class × 4 local-shape classes.
const N_BIAS: usize = N_ACT * 4;
/// The bias follows the mean residual with weight 2^-BIAS_SHIFT per pixel.
const BIAS_SHIFT: u32 = 4;

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
        Some(if z & 1 == 0 {
            p + z / 2
        } else {
            p - z.div_ceil(2)
        })
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
    // Absolute residuals (1/8 units) of the previous and current row, padded
    // by two positions on the left and one on the right (position p holds
    // pixel x = p - 2; pads repeat the nearest pixel's).
    let stride = width + 3;
    let mut rows = vec![0u32; 2 * stride];
    let mut bias_acc = [0i32; N_BIAS];
    let mut bias = [0i32; N_BIAS];
    let max8 = (maxv as i64) * 8;
    for y in 0..height {
        let (cur_row, prev_row) = if y & 1 == 0 {
            rows.split_at_mut(stride)
        } else {
            let (a, b) = rows.split_at_mut(stride);
            (b, a)
        };
        let prev_row: &[u32] = prev_row;
        cur_row[0] = prev_row[2];
        cur_row[1] = prev_row[2];
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
            let r_n = prev_row[x + 2];
            let r_nw = prev_row[x + 1];
            let r_ne = prev_row[(x + 3).min(width + 1)];
            let r_w = cur_row[x + 1];
            let r_ww = cur_row[x];
            let grad = (w - nw).unsigned_abs() + (n - nw).unsigned_abs() + (ne - n).unsigned_abs();
            let act = r_n
                + r_w
                + (r_nw + r_ne + r_ww) / 2
                + (grad.min(ERR_CAP as u64) as u32) * GRAD_WEIGHT;
            let act_class = quantise(act);
            let shape = ((n > nw) as usize) | (((w > nw) as usize) << 1);
            let bctx = act_class * 4 + shape;
            let mix8 = linear.clamp(0, max8);
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
            cur_row[x + 2] = (v8 - p8).unsigned_abs().min(ERR_CAP as u64) as u32;
            // Bias cancellation: an exponential mean (1/16) of v - mix, in 1/8 units.
            let d = (v8 - mix8).clamp(-(1 << 20), 1 << 20) as i32;
            let a = &mut bias_acc[bctx];
            *a += d - (*a >> BIAS_SHIFT);
            bias[bctx] = *a >> BIAS_SHIFT;
        }
        cur_row[width + 2] = cur_row[width + 1];
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
/// (tap − N), by least squares over a sample of the tile (encoder only; the
/// coefficients travel in the stream in 1/256 units, so the decoder does no
/// floating point). Returns zeros when the system is singular.
pub fn fit_linear(u: &[u32], width: usize, height: usize) -> [i32; N_TAPS] {
    let mut ata = [[0f64; N_TAPS]; N_TAPS];
    let mut atb = [0f64; N_TAPS];
    // Large tiles: every fourth row, every other pixel (the fit then costs a
    // few operations per pixel); small tiles need every sample.
    let (step_y, step_x) = if width * height > FIT_ALL_BELOW {
        (4, 2)
    } else {
        (1, 1)
    };
    let mut y = 2;
    while y < height {
        for x in (2..width.saturating_sub(2)).step_by(step_x) {
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
        y += step_y;
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
        out[k] = if q.is_finite() {
            q.clamp(-32767.0, 32767.0) as i32
        } else {
            0
        };
    }
    out
}
