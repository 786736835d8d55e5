//! PCNN_1 on every 16-bit image HDU of a file, over the tiles
//! `fpack-ng -n pixelcnn` uses: the model's own estimate of the coded size,
//! the real coded size, and encode/decode times, with a bit-exact check.
//!
//!     cargo run --release --example pcnn_estimate -- FILE.fits [MODEL.pcnm] [ROWS]
//!
//! Prints one line per HDU: `HDU n <pixels> <estimated bytes> <real bytes>
//! <encode s> <decode s>`.

use std::time::Instant;

use fpackng::fits::FitsReader;
use fpackng::neural::pcnn::{coder, decode_tile, encode_tile, store, Mode};
use fpackng::pack::compress::resolve_tile_axes;
use fpackng::pack::options::Tiling;
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: pcnn_estimate FILE.fits [MODEL.pcnm|-] [ROWS]");
        std::process::exit(2);
    };
    let model = match args.get(1).filter(|m| *m != "-") {
        Some(m) => store::load_file(std::path::Path::new(m)).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        }),
        None => store::default_model(),
    };
    let bytes = std::fs::read(path).expect("readable file");
    let mut r = FitsReader::new(&bytes[..], Default::default(), Some(bytes.len() as u64));
    let mut n = 0;
    while let Some(h) = r.next_hdu().expect("valid FITS") {
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
        let rows = match args.get(2) {
            Some(r) => r.parse().expect("ROWS"),
            None => resolve_tile_axes(&[w, hgt], &Tiling::Rows, "PCNN_1").expect("tiling")[1],
        };
        let starts: Vec<usize> = (0..hgt).step_by(rows).collect();
        let t0 = Instant::now();
        let coded: Vec<(f64, Vec<u8>)> = starts
            .par_iter()
            .map(|&y0| {
                let th = rows.min(hgt - y0);
                let tile = &px[y0 * w..(y0 + th) * w];
                let bytes = encode_tile(&model, tile, w, th, Mode::Split).expect("encode");
                let dists = coder::predict(&model, tile, w, th);
                let est = coder::estimate_bits(&dists, tile, Mode::Split, bytes[2] as i8 as i32);
                (est, bytes)
            })
            .collect();
        let t_enc = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let back: Vec<Vec<i32>> = starts
            .par_iter()
            .zip(&coded)
            .map(|(&y0, (_, b))| {
                decode_tile(&model, b, w, rows.min(hgt - y0), false).expect("decode")
            })
            .collect();
        let t_dec = t1.elapsed().as_secs_f64();
        assert_eq!(back.concat(), px, "round trip");
        let est: f64 = coded.iter().map(|c| c.0).sum::<f64>() / 8.0;
        let real: usize = coded.iter().map(|c| c.1.len()).sum();
        println!("HDU {n} {} {est:.0} {real} {t_enc:.2} {t_dec:.2}", w * hgt);
    }
}
