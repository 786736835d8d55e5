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
//!   they are there. Pixels are put in six classes by the gradient of the
//!   rows above, on a scale set per tile by its noise; a class gets
//!   coefficients of its own when that saves more than they cost (smooth
//!   areas want averaging, edges want the gradient: +0.5% geometric mean on
//!   corpus/train, +2% on the LCO amplifier frames). Near the tile's edges:
//!   W + N − NW.
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
//! the activity terms of the row above, the coefficients of W and WW of the
//! pixel's class) is gathered for the whole row first into one record per
//! pixel; interior pixels then take a short path without edge tests, and
//! the sign of the residual, the fold and the tokens are selects, not
//! branches. The symbol coder is moved into [`run`] and back out, so that
//! its state (rANS states, read positions) can live in registers.
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
    pred: &Predictor,
    coder: C,
) -> (C, bool) {
    debug_assert_eq!(u.len(), width * height);
    // The coder lives in this frame while the tile codes, so that its
    // state (rANS states, read positions) stays in registers.
    let mut coder = coder;
    // Absolute residuals (1/8 units) of the previous and current row, padded
    // by two positions on the left and one on the right (position p holds
    // pixel x = p - 2; pads repeat the nearest pixel's).
    let stride = width + 3;
    let mut rows = vec![0u32; 2 * stride];
    // Per interior pixel of the row: what the rows above give it.
    let mut above = vec![Above::default(); width];
    let cs: Vec<[i64; N_TAPS]> = pred.coef.iter().map(|c| c.map(|c| c as i64)).collect();
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
            if !edge_pixel::<C, DECODE>(u, x, y, width, prev_row, cur_row, &mut st, &mut coder) {
                return (coder, false);
            }
        }
        if fast {
            let end = width - 2;
            let (done, rest) = u.split_at_mut(row);
            above_row(
                &done[row - width..row],
                &done[row - 2 * width..row - width],
                &prev_row[..width + 3],
                &cs,
                pred.base,
                &mut above[..width],
            );
            let u_cur = &mut rest[..width];
            let mut w = u_cur[1] as i64;
            let mut ww = u_cur[0] as i64;
            let mut r_w = cur_row[3];
            let mut r_ww = cur_row[2];
            let cells = u_cur[2..end]
                .iter_mut()
                .zip(&above[2..end])
                .zip(cur_row[4..end + 2].iter_mut());
            for ((cell, a), r_out) in cells {
                let linear = (a.base + a.c0 * w + a.c3 * ww) >> 5;
                let nw = a.nw as i64;
                let gw = ((w - nw).unsigned_abs()).min(ERR_CAP as u64) as u32;
                let act2 = a.act + 2 * r_w + r_ww + 2 * GRAD_WEIGHT * gw;
                let shape = a.n_above_nw as usize | (((w > nw) as usize) << 1);
                let Some((v, r)) = st.pixel::<C, DECODE>(cell, linear, act2, shape, &mut coder)
                else {
                    return (coder, false);
                };
                *r_out = r;
                ww = w;
                w = v as i64;
                r_ww = r_w;
                r_w = r;
            }
            for x in end..width {
                if !edge_pixel::<C, DECODE>(u, x, y, width, prev_row, cur_row, &mut st, &mut coder)
                {
                    return (coder, false);
                }
            }
        }
        cur_row[width + 2] = cur_row[width + 1];
    }
    (coder, true)
}

/// What the rows above give an interior pixel: the predictor's sum over
/// their taps, rewritten so that the pixel adds only its W and WW terms
/// (linear = (base + c0·W + c3·WW) >> 5, which equals 8·N + (sum >> 5)
/// because 256·N is a multiple of 32), the coefficients of W and WW of the
/// pixel's class, the activity terms of the row above, NW, and whether
/// N > NW.
#[derive(Clone, Copy, Default)]
struct Above {
    base: i64,
    c0: i64,
    c3: i64,
    nw: u32,
    act: u32,
    n_above_nw: bool,
}

