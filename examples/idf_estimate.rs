//! The IDF model's own estimate of a file's coded size: the ideal number of
//! bits under the model's probabilities (what a likelihood-only paper would
//! report), computed over the same tiles `fpack-ng -n idf` uses. The
//! benchmark prints it next to the real bytes on disk, so the entropy coder's
//! overhead is visible.
//!
//!     cargo run --release --example idf_estimate -- FILE.fits [MODEL.idfm]
//!
//! Prints one line per 16-bit image HDU: `HDU n <pixels> <estimated bytes>`.

use fpackng::fits::FitsReader;
use fpackng::neural::{flow, store, Cpu};
use fpackng::pack::compress::resolve_tile_axes;
use fpackng::pack::options::Tiling;
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: idf_estimate FILE.fits [MODEL.idfm]");
        std::process::exit(2);
    };
    let model = match args.get(1) {
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
        let tile = resolve_tile_axes(&[w, hgt], &Tiling::Rows, "IDF_1").expect("tiling");
        let rows = tile[1];
        let starts: Vec<usize> = (0..hgt).step_by(rows).collect();
        let bits: f64 = starts
            .par_iter()
            .map(|&y0| {
                let th = rows.min(hgt - y0);
                flow::estimate_bits(&model, &Cpu, &px[y0 * w..(y0 + th) * w], w, th)
            })
            .sum();
        println!("HDU {n} {} {:.0}", w * hgt, bits / 8.0);
    }
}
