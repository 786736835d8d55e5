//! The network, evaluated one pixel at a time with cached activations.
//!
//! Naive autoregressive decoding re-runs the whole network for every pixel.
//! Here every layer's output is kept for the current and the previous row
//! (two rows per layer), and a pixel costs only its own receptive field: the
//! masked 3x3 layers read their five taps (NW, N, NE, W, centre) from the
//! cache, as in "fast PixelCNN++ generation" (Ramachandran et al. 2017). The
//! encoder runs the same code in the same order, so encoder and decoder
//! compute identical integers by construction; the arithmetic is
//! [`crate::neural::semantics`] (exact i32 accumulation, round-half-up shift,
//! integer leaky ReLU).

use super::features::NFEAT;
use super::model::{Kind, PcnnModel};
use crate::neural::semantics::{act, requant};

/// The cached state of one tile's network evaluation.
pub struct Runner<'m> {
    model: &'m PcnnModel,
    width: usize,
    /// Per hidden layer: two rows (by row parity) of `width × cout`.
    cache: Vec<Vec<i32>>,
    acc: Vec<i32>,
    out: Vec<i32>,
}

impl<'m> Runner<'m> {
    pub fn new(model: &'m PcnnModel, width: usize) -> Self {
        let n = model.layers.len();
        let cache = model.layers[..n - 1]
            .iter()
            .map(|l| vec![0i32; 2 * width * l.cout])
            .collect();
        let widest = model.layers.iter().map(|l| l.cout).max().unwrap_or(0);
        Runner {
            model,
            width,
            cache,
            acc: vec![0; widest],
            out: vec![0; model.layers[n - 1].cout],
        }
    }

    /// Network outputs at pixel (r, c); pixels are visited in raster order.
    pub fn step(&mut self, feat: &[i32; NFEAT], r: usize, c: usize) -> &[i32] {
        self.run(std::slice::from_ref(feat), r, c)
    }

