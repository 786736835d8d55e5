//! fpack's header directives (FZALGOR, FZTILE, FZQVALUE, ...) override the
//! command line for the HDU that carries them, as in fpack.

use std::path::{Path, PathBuf};
use std::process::Command;

use fpackng::fits::{Card, FitsReader, FitsWriter};
use fpackng::pack::decompress::CompressedImageInfo;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// Copy a single-image fixture, adding `cards` to its header.
fn with_cards(src: &str, cards: &[Card], dst: &Path) {
    let bytes = std::fs::read(fixture(src)).unwrap();
    let mut reader = FitsReader::new(&bytes[..], Default::default(), Some(bytes.len() as u64));
    let hdu = reader.next_hdu().unwrap().unwrap();
    let mut header = hdu.header.clone();
    for c in cards {
        header.push(c.clone());
    }
    let mut out = FitsWriter::new(Vec::new());
    out.write(&header, hdu.data_bytes()).unwrap();
    std::fs::write(dst, out.into_inner()).unwrap();
}

fn compressed_info(path: &Path) -> Option<CompressedImageInfo> {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = FitsReader::new(&bytes[..], Default::default(), Some(bytes.len() as u64));
    while let Some(hdu) = reader.next_hdu().unwrap() {
        if hdu.header.get_bool("ZIMAGE") == Some(true) {
            return Some(CompressedImageInfo::parse(&hdu.header, &Default::default()).unwrap());
        }
    }
    None
}

fn fpack(dir: &Path, args: &[&str], file: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_fpack-ng"))
        .current_dir(dir)
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn header_directives_override_flags() {
    let dir = std::env::temp_dir().join(format!("fpackng-directives-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    with_cards(
        "bitpix16.fits",
        &[
            Card::new_string("FZALGOR", "GZIP_2", None),
            Card::new_string("FZTILE", "(16,8)", None),
        ],
        &dir.join("a.fits"),
    );
    fpack(&dir, &["-r"], "a.fits");
    let info = compressed_info(&dir.join("a.fits.fz")).unwrap();
    assert_eq!(info.algorithm, "GZIP_2");
    assert_eq!(info.tile_axes, vec![16, 8]);

    with_cards(
        "bitpix16.fits",
        &[Card::new_string("FZALGOR", "NONE", None)],
        &dir.join("b.fits"),
    );
    fpack(&dir, &[], "b.fits");
    assert!(
        compressed_info(&dir.join("b.fits.fz")).is_none(),
        "FZALGOR='NONE' must leave the image uncompressed"
    );

    with_cards(
        "float32.fits",
        &[
            Card::new_float("FZQVALUE", 8.0, None),
            Card::new_string("FZQMETHD", "SUBTRACTIVE_DITHER_2", None),
        ],
        &dir.join("c.fits"),
    );
    fpack(&dir, &[], "c.fits");
    let info = compressed_info(&dir.join("c.fits.fz")).unwrap();
    assert_eq!(
        info.quantize,
        Some(fpackng::tile::quantize::QuantizeMethod::SubtractiveDither2)
    );
    assert_eq!(
        info.algorithm, "RICE_ONE",
        "dither 2 with Rice is marked RICE_ONE as cfitsio does"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}
