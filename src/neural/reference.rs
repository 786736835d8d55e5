//! An independent, deliberately plain float64 implementation of the integer
//! network semantics: one loop nest per output value, no row buffers, no
//! shifts. It exists to be compared with the engines in tests; every value it
//! handles is an integer below 2^53, so f64 arithmetic is exact and the two
//! must agree bit for bit.

use super::engine::{Engine, Planes};
use super::model::{LayerKind, Net};
use super::semantics::{ACT_MAX, IN_MAX};

pub struct Float64Reference;

fn layer_out(acc: f64, shift: u32, act: bool) -> f64 {
    let p = (shift as f64).exp2();
    let v = ((acc + p / 2.0) / p).floor();
    if !act {
        return v;
    }
    let v = if v >= 0.0 { v } else { (v / 8.0).floor() };
    v.clamp(-(ACT_MAX as f64), ACT_MAX as f64)
}

impl Engine for Float64Reference {
    fn run(&self, net: &Net, inputs: &[&[i32]], refs: &[Option<&[i32]>], h: usize, w: usize) -> Planes {
        let at = |y: isize, x: isize| (y.clamp(0, h as isize - 1) as usize, x.clamp(0, w as isize - 1) as usize);
        let mut cur: Vec<Vec<f64>> = Vec::new();
        for (li, layer) in net.layers.iter().enumerate() {
            let mut next = vec![vec![0.0f64; h * w]; layer.cout];
            for (o, plane) in next.iter_mut().enumerate() {
                for y in 0..h {
                    for x in 0..w {
                        let mut acc = layer.b[o] as f64;
                        for i in 0..layer.cin {
                            for t in 0..layer.kind.taps() {
                                let (dy, dx) = if layer.kind == LayerKind::Conv1 { (0, 0) } else { (t as isize / 3 - 1, t as isize % 3 - 1) };
                                let (yy, xx) = (y as isize + dy, x as isize + dx);
                                let v = if li == 0 {
                                    let (cy, cx) = at(yy, xx);
                                    let r = refs[i].map_or(0.0, |r| r[y * w + x] as f64);
                                    (inputs[i][cy * w + cx] as f64 - r).clamp(-(IN_MAX as f64), IN_MAX as f64)
                                } else if yy < 0 || xx < 0 || yy >= h as isize || xx >= w as isize {
                                    0.0
                                } else {
                                    cur[i][yy as usize * w + xx as usize]
                                };
                                acc += layer.w[(o * layer.cin + i) * layer.kind.taps() + t] as f64 * v;
                            }
                        }
                        plane[y * w + x] = layer_out(acc, layer.shift[o], layer.act);
                    }
                }
            }
            cur = next;
        }
        let c = cur.len();
        Planes { c, h, w, data: cur.into_iter().flatten().map(|v| v as i32).collect() }
    }

    fn name(&self) -> &'static str {
        "float64-reference"
    }
}
