//! The causal context of a pixel: integer features for the network and the
//! candidate predictions its output mixes.
//!
//! Everything here is a function of pixels already coded (raster order within
//! the tile), in integers, so encoder and decoder compute the same values.
//! training/pcnn_train.py computes the same features with numpy for
//! training. Edge rule: columns of rows above are clamped to the tile; rows
//! above the tile, and columns left of it in the current row, take the fill
//! value (the pixel to the left, else the one above, else 0).

/// Number of input features.
pub const NFEAT: usize = 12;
/// Number of candidate predictors the output mixes.
pub const NCAND: usize = 10;

/// Signed piecewise-linear log2 with 4 fraction bits:
/// `sign(d)·(16e + ((a+1−2^e)·16 >> e))`, `e = ⌊log2(a+1)⌋`, `a = |d|`.
/// Scale-free inputs let one network serve read-noise-limited bias frames and
/// bright smooth images alike.
#[inline]
pub fn comp(d: i64) -> i32 {
    let a = d.unsigned_abs() + 1;
    let e = 63 - a.leading_zeros();
    let frac = ((a - (1u64 << e)) << 4) >> e;
    let l = (16 * e as u64 + frac) as i32;
    if d < 0 {
        -l
    } else {
        l
    }
}

/// Features (network input) and candidate means (quarter units) of pixel
/// (r, c) of an image `w` wide whose pixels before (r, c) are known.
#[inline]
pub fn context(x: &[i32], w: usize, r: usize, c: usize) -> ([i32; NFEAT], [i64; NCAND]) {
    let fill = if c > 0 {
        x[r * w + c - 1]
    } else if r > 0 {
        x[(r - 1) * w]
    } else {
        0
    } as i64;
    let above = |dr: usize, dc: isize| -> i64 {
        if r < dr {
            fill
        } else {
            let cc = (c as isize + dc).clamp(0, w as isize - 1) as usize;
            x[(r - dr) * w + cc] as i64
        }
    };
    let left = |dc: usize| -> i64 {
        if c < dc {
            fill
        } else {
            x[r * w + c - dc] as i64
        }
    };
    let (wv, ww) = (left(1), left(2));
    let (n, nn, nw, ne) = (above(1, 0), above(2, 0), above(1, -1), above(1, 1));
    let (nne, nww, nnw, nee) = (above(2, 1), above(1, -2), above(2, -1), above(1, 2));
    let g = [
        wv - ww,
        n - nw,
        nw - nww,
        ne - n,
        nee - ne,
        wv - nw,
        n - nn,
        ne - nne,
        nw - nnw,
        n - wv,
    ];
    let mut f = [0i32; NFEAT];
    let mut sum = 0i64;
    for (fi, &d) in f.iter_mut().zip(g.iter()) {
        *fi = comp(d);
        sum += d.abs();
    }
    f[10] = comp(sum);
    f[11] = comp(n);
    let cand = [
        4 * wv,
        4 * n,
        4 * nw,
        4 * ne,
        4 * (n + wv - nw),
        4 * (wv + ne - n),
        2 * (n + wv),
        2 * (wv + ne),
        4 * (2 * n - nn),
        4 * (2 * wv - ww),
    ];
    (f, cand)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compander_is_a_signed_piecewise_linear_log2() {
        assert_eq!(comp(0), 0);
        assert_eq!(comp(1), 16);
        assert_eq!(comp(-1), -16);
        assert_eq!(comp(2), 16 + 8);
        assert_eq!(comp(3), 32);
        assert_eq!(comp(65535), 256);
        let mut last = 0;
        for d in 0..200_000i64 {
            let v = comp(d);
            assert!(v >= last, "not monotone at {d}");
            assert_eq!(comp(-d), -v);
            last = v;
        }
    }

    #[test]
    fn context_uses_only_earlier_pixels() {
        let (w, h) = (7, 5);
        let mut rng = crate::test_rng::TestRng(4);
        let x: Vec<i32> = (0..w * h).map(|_| rng.range(0, 65535) as i32).collect();
        for r in 0..h {
            for c in 0..w {
                let mut y = x.clone();
                for v in &mut y[r * w + c..] {
                    *v ^= 0x5555;
                }
                assert_eq!(context(&x, w, r, c), context(&y, w, r, c), "({r},{c})");
            }
        }
    }
}
