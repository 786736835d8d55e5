//! The libtorch engine (cargo feature `tch`): the integer semantics of
//! [`super::semantics`] computed with float64 tensors, on a CUDA GPU or on
//! libtorch's CPU device.
//!
//! Why float64 and why it is exact: GPUs multiply integers slowly or not at
//! all through libtorch (no int matmul on CUDA), but every value a network
//! handles is an integer, and model loading proves that every accumulator,
//! and so every partial sum in any order, stays below 2^31 in magnitude. An
//! f64 holds every integer below 2^53 exactly, so sums and products of these
//! values are exact whatever the order, blocking or use of fused
//! multiply-add. Division by 2^s is exact, and `floor` of an exact value is
//! exact. The requantisation is then the same formula as the float64
//! reference: `floor((acc + 2^(s-1)) / 2^s)`, leaky `v >= 0 ? v : floor(v/8)`,
//! clamp to ±ACT_MAX; the first layer takes 3×3 patches with edges
//! replicated, minus the reference at the centre position, clamped ±IN_MAX.
//!
//! A 3×3 layer is computed as nine matrix products, one per tap, of the
//! `[cout, cin]` weights with the shifted (padded) input `[cin, h·w]`, not
//! with `conv2d`: which convolution algorithm libtorch picks is its own
//! choice (cuDNN has FFT and Winograd variants, which are not exact), whereas
//! a float64 matrix product is a sum of exact products on every backend.
//! TF32 affects float32 only. The tile CRC of IDF_1 still catches any engine
//! that computes differently, so a defect here gives an error, never wrong
//! pixels.
//!
//! `run` works on one tile's planes, as the trait asks; batching tiles into
//! one tensor would use a GPU better and is left for later. If libtorch
//! reports an error (e.g. GPU memory exhausted), the call falls back to the
//! CPU engine, which computes the same integers, and says so once on stderr.

use std::sync::Once;

use tch::{Device, Kind, TchError, Tensor};

use super::engine::{Cpu, Engine, Planes};
use super::model::{Layer, LayerKind, Net};
use super::semantics::{ACT_MAX, IN_MAX};

/// The libtorch engine on one device.
#[derive(Debug, Clone, Copy)]
pub struct Tch {
    device: Device,
}

impl Tch {
    /// The engine on libtorch's CPU device (slower than [`Cpu`]; it exists so
    /// the tch code path can be checked on machines without a GPU).
    pub fn cpu() -> Tch {
        Tch {
            device: Device::Cpu,
        }
    }

    /// The engine on the first CUDA device, if libtorch sees one.
    pub fn cuda() -> Option<Tch> {
        if !tch::Cuda::is_available() {
            return None;
        }
        // cuDNN is not used by this engine (matrix products only); keep it
        // off and deterministic anyway, in case a later change uses conv2d.
        tch::Cuda::set_user_enabled_cudnn(false);
        tch::Cuda::cudnn_set_benchmark(false);
        Some(Tch {
            device: Device::Cuda(0),
        })
    }

    /// Number of CUDA devices libtorch sees (0 without a GPU, or when
    /// libtorch_cuda was not linked; see build.rs).
    pub fn cuda_device_count() -> usize {
        tch::Cuda::device_count().max(0) as usize
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// A leaked instance, for [`crate::codec::CodecContext::engine`].
    pub fn leak(self) -> &'static Tch {
        Box::leak(Box::new(self))
    }

    fn tensor(&self, v: &[f64], shape: &[i64]) -> Result<Tensor, TchError> {
        Tensor::f_from_slice(v)?
            .f_view(shape)?
            .f_to_device(self.device)
    }

    fn planes_tensor(&self, planes: &[&[i32]], h: usize, w: usize) -> Result<Tensor, TchError> {
        let mut v = Vec::with_capacity(planes.len() * h * w);
        for p in planes {
            v.extend(p.iter().map(|&x| x as f64));
        }
        self.tensor(&v, &[planes.len() as i64, h as i64, w as i64])
    }

    /// `[cout, cin, taps]` weights as `taps` matrices `[cout, cin]`, and the
    /// bias as a column.
    fn weights(&self, layer: &Layer) -> Result<(Vec<Tensor>, Tensor), TchError> {
        let taps = layer.kind.taps();
        let mut mats = Vec::with_capacity(taps);
        for t in 0..taps {
            let m: Vec<f64> = (0..layer.cout * layer.cin)
                .map(|oi| layer.w[oi * taps + t] as f64)
                .collect();
            mats.push(self.tensor(&m, &[layer.cout as i64, layer.cin as i64])?);
        }
        let b: Vec<f64> = layer.b.iter().map(|&b| b as f64).collect();
        Ok((mats, self.tensor(&b, &[layer.cout as i64, 1])?))
    }

