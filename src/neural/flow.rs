//! The integer discrete flow of IDF_1 and the bitstream of one tile.
//!
//! Per level, the planes are squeezed 2×2 into four groups s00 s01 s10 s11
//! and transformed by four additive couplings, a lifting scheme whose
//! predictors and updates are the model's networks (integer outputs, so each
//! step is exactly invertible whatever the networks compute):
//!
//! ```text
//! d01 = s01 - (s00 + T1(s00,s10)[0])     d11 = s11 - (s00 + T1(s00,s10)[1])
//! l00 = s00 + T2(d01,d11)[0]             l10 = s10 + T2(d01,d11)[1]
//! e10 = l10 - (l00 + T3(l00,d01)[0])     e11 = d11 - T3(l00,d01)[1]
//! ll  = l00 + T4(e10,e11)[0]             e01 = d01 + T4(e10,e11)[1]
//! ```
//!
//! The details (e01, e10, e11) are factored out and coded with the level's
//! conditional prior P(ll), which gives each value a mean (quarter units) and
//! a scale index; ll goes on to the next level. The top ll is coded by DPCM
//! with one scale per channel chosen by the encoder. Decoding runs top-down
//! and every step is parallel over positions: no autoregression.
//!
//! Tile stream: a version byte, the CRC-32 of the tile's pixels (checked
//! after decoding, so a wrong model or engine can never return wrong pixels
//! silently), then the range coder's 32-bit words, little-endian.

use crate::error::CodecError;

use super::engine::{Engine, Planes};
use super::entropy::{Decoder, Encoder, VALUE_LIMIT};
use super::model::{LevelNets, Model, Variant};
use super::semantics::NSCALE;

const STREAM_VERSION: u8 = 1;

fn squeeze(x: &Planes) -> [Planes; 4] {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut out = [
        Planes::zeros(x.c, h, w),
        Planes::zeros(x.c, h, w),
        Planes::zeros(x.c, h, w),
        Planes::zeros(x.c, h, w),
    ];
    for c in 0..x.c {
        let src = x.plane(c);
        for (g, o) in out.iter_mut().enumerate() {
            let (dy, dx) = (g / 2, g % 2);
            let dst = o.plane_mut(c);
            for y in 0..h {
                let row = &src[(2 * y + dy) * x.w..];
                for xx in 0..w {
                    dst[y * w + xx] = row[2 * xx + dx];
                }
            }
        }
    }
    out
}

fn unsqueeze(g: &[Planes; 4]) -> Planes {
    let (c, h, w) = (g[0].c, g[0].h, g[0].w);
    let mut x = Planes::zeros(c, 2 * h, 2 * w);
    for ch in 0..c {
        let ww = 2 * w;
        for (gi, p) in g.iter().enumerate() {
            let (dy, dx) = (gi / 2, gi % 2);
            let src = p.plane(ch);
            let dst = x.plane_mut(ch);
            for y in 0..h {
                for xx in 0..w {
                    dst[(2 * y + dy) * ww + 2 * xx + dx] = src[y * w + xx];
                }
            }
        }
    }
    x
}

/// Apply `f(a, b)` element-wise into a new plane stack.
fn zip(a: &Planes, b: &[i32], f: impl Fn(i32, i32) -> i32) -> Planes {
    let data = a.data.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    Planes { data, ..*a }
}

/// Run a net on the channels of two plane stacks; refs per input channel.
fn run2(
    engine: &dyn Engine,
    net: &super::model::Net,
    a: &Planes,
    b: &Planes,
    ref_a: Option<&Planes>,
    ref_b: Option<&Planes>,
) -> (Planes, Planes) {
    let c = a.c;
    let inputs: Vec<&[i32]> = (0..c)
        .map(|i| a.plane(i))
        .chain((0..c).map(|i| b.plane(i)))
        .collect();
    let refs: Vec<Option<&[i32]>> = (0..c)
        .map(|i| ref_a.map(|r| r.plane(i)))
        .chain((0..c).map(|i| ref_b.map(|r| r.plane(i))))
        .collect();
    let o = engine.run(net, &inputs, &refs, a.h, a.w);
    let n = c * a.h * a.w;
    let first = Planes {
        c,
        h: a.h,
        w: a.w,
        data: o.data[..n].to_vec(),
    };
    let second = Planes {
        c,
        h: a.h,
        w: a.w,
        data: o.data[n..2 * n].to_vec(),
    };
    (first, second)
}

