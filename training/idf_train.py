#!/usr/bin/env python3
"""Train the IDF_1 integer discrete flow and export it as an fpack-ng model file.

The network is trained *quantisation-aware*: every weight, bias and activation
goes through the same integer rounding the Rust engine applies (see
docs/neural.md), with straight-through gradients, so the exported integer model
keeps the likelihood it was trained to.

Data: raw 16-bit frames of ../shared/corpus/train (never test/) plus frames
from ../shared/tools/synth.py. Pixels are the codec's domain: the stored
16-bit integers + 32768, i.e. physical uint16 values.

    python3 training/idf_train.py --variant 16 --minutes 20 --out models/idf16-small-v1.idfm

Prints a learning curve (bits/pixel per step on training crops, and on a
held-out set of training crops) and writes the model file plus a JSON log.
"""
import argparse
import glob
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- the integer semantics (must match src/neural/engine.rs) --------------------
W_FRAC = 8          # weights are integers / 2^8
W_MAX = 1023        # |weight integer| <= 1023
A_FRAC = 4          # hidden activations are integers / 2^4
ACT_MAX = 4095      # |hidden activation integer| <= 4095
IN_MAX = 4095       # first-layer inputs (pixel units, relative to a reference) clamped to +-4095
BIAS_MAX = 1 << 20  # |bias integer| <= 2^20 (at the accumulator's scale)
NSCALE = 64         # scale index j: sigma = 2^(j/4 - 3)
MU_FRAC = 2         # prior means in quarter units


def ste_floor(x):
    return x + (torch.floor(x) - x).detach()


def q_weight(w):
    return torch.clamp(ste_floor(w * (1 << W_FRAC) + 0.5), -W_MAX, W_MAX) / (1 << W_FRAC)


def q_bias(b, a_in):
    s = 1 << (W_FRAC + a_in)
    return torch.clamp(ste_floor(b * s + 0.5), -BIAS_MAX, BIAS_MAX) / s


def requant(y, a_out):
    """acc -> (acc + 2^(s-1)) >> s, i.e. floor(y * 2^a_out + 0.5) / 2^a_out."""
    s = float(1 << a_out)
    return ste_floor(y * s + 0.5) / s


def act(v):
    """Integer leaky ReLU on activations with A_FRAC fraction bits:
    v >= 0 ? v : v >> 3 (floor), then clamp to +-ACT_MAX."""
    vi = v * (1 << A_FRAC)
    vi = torch.where(vi >= 0, vi, ste_floor(vi / 8))
    return torch.clamp(vi, -ACT_MAX, ACT_MAX) / (1 << A_FRAC)


class Net(nn.Module):
    """patch3x3(cin->h, relative to a reference, clamped) -> act -> conv3x3(h->h) -> act
    -> conv1x1(h->cout) with per-output fraction bits `a_out`."""

    def __init__(self, cin, h, a_out):
        super().__init__()
        self.cin, self.h = cin, h
        self.a_out = list(a_out)
        cout = len(self.a_out)
        self.w1 = nn.Parameter(torch.randn(h, cin, 3, 3) * 0.02)
        self.b1 = nn.Parameter(torch.zeros(h))
        self.w2 = nn.Parameter(torch.randn(h, h, 3, 3) * (1.0 / math.sqrt(h * 9)))
        self.b2 = nn.Parameter(torch.zeros(h))
        self.w3 = nn.Parameter(torch.zeros(cout, h, 1, 1))
        self.b3 = nn.Parameter(torch.zeros(cout))
        self.register_buffer("aout", torch.tensor([float(1 << a) for a in self.a_out]).view(1, -1, 1, 1))

    def forward(self, x, ref):
        b, c, hh, ww = x.shape
        xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
        p = F.unfold(xp, 3).view(b, c, 9, hh * ww) - ref.reshape(b, c, 1, hh * ww)
        p = torch.clamp(p, -IN_MAX, IN_MAX).view(b, c * 9, hh * ww)
        y = torch.einsum("ok,bkn->bon", q_weight(self.w1).view(self.h, -1), p)
        y = y + q_bias(self.b1, 0).view(1, -1, 1)
        a = act(requant(y, A_FRAC)).view(b, self.h, hh, ww)
        y = F.conv2d(a, q_weight(self.w2), q_bias(self.b2, A_FRAC), padding=1)
        a = act(requant(y, A_FRAC))
        y = F.conv2d(a, q_weight(self.w3), q_bias(self.b3, A_FRAC))
        return ste_floor(y * self.aout + 0.5) / self.aout

    def export(self):
        """Integer tensors and shifts, in the order the Rust engine reads them."""
        def wi(w):
            return torch.clamp(torch.floor(w * (1 << W_FRAC) + 0.5), -W_MAX, W_MAX).long()

        def bi(b, a_in):
            return torch.clamp(torch.floor(b * (1 << (W_FRAC + a_in)) + 0.5), -BIAS_MAX, BIAS_MAX).long()

        cout = len(self.a_out)
        layers = [
            dict(kind="patch3", cin=self.cin, cout=self.h, act=True,
                 shift=[W_FRAC + 0 - A_FRAC] * self.h),
            dict(kind="conv3", cin=self.h, cout=self.h, act=True,
                 shift=[W_FRAC + A_FRAC - A_FRAC] * self.h),
            dict(kind="conv1", cin=self.h, cout=cout, act=False,
                 shift=[W_FRAC + A_FRAC - a for a in self.a_out]),
        ]
        data = [wi(self.w1).flatten(), bi(self.b1, 0), wi(self.w2).flatten(), bi(self.b2, A_FRAC),
                wi(self.w3).flatten(), bi(self.b3, A_FRAC)]
        return layers, data