/// Fill `out[2..width-2]` for the row below `r1` (and `r2` above that);
/// `res1` holds the absolute residuals of `r1`, padded as in [`run`].
#[inline(never)]
fn above_row(
    r1: &[u32],
    r2: &[u32],
    res1: &[u32],
    cs: &[[i64; N_TAPS]],
    base: u32,
    out: &mut [Above],
) {
    let width = r1.len();
    let (r2, res1, out) = (&r2[..width], &res1[..width + 3], &mut out[..width]);
    for x in 2..width - 2 {
        let n = r1[x] as i64;
        let nw = r1[x - 1] as i64;
        let ne = r1[x + 1] as i64;
        let nn = r2[x] as i64;
        let g = ((n - nw).unsigned_abs() + (ne - n).unsigned_abs()).min(ERR_CAP as u64);
        let cls = class_of(
            (g + (nn - n).unsigned_abs()).min(ERR_CAP as u64) as u32,
            base,
        );
        let c = &cs[cls];
        let s = c[1] * (nw - n)
            + c[2] * (ne - n)
            + c[4] * (nn - n)
            + c[5] * (r1[x - 2] as i64 - n)
            + c[6] * (r2[x - 1] as i64 - n)
            + c[7] * (r2[x + 1] as i64 - n)
            + c[8] * (r1[x + 2] as i64 - n);
        out[x] = Above {
            base: s + (256 - c[0] - c[3]) * n,
            c0: c[0],
            c3: c[3],
            nw: nw as u32,
            act: 2 * res1[x + 2] + res1[x + 1] + res1[x + 3] + 2 * GRAD_WEIGHT * g as u32,
            n_above_nw: n > nw,
        };
    }
}

/// Predictor classes: by the gradient of the rows above.
pub const N_CLS: usize = 6;

/// The class of a pixel whose rows-above gradient is `g`: 0 below the
/// tile's base bit length, then one class per bit length.
#[inline(always)]
pub fn class_of(g: u32, base: u32) -> usize {
    ((32 - g.leading_zeros()) + 1)
        .saturating_sub(base)
        .min(N_CLS as u32 - 1) as usize
}

/// The tile's predictor: one coefficient set per class, and the base.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictor {
    pub coef: [[i32; N_TAPS]; N_CLS],
    pub base: u32,
    /// Bit k: class k has coefficients of its own (else `all`).
    pub own: u16,
    pub all: [i32; N_TAPS],
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

/// The class gradient of interior pixel `i` (see [`class_of`]).
#[inline(always)]
fn class_gradient(u: &[u32], i: usize, width: usize) -> u32 {
    let n = u[i - width] as i64;
    let g = (n - u[i - width - 1] as i64).unsigned_abs()
        + (u[i - width + 1] as i64 - n).unsigned_abs()
        + (u[i - 2 * width] as i64 - n).unsigned_abs();
    g.min(ERR_CAP as u64) as u32
}

