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
//! - **Bias cancellation.** Per level, activity class and local shape
//!   (1280 classes), an exponential running mean of the residual is added
//!   to the prediction (LOCO-I's C[Q] without division).
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
//! Speed: the loop is written for the decoder, where each pixel waits on
//! the one before. What comes from the rows above (seven of the nine taps,
//! the activity terms of the row above) is summed for the whole row first;
//! interior pixels then take a short path without edge tests, and the sign
//! of the residual, the fold and the tokens are selects, not branches.
//!
//! What was measured and dropped (docs/mixpred.md): mixing four predictors
//! by their recent errors (JPEG-XL's weighted predictor idea) gave +0.2%
//! geometric mean but −0.3% pooled on corpus/train at 1.4× the time; four
//! predictor sets by pixel parity, contexts without the previous pixel (a
//! shorter dependency chain: −0.8%), a repeat-the-neighbour mode for
//! scans, finer activity classes and tokens with three mantissa bits were
//! each no better on corpus/train.

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
/// Bias-cancellation classes: level × activity class × 4 local-shape classes.
const N_BIAS: usize = N_CTX * 4;
/// The bias follows the mean residual with weight 2^-BIAS_SHIFT per pixel.
const BIAS_SHIFT: u32 = 5;

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

/// Fold residual `v - p` (both in 0..=maxv) to 0..=maxv: 2d for v = p + d,
/// 2d − 1 for v = p − d while both sides have room, then the one-sided
/// values in order. Written as selects, not branches: the sign of a
/// residual is a coin flip that a branch predictor cannot learn.
#[inline(always)]
pub fn fold(v: u32, p: u32, maxv: u32) -> u32 {
    // 2 * d ≤ 2 * m ≤ maxv, so nothing overflows.
    let m = p.min(maxv - p);
    let d = v.abs_diff(p);
    let near = (d << 1).wrapping_sub((v < p) as u32);
    if d > m {
        m + d
    } else {
        near
    }
}

/// The inverse of [`fold`]; None when `z` exceeds maxv (a corrupt stream).
#[inline(always)]
pub fn unfold(z: u32, p: u32, maxv: u32) -> Option<u32> {
    if z > maxv {
        return None;
    }
    let m = p.min(maxv - p);
    let h = (z >> 1) + (z & 1);
    let near = if z & 1 == 0 {
        p.wrapping_add(h)
    } else {
        p.wrapping_sub(h)
    };
    let d = z.wrapping_sub(m);
    let far = if p < maxv - p {
        p.wrapping_add(d)
    } else {
        p.wrapping_sub(d)
    };
    Some(if (z as u64) <= 2 * m as u64 {
        near
    } else {
        far
    })
}

/// Bits below the leading one that a token carries (the rest are raw).
pub const MANT: u32 = 2;
/// Number of tokens: 16 literal values, then 2^MANT per bit length 5..=32.
pub const N_TOKENS: usize = 16 + (28 << MANT);
/// Bits of a token number in the table format.
pub const TOKEN_BITS: u32 = usize::BITS - (N_TOKENS - 1).leading_zeros();
const _: () = assert!(N_TOKENS <= 256, "tokens are stored in bytes");

/// Token, raw-bit count and raw bits of a folded value: values below 16
/// are their own token; others are coded by their bit length and the MANT
/// bits below the leading one, plus raw bits.
#[inline(always)]
pub fn tokenise(z: u32) -> (u32, u32, u32) {
    let n = 31 - (z | 1).leading_zeros();
    let nb = n.saturating_sub(MANT);
    let big_tok = (n.wrapping_sub(4) << MANT)
        .wrapping_add(16)
        .wrapping_add((z >> nb) & ((1 << MANT) - 1));
    if z < 16 {
        (z, 0, 0)
    } else {
        (big_tok, nb, z & ((1 << nb) - 1))
    }
}

/// Raw-bit count of a token.
#[inline(always)]
pub fn token_bits(tok: u32) -> u32 {
    if tok < 16 {
        0
    } else {
        ((tok - 16) >> MANT) + 4 - MANT
    }
}

