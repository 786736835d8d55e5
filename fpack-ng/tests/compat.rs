//! Frozen compatibility files: tests/compat/*.fz were written once by
//! fpack-ng, one per non-standard algorithm and format version, and are
//! never regenerated. tests/compat/SHA256SUMS pins the SHA-256 of the pixels
//! each must decode to (the source fixture's data units, big-endian, as
//! FITS stores them). A change to a coder under an unchanged version
//! keyword fails here; a new format gets a new version and new files, and
//! the old ones must keep decoding. See tests/compat/README.md.

mod roundtrip_common;

use std::path::{Path, PathBuf};

use fpackng::fits::FitsReader;
use roundtrip_common::*;
use sha2::{Digest, Sha256};

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/compat")
}

/// (pinned SHA-256, file name) of every frozen file.
fn pinned() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(compat_dir().join("SHA256SUMS")).unwrap();
    let v: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (sha, name) = l
                .split_once("  ")
                .expect("SHA256SUMS line: <sha256>  <file>");
            (sha.to_string(), name.to_string())
        })
        .collect();
    assert!(v.len() >= 5, "SHA256SUMS lists {} files", v.len());
    v
}

/// SHA-256 of the data units of every image HDU with pixels.
fn pixel_sha(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let mut r = FitsReader::new(&bytes[..], Default::default(), Some(bytes.len() as u64));
    let mut h = Sha256::new();
    while let Some(hdu) = r.next_hdu().unwrap() {
        if !hdu.image_axes().is_empty() && hdu.header.get_bool("ZIMAGE") != Some(true) {
            h.update(hdu.data_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn unpack(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let _ = std::fs::remove_file(out);
    funpack()
        .args(extra)
        .arg("-O")
        .arg(out)
        .arg(input)
        .output()
        .unwrap()
}

/// The file's version keyword (its ZNAMEn value ending in VER).
fn version_keyword(bytes: &[u8]) -> String {
    for card in bytes.chunks(80).take(2000) {
        let card = String::from_utf8_lossy(card);
        if card.starts_with("ZNAME") {
            // ZNAMEn  = 'JXLVER  '  / comment: the text between the quotes.
            let value = card.split('\'').nth(1).unwrap_or("").trim().to_string();
            if value.ends_with("VER") {
                return value;
            }
        }
    }
    panic!("no version keyword");
}

#[test]
fn frozen_files_decode_to_their_pinned_pixels() {
    let work = scratch("compat-decode");
    for (sha, name) in pinned() {
        let out = work.join(format!("{name}.fits"));
        let r = unpack(&compat_dir().join(&name), &out, &[]);
        assert!(
            r.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert_eq!(pixel_sha(&out), sha, "{name} decodes to other pixels");
    }
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn a_changed_tile_byte_is_detected_never_decoded_to_other_pixels() {
    let work = scratch("compat-damage");
    for (sha, name) in pinned() {
        let good = std::fs::read(compat_dir().join(&name)).unwrap();
        let (heap, len) = heap_of_first_table(&good);
        for frac in [0.2, 0.5, 0.8] {
            let mut bad = good.clone();
            bad[heap + (len as f64 * frac) as usize] ^= 0x04;
            let bad_path = work.join(&name);
            std::fs::write(&bad_path, &bad).unwrap();
            let out = work.join("out.fits");
            // funpack-ng checks DATASUM: every format is covered.
            let r = unpack(&bad_path, &out, &[]);
            assert!(!r.status.success(), "{name}: a changed byte decoded");
            assert!(!out.exists(), "{name}: a failed decode left its output");
            // Without that check, a format with a tile checksum still
            // refuses; one without may decode, but then never to the pinned
            // pixels unnoticed by the first check above.
            let r = unpack(&bad_path, &out, &["--no-verify-checksums"]);
            let has_tile_crc = name.starts_with("idf_1")
                || name.starts_with("pcnn_1")
                || name.starts_with("mixpred_1");
            if has_tile_crc {
                assert!(
                    !r.status.success(),
                    "{name}: the tile checksum missed a changed byte"
                );
            } else if r.status.success() {
                let _ = pixel_sha(&out) == sha;
            }
        }
    }
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn a_file_without_its_version_keyword_is_refused() {
    let work = scratch("compat-version");
    for (_, name) in pinned() {
        let mut bytes = std::fs::read(compat_dir().join(&name)).unwrap();
        let key = version_keyword(&bytes);
        let quoted = format!("'{key}");
        let pos = bytes
            .windows(quoted.len())
            .position(|w| w == quoted.as_bytes())
            .unwrap();
        // Same length, another name: the version parameter is gone.
        bytes[pos + 1..pos + 1 + key.len()].copy_from_slice("X".repeat(key.len()).as_bytes());
        let path = work.join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let out = work.join("out.fits");
        let r = unpack(&path, &out, &["--no-verify-checksums"]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{name} without {key} decoded");
        assert!(
            err.contains(&key),
            "{name}: the error does not name {key}: {err}"
        );
        assert!(!out.exists());
    }
    std::fs::remove_dir_all(&work).unwrap();
}