/// Fit the tile's predictor: the class base (the bit length below which a
/// quarter of the sample's gradients fall), then per class, value − N as a
/// combination of (tap − N), by least squares over a sample of the tile
/// (encoder only; the coefficients travel in the stream in 1/256 units, so
/// the decoder does no floating point). A class with too few pixels takes
/// the fit of all.
pub fn fit_linear(u: &[u32], width: usize, height: usize) -> Predictor {
    let big = width * height > FIT_ALL_BELOW;
    let sampled = |y: usize, x: usize| !(big && ((y & 3) >= 2 || (x & 3) >= 2));
    // The base: a quarter of the sampled gradients have a smaller bit length.
    let mut hist = [0usize; 34];
    let mut total = 0;
    for y in 2..height {
        for x in 2..width.saturating_sub(2) {
            if sampled(y, x) {
                hist[(32 - class_gradient(u, y * width + x, width).leading_zeros()) as usize] += 1;
                total += 1;
            }
        }
    }
    let mut base = 0u32;
    let mut acc = 0;
    for (b, &h) in hist.iter().enumerate() {
        acc += h;
        if acc * 4 >= total {
            base = b as u32;
            break;
        }
    }
    let base = base.min(31);
    let mut ata = [[[0f64; N_TAPS]; N_TAPS]; N_CLS + 1];
    let mut atb = [[0f64; N_TAPS]; N_CLS + 1];
    let mut btb = [0f64; N_CLS + 1];
    let mut count = [0usize; N_CLS + 1];
    for y in 2..height {
        for x in 2..width.saturating_sub(2) {
            if !sampled(y, x) {
                continue;
            }
            let i = y * width + x;
            let cls = class_of(class_gradient(u, i, width), base);
            let n = u[i - width] as f64;
            let t = taps(u, i, width);
            let mut f = [0f64; N_TAPS];
            for k in 0..N_TAPS {
                f[k] = t[k] as f64 - n;
            }
            let b = u[i] as f64 - n;
            count[cls] += 1;
            btb[cls] += b * b;
            for a in 0..N_TAPS {
                atb[cls][a] += f[a] * b;
                for c in a..N_TAPS {
                    ata[cls][a][c] += f[a] * f[c];
                }
            }
        }
    }
    for k in 0..N_CLS {
        count[N_CLS] += count[k];
        btb[N_CLS] += btb[k];
        for a in 0..N_TAPS {
            atb[N_CLS][a] += atb[k][a];
            for c in a..N_TAPS {
                ata[N_CLS][a][c] += ata[k][a][c];
            }
        }
    }
    let all = solve(ata[N_CLS], atb[N_CLS]);
    let mut coef = [all; N_CLS];
    let mut own = 0u16;
    // Pixels per sampled pixel.
    let scale = if big { 4.0 } else { 1.0 };
    for k in 0..N_CLS {
        if count[k] < MIN_CLASS_PIXELS {
            continue;
        }
        let mine = solve(ata[k], atb[k]);
        // Bits saved (Gaussian residuals: n/2 · log2 of the energy ratio)
        // against the coefficients' cost.
        let e_all = energy(&ata[k], &atb[k], btb[k], &all);
        let e_own = energy(&ata[k], &atb[k], btb[k], &mine);
        let gain = 0.5 * scale * count[k] as f64 * (e_all.max(1e-9) / e_own.max(1e-9)).log2();
        if gain > (16 * N_TAPS) as f64 * 2.0 {
            coef[k] = mine;
            own |= 1 << k;
        }
    }
    Predictor {
        coef,
        base,
        own,
        all,
    }
}

/// Residual energy of coefficients `c` (1/256 units) on a class's sums.
fn energy(ata: &[[f64; N_TAPS]; N_TAPS], atb: &[f64; N_TAPS], btb: f64, c: &[i32; N_TAPS]) -> f64 {
    let w: Vec<f64> = c.iter().map(|&k| k as f64 / 256.0).collect();
    let mut e = btb;
    for a in 0..N_TAPS {
        e -= 2.0 * w[a] * atb[a];
        for b in 0..N_TAPS {
            let m = if a <= b { ata[a][b] } else { ata[b][a] };
            e += w[a] * m * w[b];
        }
    }
    e
}

/// A class needs this many sampled pixels for a fit of its own.
const MIN_CLASS_PIXELS: usize = 256;

fn solve(mut ata: [[f64; N_TAPS]; N_TAPS], atb: [f64; N_TAPS]) -> [i32; N_TAPS] {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::TestRng as Rng;

    #[test]
    fn classes_get_their_own_coefficients_only_where_it_pays() {
        let (w, h) = (256, 256);
        let mut rng = Rng(21);
        // Left half: a steep smooth ramp plus a little noise (the gradient
        // predicts it); right half: flat noise (averaging predicts it).
        let u: Vec<u32> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let noise = (rng.next() % 64) as u32;
                if x < w / 2 {
                    20000 + 150 * (x as u32) + 90 * (y as u32) + noise / 16
                } else {
                    1000 + noise
                }
            })
            .collect();
        let p = fit_linear(&u, w, h);
        assert_ne!(p.own, 0, "two regimes: some class fits on its own");
        let flat: Vec<u32> = (0..w * h)
            .map(|_| 1000 + (rng.next() % 64) as u32)
            .collect();
        let q = fit_linear(&flat, w, h);
        assert_eq!(q.own, 0, "one regime: one set of coefficients");
    }
}
