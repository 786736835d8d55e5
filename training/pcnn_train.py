#!/usr/bin/env python3
"""Train the PCNN_1 autoregressive model and export it as an fpack-ng model file (.pcnm).

The model (docs/pixelcnn.md; Rust: src/neural/pcnn/) predicts, for every pixel,
a mixture of K discretised logistics over its uint16 value from pixels already
coded (raster order):

- 12 integer context features at each pixel: companded (signed piecewise-linear
  log2) local differences of the causal neighbours W, WW, N, NN, NW, NE, NNE,
  NWW, NNW, NEE, their summed magnitude, and the companded level of N;
- a 1x1 layer, two masked 3x3 convolutions (mask "B": taps NW, N, NE, W and
  the pixel itself, as in PixelCNN) and a 1x1 output layer;
- per mixture component: softmax weights over 10 fixed causal predictors
  (W, N, NW, NE, N+W-NW, W+NE-N, (N+W)/2, (W+NE)/2, 2N-NN, 2W-WW) giving the
  mean, a log2 scale and a mixture logit.

Training is quantisation-aware: weights, biases and activations go through the
integer rounding the Rust engine applies (straight-through gradients), so the
exported integer model keeps the likelihood it was trained to. The features
are integers computed exactly as the Rust code computes them.

Data: raw 16-bit frames of ../shared/corpus/train (never test/) plus frames
from ../shared/tools/synth.py, in the codec's domain (stored int16 + 32768).

    python3 training/pcnn_train.py --minutes 25 --out models/pcnn-small-v1.pcnm
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idf_train import (ACT_MAX, A_FRAC, BIAS_MAX, IN_MAX, MU_FRAC, NSCALE, W_FRAC,  # noqa: E402
                       W_MAX, act, load_frames, q_bias, q_weight, requant)
from pcnn_features import NCAND, NFEAT, features  # noqa: E402

# ---- the network --------------------------------------------------------------------
class QLayer(nn.Module):
    """Integer layer: requant(b + sum w*in) to A_FRAC fraction bits; kind 'point'
    (1x1) or 'causal5' (3x3 with taps NW, N, NE, W, centre; zero padding)."""

    def __init__(self, cin, cout, kind, act_):
        super().__init__()
        self.kind, self.act = kind, act_
        k = 1 if kind == "point" else 3
        self.w = nn.Parameter(torch.randn(cout, cin, k, k) / math.sqrt(cin * (5 if k == 3 else 1)))
        self.b = nn.Parameter(torch.zeros(cout))
        mask = torch.ones(1, 1, k, k)
        if k == 3:
            mask[..., 1, 2] = 0
            mask[..., 2, :] = 0
        self.register_buffer("mask", mask)

    def forward(self, x):
        w = q_weight(self.w) * self.mask
        b = q_bias(self.b, A_FRAC)
        y = F.conv2d(x, w, b, padding=self.w.shape[-1] // 2)
        y = requant(y, A_FRAC)
        return act(y) if self.act else y

    def export(self):
        wi = torch.clamp(torch.floor(self.w.detach() * (1 << W_FRAC) + 0.5), -W_MAX, W_MAX) * self.mask
        if self.kind == "causal5":
            # taps NW, N, NE, W, centre
            wi = torch.stack([wi[:, :, 0, 0], wi[:, :, 0, 1], wi[:, :, 0, 2], wi[:, :, 1, 0], wi[:, :, 1, 1]], -1)
        wi = wi.reshape(wi.shape[0], -1).to(torch.int64)
        s = 1 << (W_FRAC + A_FRAC)
        bi = torch.clamp(torch.floor(self.b.detach() * s + 0.5), -BIAS_MAX, BIAS_MAX).to(torch.int64)
        meta = dict(kind=self.kind, cin=self.w.shape[1], cout=self.w.shape[0], act=self.act, shift=W_FRAC)
        return meta, [wi.flatten(), bi]


class PCNN(nn.Module):
    def __init__(self, hidden, mixture):
        super().__init__()
        self.k = mixture
        self.layers = nn.ModuleList([
            QLayer(NFEAT, hidden, "point", True),
            QLayer(hidden, hidden, "causal5", True),
            QLayer(hidden, hidden, "causal5", True),
            QLayer(hidden, mixture * (NCAND + 2), "point", False),
        ])
        with torch.no_grad():
            last = self.layers[-1]
            last.w.mul_(0.1)
            for k in range(mixture):
                last.b[k * (NCAND + 2) + NCAND] = 2.0 + k  # log2 sigma ~ 4, 8

    def bits(self, feat, cand, x):
        """Total -log2 P of a batch (see crop_bits)."""
        return self.crop_bits(feat, cand, x).sum()

    def crop_bits(self, feat, cand, x):
        """feat (B,NFEAT,H,W) integer features / 16; cand (B,NCAND,H,W) quarter units;
        x (B,1,H,W) uint16 values. Returns -log2 P per crop, shape (B,)."""
        h = feat
        for l in self.layers:
            h = l(h)
        p = 0.0
        base = NCAND + 2
        logits_pi = torch.stack([h[:, k * base + NCAND + 1] for k in range(self.k)], 1) * math.log(2)
        pi = torch.softmax(logits_pi, 1)
        for k in range(self.k):
            z = h[:, k * base:k * base + NCAND] * math.log(2)
            wts = torch.softmax(z, 1)
            mu = (wts * cand).sum(1, keepdim=True) / 4.0
            o = h[:, k * base + NCAND:k * base + NCAND + 1]
            j = torch.clamp(ste_round(o * 4.0) + 12, 0, NSCALE - 1)
            s = torch.pow(2.0, j / 4.0 - 3.0)
            up = torch.where(x >= 65535, torch.ones_like(x), torch.sigmoid((x + 0.5 - mu) / s))
            lo = torch.where(x <= 0, torch.zeros_like(x), torch.sigmoid((x - 0.5 - mu) / s))
            p = p + pi[:, k:k + 1] * (up - lo)
        return -torch.log2(torch.clamp(p, min=2.0 ** -24)).sum(dim=(1, 2, 3))


def ste_round(x):
    return x + (torch.floor(x + 0.5) - x).detach()


# ---- data ---------------------------------------------------------------------------
def sample_batch(frames, rng, batch, size):
    fs, cs, xs = [], [], []
    for _ in range(batch):
        _, f = frames[rng.integers(len(frames))]
        if rng.random() < 0.5:
            f = f[:, ::-1]
        y = rng.integers(2, f.shape[0] - size + 1)
        x0 = rng.integers(2, f.shape[1] - size - 1)
        win = f[y - 2:y + size, x0 - 2:x0 + size + 2].astype(np.int64)
        ft, cd = features(win)
        fs.append(ft[:, 2:, 2:-2])
        cs.append(cd[:, 2:, 2:-2])
        xs.append(win[None, 2:, 2:-2])
    t = lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a)).astype(np.float32))
    return t(fs) / 16.0, t(cs), t(xs)


def load_pcnm(model, path):
    """Initialise the float weights from an exported integer model."""
    raw = open(path, "rb").read()
    n = struct.unpack("<I", raw[8:12])[0]
    h = json.loads(raw[12:12 + n])
    data = np.frombuffer(raw[12 + n:], dtype="<i4").astype(np.float64)
    at = 0
    with torch.no_grad():
        for l, meta in zip(model.layers, h["layers"]):
            cout, cin = meta["cout"], meta["cin"]
            taps = 1 if meta["kind"] == "point" else 5
            w = data[at:at + cout * cin * taps].reshape(cout, cin, taps) / (1 << W_FRAC)
            at += cout * cin * taps
            b = data[at:at + cout] / (1 << (W_FRAC + A_FRAC))
            at += cout
            if taps == 1:
                l.w.copy_(torch.from_numpy(w.reshape(cout, cin, 1, 1)))
            else:
                full = np.zeros((cout, cin, 3, 3))
                for t, (r, c) in enumerate([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]):
                    full[:, :, r, c] = w[:, :, t]
                l.w.copy_(torch.from_numpy(full))
            l.b.copy_(torch.from_numpy(b))


def export(model, args, path, card):
    layers, blobs = [], []
    for l in model.layers:
        meta, data = l.export()
        layers.append(meta)
        blobs.extend(data)
    header = dict(format=1, name=args.name, version=args.version, features=NFEAT, candidates=NCAND,
                  mixture=args.mixture, hidden=args.hidden, layers=layers,
                  w_frac=W_FRAC, a_frac=A_FRAC, act_max=ACT_MAX, in_max=IN_MAX,
                  bias_max=BIAS_MAX, nscale=NSCALE, mu_frac=MU_FRAC, card=card)
    js = json.dumps(header, sort_keys=True).encode()
    body = b"".join(struct.pack(f"<{len(t)}i", *[int(v) for v in t.tolist()]) for t in blobs)
    raw = b"FPNGPCN\0" + struct.pack("<I", len(js)) + js + body
    with open(path, "wb") as fh:
        fh.write(raw)
    return hashlib.sha256(raw).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.normpath(os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--mixture", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=48)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--synth", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    ap.add_argument("--train-dir", default=os.path.join(shared, "corpus", "train"))
    ap.add_argument("--synth-tool", default=os.path.join(shared, "tools", "synth.py"))
    ap.add_argument("--name", default=None)
    ap.add_argument("--version", default="1")
    ap.add_argument("--out", required=True)
    ap.add_argument("--log", default=None)
    ap.add_argument("--state", default=None, help="also save the float weights here (torch state_dict)")
    ap.add_argument("--init", default=None, help="start from a saved state (.pt) or an exported model (.pcnm)")
    ap.add_argument("--loss", choices=["bits", "logbpp"], default="bits",
                    help="bits: total code length (favours noisy frames, where most bits are); "
                         "logbpp: mean over crops of log2(bits/pixel), which weighs a relative gain on a "
                         "smooth crop like one on a noisy crop, as a mean of per-frame ratios does")
    args = ap.parse_args()
    if args.name is None:
        args.name = f"pcnn-h{args.hidden}-k{args.mixture}"
    assert args.hidden <= 64 and args.mixture <= 4
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
    rng = np.random.default_rng(args.seed)
    frames = [(n, f) for n, f in load_frames(args.train_dir, args.synth_tool, args.synth, args.seed)
              if f.shape[0] >= args.crop + 4 and f.shape[1] >= args.crop + 6]
    held = sample_batch(frames, np.random.default_rng(12345), 64, args.crop)
    model = PCNN(args.hidden, args.mixture)
    if args.init and args.init.endswith(".pcnm"):
        load_pcnm(model, args.init)
    elif args.init:
        model.load_state_dict(torch.load(args.init))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    npix = args.batch * args.crop * args.crop
    t0 = time.time()
    curve = []
    step = 0
    budget = args.minutes * 60
    while time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        for g in opt.param_groups:
            g["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        f, c, x = sample_batch(frames, rng, args.batch, args.crop)
        if args.loss == "bits":
            loss = model.bits(f, c, x) / npix
        else:
            loss = torch.log2(model.crop_bits(f, c, x) / (args.crop * args.crop) + 0.05).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if step % 100 == 0 or step == 1:
            with torch.no_grad():
                cb = model.crop_bits(*held) / (args.crop * args.crop)
                hb = cb.mean().item()
                hr = (16.0 / cb).mean().item()
            curve.append(dict(step=step, seconds=round(time.time() - t0, 1), train_loss=round(loss.item(), 4),
                              heldout_bpp=round(hb, 4), heldout_mean_ratio=round(hr, 4)))
            print(json.dumps(curve[-1]), flush=True)
    with torch.no_grad():
        hb = (model.bits(*held) / held[2].numel()).item()
    card = dict(trained_on=f"{args.train_dir} ({len(frames) - args.synth} HDUs) + {args.synth} synth.py frames",
                steps=step, seconds=round(time.time() - t0), heldout_bpp=round(hb, 4),
                hardware=f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}",
                command=" ".join(sys.argv))
    sha = export(model, args, args.out, card)
    if args.state:
        torch.save(model.state_dict(), args.state)
    print(json.dumps(dict(final_heldout_bpp=hb, steps=step, sha256=sha, out=args.out)))
    if args.log:
        with open(args.log, "w") as fh:
            json.dump(dict(card=card, curve=curve, sha256=sha), fh, indent=1)


if __name__ == "__main__":
    main()