/// The folded value from a token and its raw bits.
#[inline(always)]
pub fn detokenise(tok: u32, bits: u32) -> u32 {
    let nb = ((tok.wrapping_sub(16) >> MANT).wrapping_add(4 - MANT)) & 31;
    let lead = (1 << MANT) | (tok.wrapping_sub(16) & ((1 << MANT) - 1));
    let big = (lead << nb) | bits;
    if tok < 16 {
        tok
    } else {
        big
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
///
/// Interior pixels (y ≥ 2, 2 ≤ x < width − 2) take a fast path: what comes
/// from the rows above (the predictor's taps there, the activity terms of
/// the row above) is summed for the whole row first, so the per-pixel work
/// that waits on the previous pixel is a few operations. Edge pixels take
/// the general path. Both compute the same quantities by the same rules.
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
    // Per interior pixel of the row: the predictor's sum over the taps of
    // the rows above, and the activity terms of the row above.
    let mut above_sum = vec![0i64; width];
    let mut above_act = vec![0u32; width];
    let mut st = State {
        bias_acc: [0; N_BIAS],
        max8: maxv as i64 * 8,
        maxv,
    };
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
        let fast = y >= 2 && width >= 5;
        let edge_end = if fast { 2 } else { width };
        for x in 0..edge_end {
            if !edge_pixel::<C, DECODE>(u, x, y, width, prev_row, cur_row, &mut st, coder) {
                return false;
            }
        }
        if fast {
            let end = width - 2;
            let (done, rest) = u.split_at_mut(row);
            let r1 = &done[row - width..row];
            let r2 = &done[row - 2 * width..row - width];
            let res1 = &prev_row[..width + 3];
            // The rows above, for x in 2..width-2: taps NW, NE, NN, NWW,
            // NNW, NNE, NEE (W and WW come per pixel).
            let c = coef.map(|c| c as i64);
            for x in 2..end {
                let n = r1[x] as i64;
                let nw = r1[x - 1] as i64;
                let ne = r1[x + 1] as i64;
                let s = c[1] * (nw - n)
                    + c[2] * (ne - n)
                    + c[4] * (r2[x] as i64 - n)
                    + c[5] * (r1[x - 2] as i64 - n)
                    + c[6] * (r2[x - 1] as i64 - n)
                    + c[7] * (r2[x + 1] as i64 - n)
                    + c[8] * (r1[x + 2] as i64 - n);
                above_sum[x] = s;
                let g = ((n - nw).unsigned_abs() + (ne - n).unsigned_abs()).min(ERR_CAP as u64);
                above_act[x] =
                    2 * res1[x + 2] + res1[x + 1] + res1[x + 3] + 2 * GRAD_WEIGHT * g as u32;
            }
            let (cw, cww) = (c[0], c[3]);
            let u_cur = &mut rest[..width];
            let mut w = u_cur[1] as i64;
            let mut ww = u_cur[0] as i64;
            let mut r_w = cur_row[3];
            let mut r_ww = cur_row[2];
            let cells = u_cur[2..end]
                .iter_mut()
                .zip(&above_sum[2..end])
                .zip(&above_act[2..end])
                .zip(&r1[2..end])
                .zip(&r1[1..end - 1])
                .zip(cur_row[4..end + 2].iter_mut());
            for (((((cell, &s_above), &a_above), &n), &nw), r_out) in cells {
                let (n, nw) = (n as i64, nw as i64);
                let s = s_above + cw * (w - n) + cww * (ww - n);
                let linear = 8 * n + (s >> 5);
                let gw = ((w - nw).unsigned_abs()).min(ERR_CAP as u64) as u32;
                let act2 = a_above + 2 * r_w + r_ww + 2 * GRAD_WEIGHT * gw;
                let shape = ((n > nw) as usize) | (((w > nw) as usize) << 1);
                let Some((v, r)) = st.pixel::<C, DECODE>(cell, linear, act2, shape, coder) else {
                    return false;
                };
                *r_out = r;
                ww = w;
                w = v as i64;
                r_ww = r_w;
                r_w = r;
            }
            for x in end..width {
                if !edge_pixel::<C, DECODE>(u, x, y, width, prev_row, cur_row, &mut st, coder) {
                    return false;
                }
            }
        }
        cur_row[width + 2] = cur_row[width + 1];
    }
    true
}