/// One level forward: returns (ll, [e01, e10, e11]).
///
/// The lifting steps add and subtract network outputs modulo 2^32
/// (`wrapping_*`): identical to plain arithmetic for every model whose sums
/// stay in range (the built-in ones, by far), still exactly invertible when a
/// hostile model file pushes them out of it (the tile's CRC then decides),
/// and never an overflow panic.
fn forward(engine: &dyn Engine, nets: &LevelNets, x: &Planes) -> (Planes, [Planes; 3]) {
    let [s00, s01, s10, s11] = squeeze(x);
    let (o0, o1) = run2(engine, &nets.t1, &s00, &s10, Some(&s00), Some(&s00));
    let d01 = zip(
        &s01,
        &zip(&s00, &o0.data, |a, b| a.wrapping_add(b)).data,
        |a, b| a.wrapping_sub(b),
    );
    let d11 = zip(
        &s11,
        &zip(&s00, &o1.data, |a, b| a.wrapping_add(b)).data,
        |a, b| a.wrapping_sub(b),
    );
    let (o0, o1) = run2(engine, &nets.t2, &d01, &d11, None, None);
    let l00 = zip(&s00, &o0.data, |a, b| a.wrapping_add(b));
    let l10 = zip(&s10, &o1.data, |a, b| a.wrapping_add(b));
    let (o0, o1) = run2(engine, &nets.t3, &l00, &d01, Some(&l00), None);
    let e10 = zip(
        &l10,
        &zip(&l00, &o0.data, |a, b| a.wrapping_add(b)).data,
        |a, b| a.wrapping_sub(b),
    );
    let e11 = zip(&d11, &o1.data, |a, b| a.wrapping_sub(b));
    let (o0, o1) = run2(engine, &nets.t4, &e10, &e11, None, None);
    let ll = zip(&l00, &o0.data, |a, b| a.wrapping_add(b));
    let e01 = zip(&d01, &o1.data, |a, b| a.wrapping_add(b));
    (ll, [e01, e10, e11])
}

/// One level inverse.
fn inverse(engine: &dyn Engine, nets: &LevelNets, ll: &Planes, det: &[Planes; 3]) -> Planes {
    let [e01, e10, e11] = det;
    let (o0, o1) = run2(engine, &nets.t4, e10, e11, None, None);
    let l00 = zip(ll, &o0.data, |a, b| a.wrapping_sub(b));
    let d01 = zip(e01, &o1.data, |a, b| a.wrapping_sub(b));
    let (o0, o1) = run2(engine, &nets.t3, &l00, &d01, Some(&l00), None);
    let l10 = zip(
        e10,
        &zip(&l00, &o0.data, |a, b| a.wrapping_add(b)).data,
        |a, b| a.wrapping_add(b),
    );
    let d11 = zip(e11, &o1.data, |a, b| a.wrapping_add(b));
    let (o0, o1) = run2(engine, &nets.t2, &d01, &d11, None, None);
    let s00 = zip(&l00, &o0.data, |a, b| a.wrapping_sub(b));
    let s10 = zip(&l10, &o1.data, |a, b| a.wrapping_sub(b));
    let (o0, o1) = run2(engine, &nets.t1, &s00, &s10, Some(&s00), Some(&s00));
    let s01 = zip(
        &d01,
        &zip(&s00, &o0.data, |a, b| a.wrapping_add(b)).data,
        |a, b| a.wrapping_add(b),
    );
    let s11 = zip(
        &d11,
        &zip(&s00, &o1.data, |a, b| a.wrapping_add(b)).data,
        |a, b| a.wrapping_add(b),
    );
    unsqueeze(&[s00, s01, s10, s11])
}

/// The prior of one level: (mu_q planes [3C], scale index planes [3C]).
fn prior(engine: &dyn Engine, nets: &LevelNets, ll: &Planes, off: &[i32]) -> Planes {
    let c = ll.c;
    let n = ll.h * ll.w;
    let offs: Vec<Vec<i32>> = off.iter().map(|&o| vec![o; n]).collect();
    let inputs: Vec<&[i32]> = (0..c)
        .map(|i| ll.plane(i))
        .chain((0..c).map(|i| ll.plane(i)))
        .collect();
    let refs: Vec<Option<&[i32]>> = (0..c)
        .map(|i| Some(ll.plane(i)))
        .chain(offs.iter().map(|o| Some(&o[..])))
        .collect();
    engine.run(&nets.prior, &inputs, &refs, ll.h, ll.w)
}

/// Pixels (uint16 values as i32) of an `h × w` tile → the flow's input,
/// edge-padded to a multiple of the model's block.
fn to_planes(model: &Model, px: &[i32], w: usize, h: usize) -> Planes {
    let b = model.block();
    let (hp, wp) = (h.div_ceil(b) * b, w.div_ceil(b) * b);
    let c = model.channels();
    let mut x = Planes::zeros(c, hp, wp);
    for y in 0..hp {
        let sy = y.min(h - 1);
        for xx in 0..wp {
            let v = px[sy * w + xx.min(w - 1)];
            match model.variant {
                Variant::Sixteen => x.data[y * wp + xx] = v,
                Variant::Split => {
                    x.data[y * wp + xx] = v >> 8;
                    x.data[hp * wp + y * wp + xx] = v & 255;
                }
            }
        }
    }
    x
}

