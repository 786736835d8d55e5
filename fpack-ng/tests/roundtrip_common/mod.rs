//! Round trips shared by the codec tests: every corpus frame and every
//! fixture through `fpack-ng FLAGS` and `funpack-ng` must come back bit for
//! bit (images the codec cannot code fall back to a standard codec and must
//! come back too), with odd tile shapes as well as the default tiling.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use fpackng::fits::FitsReader;

pub fn corpus() -> PathBuf {
    std::env::var_os("FPACKNG_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
}

pub fn fits_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "fits"));
    v.sort();
    v
}

/// (BITPIX, axes, data bytes) of every HDU with pixels.
pub fn images(path: &Path) -> Vec<(i64, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut r = FitsReader::new(&bytes[..], Default::default(), Some(bytes.len() as u64));
    let mut out = Vec::new();
    while let Some(h) = r.next_hdu().unwrap() {
        let axes = h.image_axes();
        if h.header.get_bool("ZIMAGE") != Some(true)
            && !axes.is_empty()
            && h.header
                .get_string("XTENSION")
                .is_none_or(|x| x.trim() == "IMAGE")
        {
            out.push((
                h.header.get_int("BITPIX").unwrap(),
                axes,
                h.data_bytes().to_vec(),
            ));
        }
    }
    out
}

pub fn round_trip(src: &Path, flags: &[&str], work: &Path) -> Result<String, String> {
    let name = src.file_name().unwrap().to_string_lossy().into_owned();
    let fz = work.join(format!("{name}.fz"));
    let back = work.join(format!("{name}.back"));
    let _ = std::fs::remove_file(&fz);
    let _ = std::fs::remove_file(&back);
    let out = Command::new(env!("CARGO_BIN_EXE_fpack-ng"))
        .args(flags)
        .arg("-O")
        .arg(&fz)
        .arg(src)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!(
            "{name} {flags:?}: fpack-ng failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let listing = Command::new(env!("CARGO_BIN_EXE_fpack-ng"))
        .arg("-L")
        .arg(&fz)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_funpack-ng"))
        .arg("-O")
        .arg(&back)
        .arg(&fz)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!(
            "{name} {flags:?}: funpack-ng failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if images(src) != images(&back) {
        return Err(format!(
            "{name} {flags:?}: pixels differ after the round trip"
        ));
    }
    Ok(listing)
}

/// Every corpus frame and fixture through `fpack-ng FLAGS`, at least 20 HDUs
/// of which must be coded as `zcmptype`, and odd tile shapes on fixtures.
pub fn corpus_and_fixtures_round_trip(tag: &str, flags: &[&str], zcmptype: &str) {
    let work = std::env::temp_dir().join(format!("fpackng-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let mut files = fits_in(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures"));
    let corpus = corpus();
    for sub in ["train", "test", "cubes"] {
        files.extend(fits_in(&corpus.join(sub)));
    }
    if !corpus.exists() && std::env::var_os("CI").is_some() {
        panic!("corpus not found at {}", corpus.display());
    }
    let mut failures = Vec::new();
    let mut coded_hdus = 0;
    for f in &files {
        match round_trip(f, flags, &work) {
            Ok(listing) => coded_hdus += listing.matches(zcmptype).count(),
            Err(e) => failures.push(e),
        }
    }
    // Odd tile shapes: one row, one column, 3x5, and tiles larger than the image.
    for fixture in [
        "uint16.fits",
        "bitpix16.fits",
        "bitpix8.fits",
        "cube3d.fits",
        "tiny.fits",
        "onecol.fits",
        "onerow.fits",
    ] {
        let f = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures")
            .join(fixture);
        for tiles in ["1,1000", "1000,1", "3,5", "100000,100000"] {
            let with_tiles: Vec<&str> = flags.iter().copied().chain(["-t", tiles]).collect();
            if let Err(e) = round_trip(&f, &with_tiles, &work) {
                failures.push(e);
            }
        }
    }
    std::fs::remove_dir_all(&work).unwrap();
    assert!(
        coded_hdus > 20,
        "only {coded_hdus} HDUs were coded as {zcmptype}"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
