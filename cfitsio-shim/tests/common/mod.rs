//! Shared by the shim's integration tests: where the built library is, the
//! codecs and corpus frames to test, and pixel comparison helpers.
#![allow(dead_code)]

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;

use fpackng::fits::{FitsReader, HduKind};
use fpackng::pack::file::InputAfter;
use fpackng::pack::options::CubeMode;
use fpackng::pack::{compress_file, CompressOptions, Tiling};
use fpackng::Limits;

/// The new codecs (not known to cfitsio or astropy) every interop test runs
/// over: add a codec here when it lands in the registry.
pub const NEW_CODECS: &[&str] = &["JXL_1", "IDF_1", "PCNN_1", "CUBE_1"];

/// A corpus file (relative to the corpus directory) and a tile shape.
pub type Frame = (&'static str, &'static [usize]);

/// 2-D corpus frames: tiles cut each image several times in both axes, so
/// sections cross tile edges.
const IMAGES: &[Frame] = &[
    ("test/eso_ntt_emmi_sep_image.fits", &[64, 50]),
    ("test/hst_stis_o4sp040b0_raw_sci1.fits", &[20, 17]),
    ("test/hst_stis_ocoa03q2q_raw.fits", &[40, 33]),
    ("test/lco1m_sinistro_elp_fa05_amp3.fits", &[128, 100]),
];

/// A JWST ramp (128x128x2x6, uint16) in several tilings, for codecs that
/// code planes together (CUBE_1's tiles span the prediction axis).
const CUBES: &[Frame] = &[
    (
        "cubes/jwst_fgs_acq1_jw01019001001_uncal.fits",
        &[64, 64, 2, 6],
    ),
    (
        "cubes/jwst_fgs_acq1_jw01019001001_uncal.fits",
        &[50, 40, 2, 3],
    ),
    (
        "cubes/jwst_fgs_acq1_jw01019001001_uncal.fits",
        &[128, 128, 2, 1],
    ),
];

/// The files each new codec is tested on.
pub fn frames(codec: &str) -> &'static [Frame] {
    if codec == "CUBE_1" {
        CUBES
    } else {
        IMAGES
    }
}

/// A file name for outputs made from corpus file `name`.
pub fn stem(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// target/<profile>: the test executable lives in target/<profile>/deps.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The cdylib built with this test (cargo builds both crate types; it
/// copies the library up from deps/ only when it is a requested target).
pub fn shim_library() -> PathBuf {
    let dir = target_dir();
    [
        dir.join("libfpackng_shim.so"),
        dir.join("deps/libfpackng_shim.so"),
    ]
    .into_iter()
    // The newer of the two: a copy beside the binaries may be left over
    // from an earlier `cargo build`.
    .filter(|p| p.is_file())
    .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
    .unwrap_or_else(|| panic!("libfpackng_shim.so was not built in {}", dir.display()))
}

pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("FPACKNG_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    }
}

pub fn frame(name: &str) -> PathBuf {
    let path = corpus_dir().join(name);
    assert!(path.is_file(), "corpus frame {} missing", path.display());
    path
}

pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fpackng-shim-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compresses `input` with `codec` and explicit tiles into `output`.
pub fn compress(input: &Path, output: &Path, codec: &str, tile: &[usize]) {
    let options = CompressOptions {
        algorithm: codec.to_string(),
        tiling: Tiling::Axes(tile.to_vec()),
        // The library's default may pick CUBE_1 for cubes on its own; a
        // test asking for another codec must get that codec.
        cube: if codec == "CUBE_1" {
            CubeMode::default()
        } else {
            CubeMode::Off
        },
        ..CompressOptions::default()
    };
    compress_file(input, output, &options, true, InputAfter::Keep)
        .unwrap_or_else(|e| panic!("compressing {} with {codec}: {e}", input.display()));
}

/// Every image data unit of a file, compressed ones included as their
/// tables: (HDU kind, header NAXISn/BITPIX/BZERO/BSCALE, data bytes).
pub fn image_units(path: &Path) -> Vec<(Vec<usize>, i64, Vec<u8>)> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let len = file.metadata().unwrap().len();
    let mut reader = FitsReader::new(BufReader::new(file), Limits::default(), Some(len));
    let mut out = Vec::new();
    while let Some(hdu) = reader.next_hdu().unwrap() {
        if hdu.kind() == HduKind::Image && !hdu.image_axes().is_empty() {
            let bitpix = hdu.header.get_int("BITPIX").unwrap();
            out.push((hdu.image_axes(), bitpix, hdu.data_bytes().to_vec()));
        }
    }
    out
}

/// The images of `restored` are bit-identical to those of `original`.
pub fn assert_same_images(original: &Path, restored: &Path) {
    let a = image_units(original);
    let b = image_units(restored);
    assert!(!a.is_empty(), "{} has no image", original.display());
    assert_eq!(
        a.len(),
        b.len(),
        "number of images in {}",
        restored.display()
    );
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            (&x.0, x.1),
            (&y.0, y.1),
            "image {i} shape/BITPIX in {}",
            restored.display()
        );
        assert!(
            x.2 == y.2,
            "image {i} pixels differ in {}",
            restored.display()
        );
    }
}

/// Runs a command, returning (success, stdout, stderr).
pub fn run(command: &mut Command) -> (bool, String, String) {
    let out = command.output().unwrap_or_else(|e| {
        panic!("cannot run {command:?}: {e} (scripts/install-deps.sh installs it)")
    });
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Copies of the compressed file `packed`, each with 48 bytes of its heap
/// flipped at 0%, 30%, 55% and 90% of the way through, written beside it
/// as `{tag}-damaged{k}.fz`.
pub fn damaged_copies(packed: &Path, tag: &str) -> Vec<PathBuf> {
    let heap = heap_range(packed);
    let pristine = std::fs::read(packed).unwrap();
    let dir = packed.parent().unwrap();
    [0.0, 0.3, 0.55, 0.9]
        .iter()
        .enumerate()
        .map(|(k, fraction)| {
            let mut bytes = pristine.clone();
            let at = heap.start + ((heap.len() - 64) as f64 * fraction) as usize;
            for b in &mut bytes[at..at + 48] {
                *b ^= 0xA7;
            }
            let damaged = dir.join(format!("{tag}-damaged{k}.fz"));
            std::fs::write(&damaged, &bytes).unwrap();
            damaged
        })
        .collect()
}

/// Byte range of the heap of the first compressed HDU.
pub fn heap_range(path: &Path) -> std::ops::Range<usize> {
    let file = File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let mut reader = FitsReader::new(BufReader::new(file), Default::default(), Some(len));
    let mut offset = 0;
    while let Some(hdu) = reader.next_hdu().unwrap() {
        offset += hdu.raw_header.len();
        if hdu.kind() == HduKind::CompressedImage {
            let table = (hdu.header.get_int("NAXIS1").unwrap()
                * hdu.header.get_int("NAXIS2").unwrap()) as usize;
            let heap_start = hdu.header.get_int("THEAP").map_or(table, |t| t as usize);
            let heap_len = hdu.header.get_int("PCOUNT").unwrap() as usize;
            return offset + heap_start..offset + heap_start + heap_len;
        }
        offset += hdu.data.len();
    }
    panic!("no compressed HDU in {}", path.display())
}