class Level(nn.Module):
    """One level: squeeze 2x2, predict/update lifting couplings horizontally then
    vertically, factor out the three detail groups with a conditional prior."""

    def __init__(self, c, h):
        super().__init__()
        self.c = c
        self.t1 = Net(2 * c, h, [0] * (2 * c))
        self.t2 = Net(2 * c, h, [0] * (2 * c))
        self.t3 = Net(2 * c, h, [0] * (2 * c))
        self.t4 = Net(2 * c, h, [0] * (2 * c))
        self.prior = Net(2 * c, h, [MU_FRAC] * (3 * c) + [0] * (3 * c))
        with torch.no_grad():  # start the prior's scales near sigma = 8
            self.prior.b3[3 * c:] = 24.0

    def forward(self, x):
        c = self.c
        s00, s01 = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
        s10, s11 = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
        zero = torch.zeros_like(s00)
        o = self.t1(torch.cat([s00, s10], 1), torch.cat([s00, s00], 1))
        d01 = s01 - (s00 + o[:, :c])
        d11 = s11 - (s00 + o[:, c:])
        o = self.t2(torch.cat([d01, d11], 1), torch.cat([zero, zero], 1))
        l00 = s00 + o[:, :c]
        l10 = s10 + o[:, c:]
        o = self.t3(torch.cat([l00, d01], 1), torch.cat([l00, zero], 1))
        e10 = l10 - (l00 + o[:, :c])
        e11 = d11 - o[:, c:]
        o = self.t4(torch.cat([e10, e11], 1), torch.cat([zero, zero], 1))
        ll = l00 + o[:, :c]
        e01 = d01 + o[:, c:]
        return ll, torch.cat([e01, e10, e11], 1)

    def prior_bits(self, ll, det, off):
        c = self.c
        o = self.prior(torch.cat([ll, ll], 1), torch.cat([ll, off.expand_as(ll)], 1))
        mu = o[:, : 3 * c]
        j = torch.clamp(o[:, 3 * c:], 0, NSCALE - 1)
        sigma = torch.pow(2.0, j / 4.0 - 3.0)
        return logistic_bits(det, mu, sigma)


def logistic_bits(x, mu, s):
    """-log2 P(x) under a logistic(mu, s) discretised to integers."""
    a = (x + 0.5 - mu) / s
    b = (x - 0.5 - mu) / s
    # P = sigmoid(a) - sigmoid(b), computed stably
    p = torch.sigmoid(a) - torch.sigmoid(b)
    p = torch.clamp(p, min=2.0 ** -24)
    return -torch.log2(p).sum()


class Flow(nn.Module):
    def __init__(self, variant, levels, hidden):
        super().__init__()
        self.variant = variant
        self.c = 1 if variant == "16" else 2
        self.levels = nn.ModuleList([Level(self.c, hidden) for _ in range(levels)])

    def to_channels(self, u):
        if self.variant == "16":
            return u
        return torch.cat([torch.floor(u / 256), u - 256 * torch.floor(u / 256)], 1)

    def bits(self, u):
        """Total bits for a batch of uint16 crops (B,1,H,W), H and W divisible by 2^levels."""
        x = self.to_channels(u)
        dets, lls = [], []
        for lv in self.levels:
            ll, det = lv(x)
            lls.append(ll)
            dets.append(det)
            x = ll
        off = torch.floor(x.mean(dim=(2, 3), keepdim=True)).detach()
        total = 0.0
        for lv, ll, det in zip(self.levels, lls, dets):
            total = total + lv.prior_bits(ll, det, off)
        # top: DPCM along rows (first column against the pixel above, first pixel
        # against the tile mean), one logistic per channel with the scale fitted
        # to the residuals, as the encoder does.
        r = torch.cat([x[:, :, :1, :1] - off, x[:, :, 1:, :1] - x[:, :, :-1, :1]], 2)
        r = torch.cat([r, x[:, :, :, 1:] - x[:, :, :, :-1]], 3)
        s = torch.clamp(r.detach().std(dim=(2, 3), keepdim=True) * 0.5513, min=0.2)
        total = total + logistic_bits(r, torch.zeros_like(r), s)
        return total


