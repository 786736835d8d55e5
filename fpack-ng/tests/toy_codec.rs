//! Acceptance test of "codecs own their behaviour" (issue 16, item 4): the
//! toy codec TOY_1 (`src/codec/toy.rs`, behind the `test-codec` feature) is
//! one module and one registry line, and yet every path of the command line
//! reaches it: `-L` lists it, `--codec` (by ZCMPTYPE and by short name)
//! compresses with it, `-v` and `-L` name it in files, `-T` compares it,
//! funpack-ng restores its files bit for bit, CUBE_1 takes it as inner codec
//! and `fpack-ng recompress --to toy` re-encodes a tree with it. If any of
//! these needed to know a codec by name, this test would fail until someone
//! edited code outside the toy module.
//!
//! Run with `cargo test -p fpack-ng --features test-codec --test toy_codec`.
#![cfg(feature = "test-codec")]

mod roundtrip_common;

use std::path::Path;
use std::process::Output;

use roundtrip_common::{fixture, fpack, funpack, scratch};

fn run(tool: &str, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = if tool == "fpack-ng" {
        fpack()
    } else {
        funpack()
    };
    cmd.current_dir(dir).args(args).output().unwrap()
}

/// Runs and requires success; returns standard output.
fn ok(tool: &str, dir: &Path, args: &[&str]) -> String {
    let out = run(tool, dir, args);
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every HDU's number, axes and data bytes.
fn hdus(path: &Path) -> Vec<(usize, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut r =
        fpackng::fits::FitsReader::new(&bytes[..], Default::default(), Some(bytes.len() as u64));
    let mut out = Vec::new();
    while let Some(h) = r.next_hdu().unwrap() {
        out.push((h.number, h.image_axes(), h.data_bytes().to_vec()));
    }
    out
}

/// The ZCMPTYPE of every compressed HDU of a file.
fn zcmptypes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut r =
        fpackng::fits::FitsReader::new(&bytes[..], Default::default(), Some(bytes.len() as u64));
    let mut out = Vec::new();
    while let Some(h) = r.next_hdu().unwrap() {
        if let Some(z) = h.header.get_string("ZCMPTYPE") {
            out.push(z.trim().to_string());
        }
    }
    out
}

#[test]
fn listed_without_files() {
    let dir = scratch("list");
    let listing = ok("fpack-ng", &dir, &["-L"]);
    let line = listing
        .lines()
        .find(|l| l.starts_with("TOY_1"))
        .unwrap_or_else(|| panic!("TOY_1 not in -L:\n{listing}"));
    assert!(line.contains("toy") && line.contains("new"), "{line}");
}

#[test]
fn compress_list_verbose_and_restore_bit_exactly() {
    let dir = scratch("roundtrip");
    for (name, codec) in [
        ("bitpix16.fits", "TOY_1"),
        ("uint16.fits", "toy"),
        ("float32.fits", "toy"),
        ("bitpix64.fits", "TOY_1"),
        ("mef_tables.fits", "toy"),
    ] {
        std::fs::copy(fixture(name), dir.join(name)).unwrap();
        let packed = format!("{name}.fz");
        let verbose = ok("fpack-ng", &dir, &["-v", "--codec", codec, name]);
        assert!(verbose.contains("TOY_1"), "-v of {name}:\n{verbose}");
        assert!(!verbose.contains("LOSSY"), "-v of {name}:\n{verbose}");
        let types = zcmptypes(&dir.join(&packed));
        assert!(
            !types.is_empty() && types.iter().all(|t| t == "TOY_1"),
            "{name}: {types:?}"
        );
        let listing = ok("fpack-ng", &dir, &["-L", &packed]);
        assert!(
            listing.contains("tiled TOY_1"),
            "-L of {packed}:\n{listing}"
        );
        let back = format!("back_{name}");
        ok("funpack-ng", &dir, &["-O", &back, &packed]);
        assert_eq!(
            hdus(&dir.join(&back)),
            hdus(&dir.join(name)),
            "{name} did not come back bit for bit"
        );
    }
}

#[test]
fn compared_by_test_mode() {
    let dir = scratch("compare");
    std::fs::copy(fixture("bitpix16.fits"), dir.join("a.fits")).unwrap();
    let table = ok("fpack-ng", &dir, &["-T", "a.fits"]);
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("TOY_1 "))
        .unwrap_or_else(|| panic!("no TOY_1 row in -T:\n{table}"));
    assert!(row.trim_end().ends_with("Yes"), "{row}");
}

#[test]
fn inner_codec_of_cube() {
    let dir = scratch("cube");
    std::fs::copy(fixture("cube3d.fits"), dir.join("c.fits")).unwrap();
    ok(
        "fpack-ng",
        &dir,
        &["--codec", "toy", "--cube", "on", "c.fits"],
    );
    let listing = ok("fpack-ng", &dir, &["-L", "c.fits.fz"]);
    assert!(
        listing.contains("CUBE_1(inner=TOY_1"),
        "-L of the cube:\n{listing}"
    );
    ok("funpack-ng", &dir, &["-O", "back.fits", "c.fits.fz"]);
    assert_eq!(hdus(&dir.join("back.fits")), hdus(&dir.join("c.fits")));
}

#[test]
fn recompress_to_toy() {
    let dir = scratch("recompress");
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    // TOY_1 only shrinks smooth images, and recompress keeps only smaller
    // files: a constant image, plain and as an uncompressed (-d) .fz.
    std::fs::copy(fixture("flat_constant.fits"), tree.join("plain.fits")).unwrap();
    std::fs::copy(fixture("flat_constant.fits"), dir.join("tiled.fits")).unwrap();
    ok(
        "fpack-ng",
        &dir,
        &["-d", "-O", "tree/tiled.fits.fz", "tiled.fits"],
    );
    assert_eq!(zcmptypes(&tree.join("tiled.fits.fz")), ["NOCOMPRESS"]);
    ok(
        "fpack-ng",
        &dir,
        &[
            "recompress",
            "--to",
            "toy",
            "--quiet",
            "--journal",
            "job.journal",
            "tree",
        ],
    );
    for packed in ["plain.fits.fz", "tiled.fits.fz"] {
        let packed = tree.join(packed);
        assert_eq!(zcmptypes(&packed), ["TOY_1"], "{}", packed.display());
        ok(
            "funpack-ng",
            &dir,
            &["-O", "back.fits", packed.to_str().unwrap()],
        );
        assert_eq!(
            hdus(&dir.join("back.fits")),
            hdus(&fixture("flat_constant.fits"))
        );
        std::fs::remove_file(dir.join("back.fits")).unwrap();
    }
}
