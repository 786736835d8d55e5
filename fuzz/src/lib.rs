//! Bodies of the fuzz targets. Each must return normally for every input:
//! errors are fine, panics, hangs and huge allocations are bugs.
//!
//! Running (not part of CI; this directory is a workspace of its own), on
//! stable Rust, no nightly and no cargo-fuzz needed:
//!
//! ```text
//! fuzz/run-stable.sh decode 1200       # target, seconds
//! fuzz/run-stable.sh codec_tile 1200
//! ```
//!
//! The script builds the target with the coverage flags cargo-fuzz would
//! pass with `--sanitizer none` (`-Cpasses=sancov-module` and
//! `-Cllvm-args=-sanitizer-coverage-*`, all stable codegen options), plus
//! `--cfg fuzzing -Cdebug-assertions -Coverflow-checks`, for
//! `--target <host>` so that build scripts stay uninstrumented; libfuzzer-sys
//! builds libFuzzer itself. There is no AddressSanitizer (`-Zsanitizer` is
//! nightly-only; the library is `#![forbid(unsafe_code)]`): panics, hangs
//! (`-timeout=10`) and memory blow-ups (`-rss_limit_mb=2048`) are what is
//! caught. It seeds a corpus in `~/.cache/fpack-ng/fuzz-corpus/TARGET` from
//! the fixtures, `tests/compat/*.fz` and small .fz files made by Debian's
//! fpack and fpack-ng (for `codec_tile`: their tiles, with the 4 selector
//! bytes in front), and leaves findings in `~/.cache/fpack-ng/fuzz-artifacts`.
//! A finding replays with `BIN ARTIFACT` (the binary is in
//! `~/.cache/fpack-ng/target-fuzz/<host>/release/`) and shrinks with
//! `BIN -minimize_crash=1 -runs=10000 ARTIFACT`.
//! With a nightly toolchain, `cargo +nightly fuzz run decode` works too.
//!
//! A panic that the library catches itself is not a finding: the JPEG-XL
//! decoder (jxl-oxide) runs inside `catch_unwind` in `src/codec/jxl.rs`, and
//! libFuzzer's panic hook would abort on it before that could turn it into
//! an error. So each body runs under [`escaping_panics`]: only a panic that
//! leaves the library crashes the run. (The first run on stable found one
//! such caught panic: an integer overflow in jxl-oxide's patch parsing,
//! which release builds, without overflow checks, report as "too many
//! patches" and builds with them report as a caught panic, both errors.)
//!
//! `cargo test` here runs both bodies on a handful of seeds.

use fpackng::codec::{EncodeOptions, TileSpec, REGISTRY};
use fpackng::pack::{decompress_stream, list, DecompressOptions, Input};
use fpackng::tile::PixelType;
use fpackng::Limits;

/// Limits small enough that a fuzzer's memory cap is never the reason a
/// run dies: a header asking for more must give an error.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_hdu_bytes: 64 << 20,
        max_header_cards: 10_000,
        max_tile_pixels: 1 << 22,
        max_tiles: 1 << 20,
        max_axes: 999,
    }
}

/// Run `f` with a panic hook that only remembers the message (panics the
/// library catches itself are not findings); a panic that escapes `f` is
/// raised again with that message, through the previous hook (libFuzzer's,
/// which aborts).
pub fn escaping_panics<R>(f: impl FnOnce() -> R) -> R {
    use std::sync::{Arc, Mutex};
    let last = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&last);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut m) = seen.lock() {
            *m = info.to_string();
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    match result {
        Ok(r) => r,
        Err(_) => {
            let message = last.lock().map(|m| m.clone()).unwrap_or_default();
            panic!("panic escaped the library: {message}")
        }
    }
}

/// Decode `data` as a file (funpack's path), and list it (`-L`'s path).
pub fn decode_file(data: &[u8]) {
    escaping_panics(|| decode_file_inner(data))
}

fn decode_file_inner(data: &[u8]) {
    let opts = DecompressOptions {
        limits: fuzz_limits(),
        ..Default::default()
    };
    let _ = decompress_stream(Input::Bytes(data), std::io::sink(), &opts);
    let opts = DecompressOptions {
        limits: fuzz_limits(),
        verify_checksums: false,
        ..Default::default()
    };
    let _ = decompress_stream(Input::Bytes(data), std::io::sink(), &opts);
    let _ = list::list(Input::Bytes(data), fuzz_limits(), &Default::default());
}

/// The first 4 bytes choose the codec, the pixel type and the tile shape;
/// the rest is the compressed tile. A successful decode must return exactly
/// the tile's pixel count and type.
pub fn decode_tile(data: &[u8]) {
    escaping_panics(|| decode_tile_inner(data))
}

fn decode_tile_inner(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let codec = REGISTRY[data[0] as usize % REGISTRY.len()];
    let pixel_type = PixelType::ALL[data[1] as usize % PixelType::ALL.len()];
    let width = 1 + data[2] as usize % 64;
    let height = 1 + data[3] as usize % 16;
    let shape = [width, height];
    let params = codec.encode_params(pixel_type, &EncodeOptions::default());
    let spec = TileSpec {
        shape: &shape,
        pixel_type,
        params: &params,
        context: Default::default(),
    };
    let decoded = codec.decode(&data[4..], &spec);
    if let Ok(p) = &decoded {
        assert_eq!(p.len(), spec.len(), "{}: wrong pixel count", codec.id());
        assert_eq!(
            p.pixel_type(),
            pixel_type,
            "{}: wrong pixel type",
            codec.id()
        );
    }
    // Decoding straight into FITS bytes must agree with decode: the same
    // bytes when both succeed, an error when decode fails.
    let mut out = vec![0u8; spec.len() * pixel_type.size()];
    if let Ok(true) = codec.decode_be_into(&data[4..], &spec, &mut out) {
        match &decoded {
            Ok(p) => assert!(
                p.to_be_bytes() == out,
                "{}: decode_be_into and decode differ",
                codec.id()
            ),
            Err(e) => panic!(
                "{}: decode_be_into succeeded, decode failed: {e}",
                codec.id()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![0; 4],
            vec![0xff; 100],
            b"SIMPLE  =".to_vec(),
        ];
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        for name in ["uint16.fits", "mef_tables.fits", "tiny.fits"] {
            if let Ok(b) = std::fs::read(fixtures.join(name)) {
                v.push(b[..b.len() / 2].to_vec());
                v.push(b);
            }
        }
        let mut x: u64 = 12345;
        for n in [10usize, 100, 3000, 6000] {
            let mut b = Vec::with_capacity(n);
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push(x as u8);
            }
            v.push(b);
        }
        v
    }

    #[test]
    fn decode_file_survives_seeds() {
        for s in seeds() {
            decode_file(&s);
        }
    }

    #[test]
    fn decode_tile_survives_seeds() {
        for s in seeds() {
            for c in 0..REGISTRY.len() as u8 {
                let mut d = s.clone();
                d.splice(0..0, [c, s.len() as u8, 7, 3]);
                decode_tile(&d);
            }
        }
    }
}
