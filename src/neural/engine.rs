//! The CPU engine: the integer semantics of [`super::semantics`] for the three
//! layer kinds, on channel-major planes.
//!
//! Loops run along image rows with the output channel innermost over a row
//! buffer (`acc[o][x] += w · src[x]`), which the compiler vectorises; tiles
//! run in parallel one level up (the tile driver uses rayon). Everything is
//! i32 and exact: model loading proved the accumulators cannot overflow.

use super::model::{Layer, LayerKind, Net};
use super::semantics::{act, requant, IN_MAX};

/// A stack of `c` planes of `h × w` i32 values, channel-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planes {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<i32>,
}

impl Planes {
    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Planes {
            c,
            h,
            w,
            data: vec![0; c * h * w],
        }
    }
    pub fn plane(&self, i: usize) -> &[i32] {
        let n = self.h * self.w;
        &self.data[i * n..(i + 1) * n]
    }
    pub fn plane_mut(&mut self, i: usize) -> &mut [i32] {
        let n = self.h * self.w;
        &mut self.data[i * n..(i + 1) * n]
    }
}

/// What a network computes, on any engine: `inputs` planes (all `h × w`), and
/// for each input a reference plane subtracted before the first layer (None:
/// zero). Returns the output planes.
pub trait Engine: Sync {
    fn run(
        &self,
        net: &Net,
        inputs: &[&[i32]],
        refs: &[Option<&[i32]>],
        h: usize,
        w: usize,
    ) -> Planes;
    fn name(&self) -> &'static str;
}

/// The Rust CPU engine.
pub struct Cpu;

#[inline(always)]
fn axpy(acc: &mut [i32], wv: i32, src: &[i32]) {
    for (a, &s) in acc.iter_mut().zip(src) {
        *a += wv * s;
    }
}

fn finish_row(layer: &Layer, acc: &[i32], out: &mut Planes, y: usize) {
    let w = out.w;
    for o in 0..layer.cout {
        let s = layer.shift[o];
        let dst = &mut out.plane_mut(o)[y * w..(y + 1) * w];
        let src = &acc[o * w..(o + 1) * w];
        if layer.act {
            for (d, &a) in dst.iter_mut().zip(src) {
                *d = act(requant(a, s));
            }
        } else {
            for (d, &a) in dst.iter_mut().zip(src) {
                *d = requant(a, s);
            }
        }
    }
}

fn patch3(layer: &Layer, inputs: &[&[i32]], refs: &[Option<&[i32]>], h: usize, w: usize) -> Planes {
    let mut out = Planes::zeros(layer.cout, h, w);
    let mut acc = vec![0i32; layer.cout * w];
    let mut tmp = vec![0i32; w];
    for y in 0..h {
        for o in 0..layer.cout {
            acc[o * w..(o + 1) * w].fill(layer.b[o]);
        }
        for (c, inp) in inputs.iter().enumerate() {
            let rrow = refs[c].map(|r| &r[y * w..(y + 1) * w]);
            for ky in 0..3 {
                let yy = (y + ky).saturating_sub(1).min(h - 1);
                let row = &inp[yy * w..(yy + 1) * w];
                for kx in 0..3 {
                    for (x, t) in tmp.iter_mut().enumerate() {
                        let xx = (x + kx).saturating_sub(1).min(w - 1);
                        let r = rrow.map_or(0, |r| r[x]);
                        // i64: a corrupt stream may give any i32 here.
                        *t = (row[xx] as i64 - r as i64).clamp(-(IN_MAX as i64), IN_MAX as i64)
                            as i32;
                    }
                    let tap = ky * 3 + kx;
                    for o in 0..layer.cout {
                        let wv = layer.w[(o * layer.cin + c) * 9 + tap];
                        if wv != 0 {
                            axpy(&mut acc[o * w..(o + 1) * w], wv, &tmp);
                        }
                    }
                }
            }
        }
        finish_row(layer, &acc, &mut out, y);
    }
    out
}

fn conv3(layer: &Layer, x: &Planes) -> Planes {
    let (h, w) = (x.h, x.w);
    let mut out = Planes::zeros(layer.cout, h, w);
    let mut acc = vec![0i32; layer.cout * w];
    let mut pad = vec![0i32; w + 2];
    for y in 0..h {
        for o in 0..layer.cout {
            acc[o * w..(o + 1) * w].fill(layer.b[o]);
        }
        for i in 0..layer.cin {
            for ky in 0..3 {
                let Some(yy) = (y + ky).checked_sub(1).filter(|&yy| yy < h) else {
                    continue;
                };
                pad[1..=w].copy_from_slice(&x.plane(i)[yy * w..(yy + 1) * w]);
                for kx in 0..3 {
                    let src = &pad[kx..kx + w];
                    for o in 0..layer.cout {
                        let wv = layer.w[(o * layer.cin + i) * 9 + ky * 3 + kx];
                        if wv != 0 {
                            axpy(&mut acc[o * w..(o + 1) * w], wv, src);
                        }
                    }
                }
            }
        }
        finish_row(layer, &acc, &mut out, y);
    }
    out
}

fn conv1(layer: &Layer, x: &Planes) -> Planes {
    let (h, w) = (x.h, x.w);
    let mut out = Planes::zeros(layer.cout, h, w);
    let mut acc = vec![0i32; layer.cout * w];
    for y in 0..h {
        for o in 0..layer.cout {
            acc[o * w..(o + 1) * w].fill(layer.b[o]);
        }
        for i in 0..layer.cin {
            let src = &x.plane(i)[y * w..(y + 1) * w];
            for o in 0..layer.cout {
                let wv = layer.w[o * layer.cin + i];
                if wv != 0 {
                    axpy(&mut acc[o * w..(o + 1) * w], wv, src);
                }
            }
        }
        finish_row(layer, &acc, &mut out, y);
    }
    out
}

impl Engine for Cpu {
    fn run(
        &self,
        net: &Net,
        inputs: &[&[i32]],
        refs: &[Option<&[i32]>],
        h: usize,
        w: usize,
    ) -> Planes {
        assert_eq!(inputs.len(), net.cin());
        assert_eq!(refs.len(), net.cin());
        let mut cur = patch3(&net.layers[0], inputs, refs, h, w);
        for layer in &net.layers[1..] {
            cur = match layer.kind {
                LayerKind::Conv3 => conv3(layer, &cur),
                LayerKind::Conv1 => conv1(layer, &cur),
                LayerKind::Patch3 => unreachable!("model loading allows Patch3 only first"),
            };
        }
        cur
    }

    fn name(&self) -> &'static str {
        "cpu"
    }
}