    /// Requantise `[cout, n]` accumulators and apply the activation.
    fn finish(&self, layer: &Layer, acc: &Tensor) -> Result<Tensor, TchError> {
        let half: Vec<f64> = layer
            .shift
            .iter()
            .map(|&s| if s == 0 { 0.0 } else { ((s - 1) as f64).exp2() })
            .collect();
        let p: Vec<f64> = layer.shift.iter().map(|&s| (s as f64).exp2()).collect();
        let cout = layer.cout as i64;
        let v = acc
            .f_add(&self.tensor(&half, &[cout, 1])?)?
            .f_div(&self.tensor(&p, &[cout, 1])?)?
            .f_floor()?;
        if !layer.act {
            return Ok(v);
        }
        let neg = v.f_div_scalar(8.0)?.f_floor()?;
        let v = v.f_where_self(&v.f_ge(0.0)?, &neg)?;
        v.f_clamp(-(ACT_MAX as f64), ACT_MAX as f64)
    }

    /// A layer on `x` = `[cin, h, w]`; returns `[cout, h, w]`. For Patch3,
    /// `refs` is `[cin, h, w]` (zeros where the net has no reference).
    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        refs: Option<&Tensor>,
        h: i64,
        w: i64,
    ) -> Result<Tensor, TchError> {
        let (mats, bias) = self.weights(layer)?;
        let cin = layer.cin as i64;
        let n = h * w;
        let mut acc = bias
            .f_expand([layer.cout as i64, n], false)?
            .f_contiguous()?;
        match layer.kind {
            LayerKind::Conv1 => {
                acc = acc.f_add(&mats[0].f_matmul(&x.f_reshape([cin, n])?)?)?;
            }
            LayerKind::Patch3 | LayerKind::Conv3 => {
                let padded = if layer.kind == LayerKind::Patch3 {
                    // replication_pad2d wants a batch dimension.
                    x.f_unsqueeze(0)?
                        .f_replication_pad2d([1, 1, 1, 1])?
                        .f_squeeze_dim(0)?
                } else {
                    x.f_constant_pad_nd([1, 1, 1, 1])?
                };
                for (t, m) in mats.iter().enumerate() {
                    let (ky, kx) = ((t / 3) as i64, (t % 3) as i64);
                    let mut tap = padded.f_narrow(1, ky, h)?.f_narrow(2, kx, w)?;
                    if let Some(r) = refs {
                        tap = tap.f_sub(r)?.f_clamp(-(IN_MAX as f64), IN_MAX as f64)?;
                    }
                    acc = acc.f_add(&m.f_matmul(&tap.f_reshape([cin, n])?)?)?;
                }
            }
        }
        self.finish(layer, &acc)?
            .f_reshape([layer.cout as i64, h, w])
    }

    fn try_run(
        &self,
        net: &Net,
        inputs: &[&[i32]],
        refs: &[Option<&[i32]>],
        h: usize,
        w: usize,
    ) -> Result<Planes, TchError> {
        let _guard = tch::no_grad_guard();
        let x = self.planes_tensor(inputs, h, w)?;
        let zeros = vec![0i32; h * w];
        let r: Vec<&[i32]> = refs.iter().map(|r| r.unwrap_or(&zeros)).collect();
        let r = self.planes_tensor(&r, h, w)?;
        let (hi, wi) = (h as i64, w as i64);
        let mut cur = self.layer(&net.layers[0], &x, Some(&r), hi, wi)?;
        for layer in &net.layers[1..] {
            cur = self.layer(layer, &cur, None, hi, wi)?;
        }
        let c = net.cout();
        let out = cur
            .f_to_kind(Kind::Int)?
            .f_to_device(Device::Cpu)?
            .f_contiguous()?;
        let mut data = vec![0i32; c * h * w];
        out.f_copy_data(&mut data, c * h * w)?;
        Ok(Planes { c, h, w, data })
    }
}

impl Engine for Tch {
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
        assert!(
            net.layers
                .iter()
                .skip(1)
                .all(|l| l.kind != LayerKind::Patch3),
            "model loading allows Patch3 only first"
        );
        match self.try_run(net, inputs, refs, h, w) {
            Ok(p) => p,
            Err(e) => {
                static WARN: Once = Once::new();
                WARN.call_once(|| eprintln!("warning: the tch engine on {:?} failed ({e}); using the CPU engine, which computes the same numbers", self.device));
                Cpu.run(net, inputs, refs, h, w)
            }
        }
    }

    fn name(&self) -> &'static str {
        match self.device {
            Device::Cpu => "tch-cpu",
            _ => "tch-cuda",
        }
    }
}
