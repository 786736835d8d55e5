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
    fn run(
        &self,
        net: &Net,
        inputs: &[&[i32]],
        refs: &[Option<&[i32]>],
        h: usize,
        w: usize,
    ) -> Planes {
        let at = |y: isize, x: isize| {
            (
                y.clamp(0, h as isize - 1) as usize,
                x.clamp(0, w as isize - 1) as usize,
            )
        };
        let mut cur: Vec<Vec<f64>> = Vec::new();
        for (li, layer) in net.layers.iter().enumerate() {
            let mut next = vec![vec![0.0f64; h * w]; layer.cout];
            for (o, plane) in next.iter_mut().enumerate() {
                for y in 0..h {
                    for x in 0..w {
                        let mut acc = layer.b[o] as f64;
                        for i in 0..layer.cin {
                            for t in 0..layer.kind.taps() {
                                let (dy, dx) = if layer.kind == LayerKind::Conv1 {
                                    (0, 0)
                                } else {
                                    (t as isize / 3 - 1, t as isize % 3 - 1)
                                };
                                let (yy, xx) = (y as isize + dy, x as isize + dx);
                                let v = if li == 0 {
                                    let (cy, cx) = at(yy, xx);
                                    let r = refs[i].map_or(0.0, |r| r[y * w + x] as f64);
                                    (inputs[i][cy * w + cx] as f64 - r)
                                        .clamp(-(IN_MAX as f64), IN_MAX as f64)
                                } else if yy < 0 || xx < 0 || yy >= h as isize || xx >= w as isize {
                                    0.0
                                } else {
                                    cur[i][yy as usize * w + xx as usize]
                                };
                                acc +=
                                    layer.w[(o * layer.cin + i) * layer.kind.taps() + t] as f64 * v;
                            }
                        }
                        plane[y * w + x] = layer_out(acc, layer.shift[o], layer.act);
                    }
                }
            }
            cur = next;
        }
        let c = cur.len();
        Planes {
            c,
            h,
            w,
            data: cur.into_iter().flatten().map(|v| v as i32).collect(),
        }
    }

    fn name(&self) -> &'static str {
        "float64-reference"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::engine::Cpu;
    use crate::neural::model::Net;
    use crate::neural::semantics::{BIAS_MAX, W_MAX};
    use crate::neural::store::default_model;
    use crate::test_rng::TestRng;

    fn random_planes(
        rng: &mut TestRng,
        c: usize,
        h: usize,
        w: usize,
        extreme: bool,
    ) -> Vec<Vec<i32>> {
        (0..c)
            .map(|_| {
                (0..h * w)
                    .map(|_| match rng.range(0, 9) {
                        0 if extreme => rng.range(-(1 << 24), 1 << 24) as i32,
                        1 if extreme => [0, 65535, -65535, 4095, -4096][rng.range(0, 4) as usize],
                        _ => rng.noise(1000.0, 50.0) as i32,
                    })
                    .collect()
            })
            .collect()
    }

    fn compare(net: &Net, rng: &mut TestRng, h: usize, w: usize, extreme: bool) {
        let x = random_planes(rng, net.cin(), h, w, extreme);
        let r = random_planes(rng, net.cin(), h, w, extreme);
        let inputs: Vec<&[i32]> = x.iter().map(|p| &p[..]).collect();
        let refs: Vec<Option<&[i32]>> = r
            .iter()
            .enumerate()
            .map(|(i, p)| (i % 2 == 0).then_some(&p[..]))
            .collect();
        let a = Cpu.run(net, &inputs, &refs, h, w);
        let b = Float64Reference.run(net, &inputs, &refs, h, w);
        assert_eq!(a, b, "net {} on {h}x{w}", net.name);
    }

    /// The default model's nets, and the same nets with every weight and
    /// bias replaced by random values anywhere in the allowed range (the
    /// accumulator bound is tightest there).
    #[test]
    fn cpu_engine_equals_the_float64_reference() {
        let mut rng = TestRng(42);
        let model = default_model();
        for (li, level) in model.levels.iter().enumerate() {
            for net in [&level.t1, &level.t2, &level.t3, &level.t4, &level.prior] {
                compare(net, &mut rng, 7, 9, li % 2 == 0);
                let mut wild = net.clone();
                for l in &mut wild.layers {
                    for v in &mut l.w {
                        *v = rng.range(-W_MAX as i64, W_MAX as i64) as i32;
                    }
                    for v in &mut l.b {
                        *v = rng.range(-BIAS_MAX as i64, BIAS_MAX as i64) as i32;
                    }
                    for s in &mut l.shift {
                        *s = rng.range(0, 16) as u32;
                    }
                }
                compare(&wild, &mut rng, 5, 6, true);
                compare(&wild, &mut rng, 1, 1, true);
            }
        }
    }
}
