//! Snapshots of what users and other tools see: a compressed header, a -L
//! listing and --help. A change to any of them shows up in review as a diff
//! of tests/snapshots/*.snap (accept with `cargo insta review`, or
//! INSTA_UPDATE=always).

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fpackng-snap-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn header_text(path: &std::path::Path, hdu: usize) -> String {
    let bytes = std::fs::read(path).unwrap();
    let mut reader =
        fpackng::fits::FitsReader::new(&bytes[..], Default::default(), Some(bytes.len() as u64));
    let mut h = None;
    for _ in 0..hdu {
        h = reader.next_hdu().unwrap();
    }
    h.unwrap()
        .header
        .cards()
        .iter()
        .map(|c| c.text().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn compressed_header_and_listing() {
    let dir = temp_dir("hdr");
    let input = dir.join("uint16.fits");
    std::fs::copy(fixture("uint16.fits"), &input).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fpack-ng"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fz = dir.join("uint16.fits.fz");
    insta::assert_snapshot!("uint16_rice_header", header_text(&fz, 2));
    let listing = Command::new(env!("CARGO_BIN_EXE_fpack-ng"))
        .arg("-L")
        .arg(&fz)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout).replace(&dir.display().to_string(), "DIR");
    insta::assert_snapshot!("uint16_listing", text);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_texts() {
    insta::assert_snapshot!("fpack_help", fpack_ng_cli::fpack_help());
    insta::assert_snapshot!("funpack_help", fpack_ng_cli::funpack_help());
    insta::assert_snapshot!("recompress_help", fpack_ng_cli::recompress::help());
}