# ---- data -----------------------------------------------------------------------
def load_frames(train_dir, synth_tool, n_synth, seed):
    from astropy.io import fits
    frames = []
    for f in sorted(glob.glob(os.path.join(train_dir, "*.fits"))):
        with fits.open(f, do_not_scale_image_data=True) as h:
            for hdu in h:
                if hdu.is_image and hdu.data is not None and hdu.data.dtype.kind == "i" \
                        and hdu.data.dtype.itemsize == 2 and hdu.data.ndim == 2:
                    frames.append((os.path.basename(f), hdu.data.astype(np.int32) + 32768))
    sys.path.insert(0, os.path.dirname(synth_tool))
    import synth  # noqa: E402
    rng = np.random.default_rng(seed)
    for i in range(n_synth):
        kw = dict(seed=1000 + i, ny=768, nx=768, overscan=32,
                  bias=float(rng.uniform(300, 3000)), gain=float(rng.uniform(0.8, 3.0)),
                  rn=float(rng.uniform(2.5, 12)), sky=float(rng.choice([5, 30, 150, 800, 3000])),
                  nstars=int(rng.integers(50, 600)))
        img, _ = synth.make_frame(**kw)
        frames.append((f"synth{i}", img.astype(np.int32)))
    return frames


def sample_batch(frames, rng, batch, size):
    out = np.empty((batch, 1, size, size), np.float32)
    for k in range(batch):
        _, f = frames[rng.integers(len(frames))]
        y = rng.integers(0, f.shape[0] - size + 1)
        x = rng.integers(0, f.shape[1] - size + 1)
        c = f[y:y + size, x:x + size]
        if rng.random() < 0.5:
            c = c[:, ::-1]
        out[k, 0] = c
    return torch.from_numpy(out)


# ---- export ---------------------------------------------------------------------
def export(model, args, path, card):
    nets, blobs = [], []
    for li, lv in enumerate(model.levels):
        for name in ("t1", "t2", "t3", "t4", "prior"):
            layers, data = getattr(lv, name).export()
            nets.append(dict(name=f"level{li + 1}.{name}", layers=layers))
            blobs.extend(data)
    header = dict(format=1, name=args.name, version=args.version, variant=args.variant,
                  channels=model.c, levels=len(model.levels), hidden=args.hidden,
                  w_frac=W_FRAC, a_frac=A_FRAC, act_max=ACT_MAX, in_max=IN_MAX,
                  bias_max=BIAS_MAX, nscale=NSCALE, mu_frac=MU_FRAC, nets=nets, card=card)
    js = json.dumps(header, sort_keys=True).encode()
    body = b"".join(struct.pack(f"<{len(t)}i", *[int(v) for v in t.tolist()]) for t in blobs)
    raw = b"FPNGIDF\0" + struct.pack("<I", len(js)) + js + body
    with open(path, "wb") as fh:
        fh.write(raw)
    return hashlib.sha256(raw).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.normpath(os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--variant", choices=["16", "split"], default="16")
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
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
    ap.add_argument("--init", default=None, help="start from a saved state")
    args = ap.parse_args()
    if args.name is None:
        args.name = f"idf{args.variant}-h{args.hidden}-l{args.levels}"
    assert args.hidden <= 32, "hidden width > 32 could overflow the engine's i32 accumulators"
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
    rng = np.random.default_rng(args.seed)
    frames = load_frames(args.train_dir, args.synth_tool, args.synth, args.seed)
    held = sample_batch(frames, np.random.default_rng(12345), 48, args.crop)
    model = Flow(args.variant, args.levels, args.hidden)
    if args.init:
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
            g["lr"] = args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        u = sample_batch(frames, rng, args.batch, args.crop)
        loss = model.bits(u) / npix
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if step % 50 == 0 or step == 1:
            with torch.no_grad():
                hb = (model.bits(held) / held.numel()).item()
            curve.append(dict(step=step, seconds=round(time.time() - t0, 1), train_bpp=round(loss.item(), 4),
                              heldout_bpp=round(hb, 4)))
            print(json.dumps(curve[-1]), flush=True)
    with torch.no_grad():
        hb = (model.bits(held) / held.numel()).item()
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
