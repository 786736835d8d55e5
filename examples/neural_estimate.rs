//! A neural codec's own estimate of a file's coded size: the ideal number of
//! bits under the model's probabilities (what a likelihood-only paper would
//! report), over the same tiles `fpack-ng -n idf` / `-n pixelcnn` use. The
//! benchmarks print it next to the real bytes on disk, so the entropy
//! coder's overhead is visible.
//!
//!     cargo run --release --example neural_estimate -- idf FILE.fits [MODEL.idfm|-] [ROWS]
//!     cargo run --release --example neural_estimate -- pcnn FILE.fits [MODEL.pcnm|-] [ROWS]
//!
//! Prints one line per 16-bit image HDU: `HDU n <pixels> <estimated bytes>`,
//! and for pcnn also `<real bytes> <encode s> <decode s>` (PCNN_1 tiles are
//! coded and decoded here, in parallel, and checked bit for bit).

use std::path::Path;
use std::time::Instant;

use fpackng::fits::FitsReader;
use fpackng::neural::pcnn::{self, Mode};
use fpackng::neural::{flow, store, Cpu};
use fpackng::pack::compress::resolve_tile_axes;
use fpackng::pack::options::Tiling;
use rayon::prelude::*;

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("{msg}");
    std::process::exit(1)
}

/// Real bytes, encode seconds and decode seconds of PCNN_1.
type Coded = Option<(usize, f64, f64)>;
/// Estimated bytes (and what [`Coded`] says) of a frame `w` wide and `h`
/// high coded in strips of `rows` rows.
type Coder<'a> = Box<dyn Fn(&[i32], usize, usize, usize) -> (f64, Coded) + 'a>;

fn strips(h: usize, rows: usize) -> Vec<(usize, usize)> {
    (0..h)
        .step_by(rows)
        .map(|y0| (y0, rows.min(h - y0)))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(codec), Some(path)) = (args.first(), args.get(1)) else {
        fail("usage: neural_estimate idf|pcnn FILE.fits [MODEL|-] [ROWS]");
    };
    let model_arg = args.get(2).filter(|m| *m != "-").map(Path::new);
    let (algorithm, coder): (&str, Coder) = match codec.as_str() {
        "idf" => {
            let m = model_arg
                .map_or_else(|| Ok(store::default_model()), store::load_file)
                .unwrap_or_else(|e| fail(e));
            let coder: Coder = Box::new(move |px, w, h, rows| {
                let bits: f64 = strips(h, rows)
                    .par_iter()
                    .map(|&(y0, th)| {
                        flow::estimate_bits(&m, &Cpu, &px[y0 * w..(y0 + th) * w], w, th)
                    })
                    .sum();
                (bits / 8.0, None)
            });
            ("IDF_1", coder)
        }
        "pcnn" => {
            let m = model_arg
                .map_or_else(|| Ok(pcnn::store::default_model()), pcnn::store::load_file)
                .unwrap_or_else(|e| fail(e));
            let coder: Coder = Box::new(move |px, w, h, rows| {
                let parts = strips(h, rows);
                let t0 = Instant::now();
                let coded: Vec<(Vec<u8>, f64)> = parts
                    .par_iter()
                    .map(|&(y0, th)| {
                        pcnn::coder::encode_tile_estimated(
                            &m,
                            &px[y0 * w..(y0 + th) * w],
                            w,
                            th,
                            Mode::Split,
                            0,
                        )
                        .unwrap_or_else(|e| fail(e))
                    })
                    .collect();
                let t_enc = t0.elapsed().as_secs_f64();
                let t1 = Instant::now();
                let back: Vec<Vec<i32>> = parts
                    .par_iter()
                    .zip(&coded)
                    .map(|(&(_, th), (b, _))| {
                        pcnn::decode_tile(&m, b, w, th, false).unwrap_or_else(|e| fail(e))
                    })
                    .collect();
                let t_dec = t1.elapsed().as_secs_f64();
                if back.concat() != px {
                    fail("PCNN_1 round trip differs");
                }
                let est = coded.iter().map(|c| c.1).sum::<f64>() / 8.0;
                (
                    est,
                    Some((coded.iter().map(|c| c.0.len()).sum(), t_enc, t_dec)),
                )
            });
            ("PCNN_1", coder)
        }
        c => fail(format!("unknown codec {c} (idf or pcnn)")),
    };
    let bytes = std::fs::read(path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
    let mut r = FitsReader::new(&bytes[..], Default::default(), Some(bytes.len() as u64));
    let mut n = 0;
    while let Some(h) = r.next_hdu().unwrap_or_else(|e| fail(e)) {
        n += 1;
        let axes = h.image_axes();
        if h.header.get_int("BITPIX") != Some(16)
            || axes.len() < 2
            || h.header.get_bool("ZIMAGE") == Some(true)
        {
            continue;
        }
        let (w, hgt) = (axes[0], axes[1..].iter().product::<usize>());
        let px: Vec<i32> = h
            .data_bytes()
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]) as i32 + 32768)
            .collect();
        let rows = match args.get(3) {
            Some(r) => r.parse().unwrap_or_else(|_| fail("ROWS must be a number")),
            None => resolve_tile_axes(&[w, hgt], &Tiling::Rows, algorithm)
                .unwrap_or_else(|e| fail(e))[1],
        };
        match coder(&px, w, hgt, rows) {
            (est, None) => println!("HDU {n} {} {est:.0}", w * hgt),
            (est, Some((real, te, td))) => {
                println!("HDU {n} {} {est:.0} {real} {te:.2} {td:.2}", w * hgt)
            }
        }
    }
}
