//! The libtorch engine computes exactly the integers of the CPU engine.
//!
//! Built only with the `tch` feature (run `scripts/test-tch.sh`): CI builds
//! without libtorch. Everything here runs on libtorch's CPU device, which
//! takes the same code path as CUDA (float64 tensors, the same operations);
//! `cuda_and_cpu_cross_decode` repeats the decisive checks on a GPU when
//! libtorch sees one and prints a note otherwise.
//!
//! The nets are those of the built-in model (`store::default_model()`); the
//! inputs are random (small values, and extremes of ±2^20 that drive the
//! input clamps, the activation clamps and the largest accumulators) and a
//! crop of a real frame from the test corpus (env `FPACKNG_CORPUS`, default
//! `../shared/corpus`), read with the library's FITS reader.
#![cfg(feature = "tch")]

use std::path::PathBuf;

use fpackng::fits::FitsReader;
use fpackng::neural::flow::{decode_tile, encode_tile};
use fpackng::neural::model::Net;
use fpackng::neural::reference::Float64Reference;
use fpackng::neural::store::default_model;
use fpackng::neural::tch_engine::Tch;
use fpackng::neural::{Cpu, Engine, Model};
use fpackng::tile::{PixelType, Pixels};
use fpackng::Limits;

/// xorshift64*: deterministic test data without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i32 {
        (lo + (self.next() % (hi - lo + 1) as u64) as i64) as i32
    }
}

fn all_nets(m: &Model) -> Vec<&Net> {
    m.levels
        .iter()
        .flat_map(|l| [&l.t1, &l.t2, &l.t3, &l.t4, &l.prior])
        .collect()
}

/// A plane of `n` values in one of several regimes.
fn plane(rng: &mut Rng, n: usize, regime: u32) -> Vec<i32> {
    const E: i64 = 1 << 20;
    (0..n)
        .map(|_| match regime {
            0 => rng.range(-300, 300),
            1 => rng.range(0, 65535),
            2 => [-E as i32, E as i32][rng.range(0, 1) as usize],
            _ => match rng.range(0, 3) {
                0 => -E as i32,
                1 => E as i32,
                _ => rng.range(-E, E),
            },
        })
        .collect()
}

fn compare(
    a: &dyn Engine,
    b: &dyn Engine,
    net: &Net,
    inputs: &[&[i32]],
    refs: &[Option<&[i32]>],
    h: usize,
    w: usize,
    what: &str,
) {
    let pa = a.run(net, inputs, refs, h, w);
    let pb = b.run(net, inputs, refs, h, w);
    assert_eq!((pa.c, pa.h, pa.w), (pb.c, pb.h, pb.w), "{what}: shapes");
    if let Some(i) = pa.data.iter().zip(&pb.data).position(|(x, y)| x != y) {
        panic!(
            "{what}: {} and {} differ at value {i}: {} vs {}",
            a.name(),
            b.name(),
            pa.data[i],
            pb.data[i]
        );
    }
}

/// Every net of the default model on random planes, sizes down to 1×1,
/// against the CPU engine (and the float64 reference on the small sizes).
fn random_nets_agree(engine: &dyn Engine, sizes: &[(usize, usize)]) {
    let model = default_model();
    let mut rng = Rng(0x7c4a_11d3_9e37_79b9);
    for net in all_nets(&model) {
        for &(h, w) in sizes {
            for regime in 0..4 {
                let n = h * w;
                let ins: Vec<Vec<i32>> =
                    (0..net.cin()).map(|_| plane(&mut rng, n, regime)).collect();
                let rfs: Vec<Vec<i32>> = (0..net.cin())
                    .map(|_| plane(&mut rng, n, (regime + 1) % 4))
                    .collect();
                let inputs: Vec<&[i32]> = ins.iter().map(|v| v.as_slice()).collect();
                // Refs on all, none, and every other input channel.
                for pattern in 0..3 {
                    let refs: Vec<Option<&[i32]>> = rfs
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            (pattern == 0 || (pattern == 2 && i % 2 == 0)).then_some(r.as_slice())
                        })
                        .collect();
                    let what = format!("net {} {h}x{w} regime {regime} refs {pattern}", net.name);
                    compare(engine, &Cpu, net, &inputs, &refs, h, w, &what);
                    if n <= 64 {
                        compare(engine, &Float64Reference, net, &inputs, &refs, h, w, &what);
                    }
                }
            }
        }
    }
}

#[test]
fn random_planes_match_the_cpu_engine() {
    random_nets_agree(
        &Tch::cpu(),
        &[(1, 1), (1, 7), (5, 3), (8, 8), (17, 23), (40, 33)],
    );
}

fn corpus() -> PathBuf {
    std::env::var_os("FPACKNG_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"))
}

/// A `w × h` crop (from `(x0, y0)`) of the first 16-bit image HDU of a test
/// corpus file, as the uint16 values IDF_1 codes.
fn real_crop(file: &str, x0: usize, y0: usize, w: usize, h: usize) -> Vec<i32> {
    let path = corpus().join("test").join(file);
    let f = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set FPACKNG_CORPUS)", path.display()));
    let len = f.metadata().unwrap().len();
    let mut r = FitsReader::new(f, Limits::default(), Some(len));
    while let Some(hdu) = r.next_hdu().unwrap() {
        let axes = hdu.image_axes();
        if axes.len() != 2 || hdu.header.get_int("BITPIX") != Some(16) {
            continue;
        }
        let (nx, ny) = (axes[0], axes[1]);
        assert!(
            x0 + w <= nx && y0 + h <= ny,
            "{file}: {nx}x{ny} too small for the crop"
        );
        let Pixels::I16(v) = Pixels::from_be_bytes(PixelType::I16, hdu.data_bytes()) else {
            unreachable!()
        };
        return (y0..y0 + h)
            .flat_map(|y| (x0..x0 + w).map(move |x| (y, x)))
            .map(|(y, x)| v[y * nx + x] as i32 + 32768)
            .collect();
    }
    panic!("{file}: no 16-bit image HDU");
}