fn crc(px: &[i32]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for &v in px {
        h.update(&(v as u16).to_le_bytes());
    }
    h.finalize()
}

fn floor_mean(p: &[i32]) -> i32 {
    let s: i64 = p.iter().map(|&v| v as i64).sum();
    s.div_euclid(p.len() as i64) as i32
}

/// DPCM residuals of a plane (first pixel against `off`).
fn dpcm(p: &[i32], w: usize, off: i32) -> Vec<i32> {
    (0..p.len())
        .map(|i| {
            let pred = if i == 0 {
                off
            } else if i % w == 0 {
                p[i - w]
            } else {
                p[i - 1]
            };
            p[i] - pred
        })
        .collect()
}

fn scale_for(res: &[i32]) -> u32 {
    let n = res.len() as f64;
    let m = res.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = res.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
    let s = (var.sqrt() * 0.5513).max(0.125);
    ((4.0 * (s.log2() + 3.0)).round().max(0.0) as u32).min(NSCALE - 1)
}

fn check_range(v: i32) -> Result<(), CodecError> {
    if (v as i64).abs() >= VALUE_LIMIT {
        return Err(CodecError::Unsupported(
            "IDF_1 intermediate value out of range".into(),
        ));
    }
    Ok(())
}

/// The flow run forward over a tile: the top planes, each level's ll (the
/// input of its prior) and details, and the per-channel offset.
struct Analysis {
    top: Planes,
    lls: Vec<Planes>,
    dets: Vec<[Planes; 3]>,
    off: Vec<i32>,
}

fn analyse(model: &Model, engine: &dyn Engine, px: &[i32], w: usize, h: usize) -> Analysis {
    let mut x = to_planes(model, px, w, h);
    let mut dets = Vec::new();
    let mut lls = Vec::new();
    for nets in &model.levels {
        let (ll, det) = forward(engine, nets, &x);
        dets.push(det);
        lls.push(ll.clone());
        x = ll;
    }
    let off = (0..x.c).map(|i| floor_mean(x.plane(i))).collect();
    Analysis {
        top: x,
        lls,
        dets,
        off,
    }
}

/// Encode one tile of uint16 values (as i32, row-major `h × w`).
pub fn encode_tile(
    model: &Model,
    engine: &dyn Engine,
    px: &[i32],
    w: usize,
    h: usize,
) -> Result<Vec<u8>, CodecError> {
    let Analysis {
        top: x,
        lls,
        dets,
        off,
    } = analyse(model, engine, px, w, h);
    let c = x.c;
    let mut enc = Encoder::new();
    for i in 0..c {
        let res = dpcm(x.plane(i), x.w, off[i]);
        let j = scale_for(&res);
        enc.uniform((off[i] as i64 + (1 << 31)) as u64, 32)?;
        enc.uniform(j as u64, 6)?;
        for &r in &res {
            check_range(r)?;
            enc.value(r, 0, j)?;
        }
    }
    for (l, nets) in model.levels.iter().enumerate().rev() {
        let pr = prior(engine, nets, &lls[l], &off);
        let n = lls[l].h * lls[l].w;
        for (g, det) in dets[l].iter().enumerate() {
            for ch in 0..c {
                let k = g * c + ch;
                let mu = &pr.data[k * n..(k + 1) * n];
                let js = &pr.data[(3 * c + k) * n..(3 * c + k + 1) * n];
                for ((&v, &m), &j) in det.plane(ch).iter().zip(mu).zip(js) {
                    check_range(v)?;
                    enc.value(v, m, j.clamp(0, NSCALE as i32 - 1) as u32)?;
                }
            }
        }
    }
    let words = enc.finish()?;
    let mut out = Vec::with_capacity(5 + 4 * words.len());
    out.push(STREAM_VERSION);
    out.extend_from_slice(&crc(px).to_le_bytes());
    for wd in words {
        out.extend_from_slice(&wd.to_le_bytes());
    }
    Ok(out)
}