/// The adaptive state of [`run`]: bias cancellation.
struct State {
    bias_acc: [i32; N_BIAS],
    max8: i64,
    maxv: u32,
}

impl State {
    /// Code pixel `i` given its linear prediction (1/8 units), doubled
    /// activity and local shape; returns the value and its absolute residual.
    #[inline(always)]
    fn pixel<C: SymbolCoder, const DECODE: bool>(
        &mut self,
        cell: &mut u32,
        linear: i64,
        act2: u32,
        shape: usize,
        coder: &mut C,
    ) -> Option<(u32, u32)> {
        let act_class = quantise(act2 >> 1);
        let mix8 = linear.clamp(0, self.max8);
        // Bias classes by the level before the bias correction.
        let lvl_m = (((32 - (((mix8 + 4) >> 3) as u32).leading_zeros()) as usize) >> LVL_SHIFT)
            .min(N_LVL - 1);
        let bctx = (lvl_m * N_ACT + act_class) * 4 + shape;
        let p8 = (mix8 + (self.bias_acc[bctx] >> BIAS_SHIFT) as i64).clamp(0, self.max8);
        let pred = ((p8 + 4) >> 3) as u32;
        let lvl = (((32 - pred.leading_zeros()) as usize) >> LVL_SHIFT).min(N_LVL - 1);
        let ctx = lvl * N_ACT + act_class;
        let v = if DECODE {
            let z = coder.code(ctx, 0);
            let v = unfold(z, pred, self.maxv)?;
            *cell = v;
            v
        } else {
            let v = *cell;
            coder.code(ctx, fold(v, pred, self.maxv));
            v
        };
        let v8 = v as i64 * 8;
        let r = (v8 - p8).unsigned_abs().min(ERR_CAP as u64) as u32;
        // Bias cancellation: an exponential mean (1/32) of v - mix, in 1/8 units.
        let d = (v8 - mix8).clamp(-(1 << 20), 1 << 20) as i32;
        let a = &mut self.bias_acc[bctx];
        *a += d - (*a >> BIAS_SHIFT);
        Some((v, r))
    }
}

/// An edge pixel (first two rows, first two and last two columns): the
/// neighbours outside the tile repeat the nearest inside, and the
/// prediction is W + N − NW.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn edge_pixel<C: SymbolCoder, const DECODE: bool>(
    u: &mut [u32],
    x: usize,
    y: usize,
    width: usize,
    prev_row: &[u32],
    cur_row: &mut [u32],
    st: &mut State,
    coder: &mut C,
) -> bool {
    let i = y * width + x;
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
    let linear = 8 * (w + n - nw);
    let r_n = prev_row[x + 2];
    let r_nw = prev_row[x + 1];
    let r_ne = prev_row[(x + 3).min(width + 1)];
    let r_w = cur_row[x + 1];
    let r_ww = cur_row[x];
    let g_above = ((n - nw).unsigned_abs() + (ne - n).unsigned_abs()).min(ERR_CAP as u64) as u32;
    let g_w = ((w - nw).unsigned_abs()).min(ERR_CAP as u64) as u32;
    let act2 = 2 * r_n + r_nw + r_ne + 2 * r_w + r_ww + 2 * GRAD_WEIGHT * (g_above + g_w);
    let shape = ((n > nw) as usize) | (((w > nw) as usize) << 1);
    match st.pixel::<C, DECODE>(&mut u[i], linear, act2, shape, coder) {
        Some((_, r)) => {
            cur_row[x + 2] = r;
            true
        }
        None => false,
    }
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
    // Large tiles: one pixel in four, in 2×2 blocks (rows y ≡ 0, 1 mod 4,
    // columns x ≡ 0, 1 mod 4), so that every parity class of a Bayer mosaic
    // is in the sample; small tiles need every pixel.
    let big = width * height > FIT_ALL_BELOW;
    let mut y = 2;
    while y < height {
        if big && (y & 3) >= 2 {
            y += 1;
            continue;
        }
        for x in 2..width.saturating_sub(2) {
            if big && (x & 3) >= 2 {
                continue;
            }
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
        y += 1;
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
