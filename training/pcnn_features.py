"""PCNN_1 context features in numpy, exactly as src/neural/pcnn/features.rs
computes them (integers). Used for training (pcnn_train.py) and by the Rust
test tests/pcnn_features_oracle.rs, which checks that the two agree.

    python3 training/pcnn_features.py H W < pixels.txt   # prints features and candidates
"""
import sys

import numpy as np

NFEAT = 12
NCAND = 10
# Offsets (dr, dc) of the causal neighbours, in this order.
NB = dict(W=(0, -1), WW=(0, -2), N=(-1, 0), NN=(-2, 0), NW=(-1, -1), NE=(-1, 1),
          NNE=(-2, 1), NWW=(-1, -2), NNW=(-2, -1), NEE=(-1, 2))


def comp(d):
    """sign(d) * L(|d|), L(a) = 16*e + (((a+1) - 2^e) << 4 >> e), e = floor(log2(a+1))."""
    a = np.abs(d).astype(np.int64) + 1
    e = np.frexp(a.astype(np.float64))[1].astype(np.int64) - 1
    frac = ((a - (1 << e)) << 4) >> e
    return np.sign(d) * (16 * e + frac)


def neighbours(x):
    """Causal neighbour planes of an image x (H, W) int64, with the edge rule:
    rows above the image and columns left of it in the current row take the
    fill value (W, else N, else 0); columns of rows above are clamped."""
    h, w = x.shape
    fill = np.zeros_like(x)
    fill[:, 1:] = x[:, :-1]
    fill[1:, 0] = x[:-1, 0]
    out = {}
    rows = np.arange(h)[:, None]
    cols = np.arange(w)[None, :]
    for name, (dr, dc) in NB.items():
        rr = rows + dr
        cc = cols + dc
        if dr < 0:
            v = x[np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1)]
            v = np.where(rr < 0, fill, v)
        else:
            v = x[rows, np.clip(cc, 0, w - 1)] * np.ones_like(cols)
            v = np.where(cc < 0, fill, v)
        out[name] = v
    return out


def features(x):
    """(NFEAT, H, W) int64 features and (NCAND, H, W) candidate means in quarter units."""
    n = neighbours(x.astype(np.int64))
    W, WW, N, NN, NW, NE = n["W"], n["WW"], n["N"], n["NN"], n["NW"], n["NE"]
    NNE, NWW, NNW, NEE = n["NNE"], n["NWW"], n["NNW"], n["NEE"]
    g = [W - WW, N - NW, NW - NWW, NE - N, NEE - NE, W - NW, N - NN, NE - NNE, NW - NNW, N - W]
    f = [comp(d) for d in g]
    f.append(comp(sum(np.abs(d) for d in g)))
    f.append(comp(N))
    cand = [4 * W, 4 * N, 4 * NW, 4 * NE, 4 * (N + W - NW), 4 * (W + NE - N), 2 * (N + W), 2 * (W + NE),
            4 * (2 * N - NN), 4 * (2 * W - WW)]
    return np.stack(f), np.stack(cand)



if __name__ == "__main__":
    h, w = int(sys.argv[1]), int(sys.argv[2])
    x = np.array([int(v) for v in sys.stdin.read().split()], dtype=np.int64).reshape(h, w)
    f, c = features(x)
    for r in range(h):
        for col in range(w):
            print(" ".join(str(int(v)) for v in list(f[:, r, col]) + list(c[:, r, col])))