/// Level-1 nets on the 2×2 phases of a real crop, as the flow feeds them.
fn real_nets_agree(engine: &dyn Engine, px: &[i32], w: usize, h: usize) {
    let (hh, wh) = (h / 2, w / 2);
    let phase = |dy: usize, dx: usize| -> Vec<i32> {
        (0..hh)
            .flat_map(|y| (0..wh).map(move |x| (y, x)))
            .map(|(y, x)| px[(2 * y + dy) * w + 2 * x + dx])
            .collect()
    };
    let (s00, s01, s10) = (phase(0, 0), phase(0, 1), phase(1, 0));
    let model = default_model();
    for net in all_nets(&model) {
        let inputs: Vec<&[i32]> = [&s00, &s10, &s01]
            .iter()
            .take(net.cin())
            .map(|v| v.as_slice())
            .collect();
        let refs: Vec<Option<&[i32]>> = (0..net.cin()).map(|_| Some(s00.as_slice())).collect();
        compare(
            engine,
            &Cpu,
            net,
            &inputs,
            &refs,
            hh,
            wh,
            &format!("net {} on a real crop, refs", net.name),
        );
        let none: Vec<Option<&[i32]>> = vec![None; net.cin()];
        compare(
            engine,
            &Cpu,
            net,
            &inputs,
            &none,
            hh,
            wh,
            &format!("net {} on a real crop", net.name),
        );
    }
}

/// Real crops: the files and regions used below.
const CROPS: &[(&str, usize, usize, usize, usize)] = &[
    ("lco1m_sinistro_elp_fa05_amp3.fits", 200, 150, 96, 80),
    ("orion_ssdsi_m13_blue_0004.fits", 600, 400, 64, 64),
    ("hst_stis_o4sp040b0_raw_sci1.fits", 0, 0, 62, 44),
];

#[test]
fn real_frames_match_the_cpu_engine() {
    for &(file, x0, y0, w, h) in CROPS {
        let px = real_crop(file, x0, y0, w, h);
        real_nets_agree(&Tch::cpu(), &px, w, h);
    }
}

/// Encode with one engine, decode with the other, both ways: the streams
/// are identical and decode to the pixels.
fn cross_decode(a: &dyn Engine, b: &dyn Engine, px: &[i32], w: usize, h: usize, what: &str) {
    let model = default_model();
    let ea = encode_tile(&model, a, px, w, h).unwrap();
    let eb = encode_tile(&model, b, px, w, h).unwrap();
    assert!(
        ea == eb,
        "{what}: {} and {} encode differently",
        a.name(),
        b.name()
    );
    assert!(
        decode_tile(&model, b, &ea, w, h).unwrap() == px,
        "{what}: {} → {}",
        a.name(),
        b.name()
    );
    assert!(
        decode_tile(&model, a, &eb, w, h).unwrap() == px,
        "{what}: {} → {}",
        b.name(),
        a.name()
    );
}

fn cross_decode_all(engine: &dyn Engine) {
    for &(file, x0, y0, w, h) in CROPS {
        let px = real_crop(file, x0, y0, w, h);
        cross_decode(engine, &Cpu, &px, w, h, file);
    }
    // Odd sizes (edge padding) and the extremes of uint16.
    let mut rng = Rng(99);
    for &(w, h) in &[(1usize, 1usize), (13, 7), (33, 20)] {
        for pattern in 0..3 {
            let px: Vec<i32> = (0..w * h)
                .map(|i| match pattern {
                    0 => 0,
                    1 => {
                        if i % 2 == 0 {
                            0
                        } else {
                            65535
                        }
                    }
                    _ => rng.range(0, 65535),
                })
                .collect();
            cross_decode(
                engine,
                &Cpu,
                &px,
                w,
                h,
                &format!("{w}x{h} pattern {pattern}"),
            );
        }
    }
}

#[test]
fn idf_tiles_cross_decode_between_tch_cpu_and_cpu() {
    cross_decode_all(&Tch::cpu());
}

#[test]
fn cuda_and_cpu_cross_decode() {
    let Some(gpu) = Tch::cuda() else {
        eprintln!("note: libtorch sees no CUDA device ({} devices): the GPU cross-decode test did not run", Tch::cuda_device_count());
        return;
    };
    eprintln!("running on {:?}", gpu.device());
    random_nets_agree(&gpu, &[(1, 1), (5, 3), (17, 23), (40, 33)]);
    for &(file, x0, y0, w, h) in CROPS {
        real_nets_agree(&gpu, &real_crop(file, x0, y0, w, h), w, h);
    }
    cross_decode_all(&gpu);
    // And the tch CPU device against the GPU directly.
    let px = real_crop(CROPS[0].0, CROPS[0].1, CROPS[0].2, CROPS[0].3, CROPS[0].4);
    cross_decode(
        &gpu,
        &Tch::cpu(),
        &px,
        CROPS[0].3,
        CROPS[0].4,
        "tch cuda vs tch cpu",
    );
}