/// Decode one tile; returns uint16 values as i32, row-major `h × w`.
pub fn decode_tile(
    model: &Model,
    engine: &dyn Engine,
    bytes: &[u8],
    w: usize,
    h: usize,
) -> Result<Vec<i32>, CodecError> {
    if bytes.len() < 5 {
        return Err(CodecError::Truncated);
    }
    if bytes[0] != STREAM_VERSION {
        return Err(CodecError::Corrupt(format!(
            "IDF_1 tile stream version {} (this build reads {STREAM_VERSION})",
            bytes[0]
        )));
    }
    if !(bytes.len() - 5).is_multiple_of(4) {
        return Err(CodecError::Corrupt(
            "IDF_1 tile is not a whole number of 32-bit words".into(),
        ));
    }
    let want_crc = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let words: Vec<u32> = bytes[5..]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut dec = Decoder::new(words)?;
    let b = model.block();
    let (hp, wp) = (h.div_ceil(b) * b, w.div_ceil(b) * b);
    let c = model.channels();
    let nl = model.levels.len();
    let (ht, wt) = (hp >> nl, wp >> nl);
    let mut top = Planes::zeros(c, ht, wt);
    let mut off = vec![0i32; c];
    for i in 0..c {
        off[i] = (dec.uniform(32)? as i64 - (1 << 31)) as i32;
        let j = dec.uniform(6)? as u32;
        let p = top.plane_mut(i);
        for k in 0..p.len() {
            let r = dec.value(0, j)?;
            let pred = if k == 0 {
                off[i]
            } else if k % wt == 0 {
                p[k - wt]
            } else {
                p[k - 1]
            };
            let v = pred as i64 + r as i64;
            if v.abs() >= VALUE_LIMIT {
                return Err(CodecError::Corrupt("decoded value out of range".into()));
            }
            p[k] = v as i32;
        }
    }
    let mut x = top;
    for nets in model.levels.iter().rev() {
        let pr = prior(engine, nets, &x, &off);
        let n = x.h * x.w;
        let mut det = [
            Planes::zeros(c, x.h, x.w),
            Planes::zeros(c, x.h, x.w),
            Planes::zeros(c, x.h, x.w),
        ];
        for (g, d) in det.iter_mut().enumerate() {
            for ch in 0..c {
                let k = g * c + ch;
                for i in 0..n {
                    let m = pr.data[k * n + i];
                    let j = pr.data[(3 * c + k) * n + i].clamp(0, NSCALE as i32 - 1) as u32;
                    d.plane_mut(ch)[i] = dec.value(m, j)?;
                }
            }
        }
        x = inverse(engine, nets, &x, &det);
        if x.data.iter().any(|&v| (v as i64).abs() >= VALUE_LIMIT) {
            return Err(CodecError::Corrupt("decoded value out of range".into()));
        }
    }
    dec.finish()?;
    let mut px = Vec::with_capacity(w * h);
    for y in 0..h {
        for xx in 0..w {
            let v = match model.variant {
                Variant::Sixteen => x.data[y * wp + xx],
                Variant::Split => {
                    let (hi, lo) = (x.data[y * wp + xx], x.data[hp * wp + y * wp + xx]);
                    if !(0..256).contains(&hi) || !(0..256).contains(&lo) {
                        return Err(CodecError::Corrupt("decoded byte out of range".into()));
                    }
                    hi << 8 | lo
                }
            };
            if !(0..=65535).contains(&v) {
                return Err(CodecError::Corrupt(
                    "decoded pixel out of the 16-bit range".into(),
                ));
            }
            px.push(v);
        }
    }
    if crc(&px) != want_crc {
        return Err(CodecError::Corrupt(
            "IDF_1 tile CRC mismatch: damaged data, or a model or engine that computes differently"
                .into(),
        ));
    }
    Ok(px)
}

/// The model's own estimate of the tile's size in bits (ideal coder, same
/// probabilities): the figure a likelihood-only paper would report.
pub fn estimate_bits(model: &Model, engine: &dyn Engine, px: &[i32], w: usize, h: usize) -> f64 {
    use super::entropy::cost_bits;
    let Analysis {
        top: x,
        lls,
        dets,
        off,
    } = analyse(model, engine, px, w, h);
    let c = x.c;
    let mut bits = 0.0;
    for i in 0..c {
        let res = dpcm(x.plane(i), x.w, off[i]);
        let j = scale_for(&res);
        bits += 38.0 + res.iter().map(|&r| cost_bits(r, 0, j)).sum::<f64>();
    }
    for (l, nets) in model.levels.iter().enumerate() {
        let pr = prior(engine, nets, &lls[l], &off);
        let n = lls[l].h * lls[l].w;
        for (g, det) in dets[l].iter().enumerate() {
            for ch in 0..c {
                let k = g * c + ch;
                for (i, &v) in det.plane(ch).iter().enumerate() {
                    let j = pr.data[(3 * c + k) * n + i].clamp(0, NSCALE as i32 - 1) as u32;
                    bits += cost_bits(v, pr.data[k * n + i], j);
                }
            }
        }
    }
    bits
}