    /// Network outputs (pixel-major, `mixture × PER_COMPONENT` each) for the
    /// pixels (r, c0), (r, c0+1), ... of `feats`, computed layer by layer
    /// over the run. Any split of a row into runs gives the same numbers as
    /// pixel-by-pixel steps (the decoder's order); the encoder, which knows
    /// every pixel, uses whole rows.
    pub fn run(&mut self, feats: &[[i32; NFEAT]], r: usize, c0: usize) -> &[i32] {
        let w = self.width;
        let n = self.model.layers.len();
        let last = self.model.layers[n - 1].cout;
        if self.out.len() < feats.len() * last {
            self.out.resize(feats.len() * last, 0);
        }
        for (li, l) in self.model.layers.iter().enumerate() {
            for (p, feat) in feats.iter().enumerate() {
                let c = c0 + p;
                let acc = &mut self.acc[..l.cout];
                acc.copy_from_slice(&l.b);
                let mut add = |tap: usize, input: &[i32]| {
                    let wt = &l.w[tap * l.cin * l.cout..(tap + 1) * l.cin * l.cout];
                    for (&x, wrow) in input.iter().zip(wt.chunks_exact(l.cout)) {
                        if x != 0 {
                            for (a, &wv) in acc.iter_mut().zip(wrow) {
                                *a += wv * x;
                            }
                        }
                    }
                };
                if li == 0 {
                    add(0, feat);
                } else {
                    let prev = &self.cache[li - 1];
                    let cin = l.cin;
                    let at = |rr: usize, cc: usize| {
                        let base = ((rr & 1) * w + cc) * cin;
                        &prev[base..base + cin]
                    };
                    match l.kind {
                        Kind::Point => add(0, at(r, c)),
                        Kind::Causal5 => {
                            if r > 0 {
                                if c > 0 {
                                    add(0, at(r - 1, c - 1));
                                }
                                add(1, at(r - 1, c));
                                if c + 1 < w {
                                    add(2, at(r - 1, c + 1));
                                }
                            }
                            if c > 0 {
                                add(3, at(r, c - 1));
                            }
                            add(4, at(r, c));
                        }
                    }
                }
                let dst: &mut [i32] = if li + 1 < n {
                    let base = ((r & 1) * w + c) * l.cout;
                    &mut self.cache[li][base..base + l.cout]
                } else {
                    &mut self.out[p * last..(p + 1) * last]
                };
                for (d, &a) in dst.iter_mut().zip(acc.iter()) {
                    let v = requant(a, l.shift);
                    *d = if l.act { act(v) } else { v };
                }
            }
        }
        &self.out[..feats.len() * last]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::pcnn::model::{Layer, PER_COMPONENT};
    use crate::neural::semantics::{ACT_MAX, BIAS_MAX, W_MAX};
    use crate::test_rng::TestRng;

    fn random_model(rng: &mut TestRng, hidden: usize, k: usize) -> PcnnModel {
        let shapes = [
            (Kind::Point, NFEAT, hidden),
            (Kind::Causal5, hidden, hidden),
            (Kind::Causal5, hidden, hidden),
            (Kind::Point, hidden, k * PER_COMPONENT),
        ];
        let layers = shapes
            .iter()
            .enumerate()
            .map(|(i, &(kind, cin, cout))| Layer {
                kind,
                cin,
                cout,
                act: i + 1 < shapes.len(),
                shift: 6 + (rng.next() % 5) as u32,
                w: (0..kind.taps() * cin * cout)
                    .map(|_| rng.range(-(W_MAX as i64), W_MAX as i64) as i32)
                    .collect(),
                b: (0..cout)
                    .map(|_| rng.range(-(BIAS_MAX as i64), BIAS_MAX as i64) as i32)
                    .collect(),
            })
            .collect();
        PcnnModel {
            name: "random".into(),
            version: "0".into(),
            mixture: k,
            hidden,
            layers,
            sha256: String::new(),
            card: String::new(),
            file_bytes: 0,
        }
    }

    /// An independent statement of the network: whole-tile masked
    /// convolutions in i64 with floor division, zero padding, no cache
    /// (plain index loops on purpose: it should read like the definition).
    #[allow(clippy::needless_range_loop)]
    fn reference(m: &PcnnModel, feats: &[[i32; NFEAT]], w: usize, h: usize) -> Vec<Vec<i64>> {
        let mut cur: Vec<Vec<i64>> = feats
            .iter()
            .map(|f| f.iter().map(|&v| v as i64).collect())
            .collect();
        for l in &m.layers {
            let taps: &[(isize, isize)] = match l.kind {
                Kind::Point => &[(0, 0)],
                Kind::Causal5 => &[(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0)],
            };
            let mut next = vec![vec![0i64; l.cout]; w * h];
            for r in 0..h as isize {
                for c in 0..w as isize {
                    for o in 0..l.cout {
                        let mut acc = l.b[o] as i64;
                        for (t, &(dr, dc)) in taps.iter().enumerate() {
                            let (rr, cc) = (r + dr, c + dc);
                            if rr < 0 || cc < 0 || cc >= w as isize {
                                continue;
                            }
                            let input = &cur[rr as usize * w + cc as usize];
                            for i in 0..l.cin {
                                acc += l.w[(t * l.cin + i) * l.cout + o] as i64 * input[i];
                            }
                        }
                        let s = l.shift as i64;
                        let mut v = if s == 0 {
                            acc
                        } else {
                            (acc + (1 << (s - 1))).div_euclid(1 << s)
                        };
                        if l.act {
                            if v < 0 {
                                v = v.div_euclid(8);
                            }
                            v = v.clamp(-(ACT_MAX as i64), ACT_MAX as i64);
                        }
                        next[r as usize * w + c as usize][o] = v;
                    }
                }
            }
            cur = next;
        }
        cur
    }

    #[test]
    fn cached_pixel_steps_and_row_runs_equal_the_whole_tile_reference() {
        let mut rng = TestRng(17);
        for &(w, h, hidden, k) in &[
            (1usize, 1usize, 4usize, 1usize),
            (7, 5, 8, 2),
            (13, 4, 16, 3),
            (1, 6, 8, 1),
        ] {
            let m = random_model(&mut rng, hidden, k);
            let feats: Vec<[i32; NFEAT]> = (0..w * h)
                .map(|_| {
                    std::array::from_fn(|_| {
                        if rng.next().is_multiple_of(9) {
                            4095 * if rng.next().is_multiple_of(2) { 1 } else { -1 }
                        } else {
                            rng.range(-400, 400) as i32
                        }
                    })
                })
                .collect();
            let want = reference(&m, &feats, w, h);
            let mut by_pixel = Runner::new(&m, w);
            let mut by_run = Runner::new(&m, w);
            for r in 0..h {
                for c in 0..w {
                    let got: Vec<i64> = by_pixel
                        .step(&feats[r * w + c], r, c)
                        .iter()
                        .map(|&v| v as i64)
                        .collect();
                    assert_eq!(got, want[r * w + c], "{w}x{h} pixel ({r},{c})");
                }
                let run_len = 1 + r % 3;
                for c0 in (0..w).step_by(run_len) {
                    let end = (c0 + run_len).min(w);
                    let out = by_run.run(&feats[r * w + c0..r * w + end], r, c0).to_vec();
                    for (p, chunk) in out.chunks(m.layers[3].cout).enumerate() {
                        let got: Vec<i64> = chunk.iter().map(|&v| v as i64).collect();
                        assert_eq!(got, want[r * w + c0 + p], "{w}x{h} run at ({r},{})", c0 + p);
                    }
                }
            }
        }
    }
}
