//! `fpack-ng shim`: finds libfpackng_shim.so, prints the LD_PRELOAD line,
//! and runs Debian's funpack with it on a JXL_1 file (pixels identical).

use std::path::{Path, PathBuf};
use std::process::Command;

const FPACK_NG: &str = env!("CARGO_BIN_EXE_fpack-ng");
const FUNPACK_NG: &str = env!("CARGO_BIN_EXE_funpack-ng");

fn frame() -> PathBuf {
    let corpus = std::env::var_os("FPACKNG_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    corpus.join("test/lco1m_sinistro_elp_fa05_amp3.fits")
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fpackng-cli-shim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn print_and_path_name_the_built_library() {
    let out = Command::new(FPACK_NG)
        .args(["shim", "--path"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(
        path.is_file() && path.ends_with("libfpackng_shim.so"),
        "{}",
        path.display()
    );

    let out = Command::new(FPACK_NG)
        .args(["shim", "--print"])
        .env("LD_PRELOAD", "")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("LD_PRELOAD={}\n", path.display())
    );

    let out = Command::new(FPACK_NG)
        .args(["shim", "--path"])
        .env("FPACKNG_SHIM_LIB", "/nonexistent/lib.so")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FPACKNG_SHIM_LIB"));
}

#[test]
fn shim_runs_debian_funpack_on_jxl_and_mixpred_files() {
    let dir = scratch();
    for codec in ["--jxl", "--mix"] {
        let packed = dir.join("x.fz");
        for f in ["x.fz", "funpack.fits", "ng.fits"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let status = Command::new(FPACK_NG)
            .args([codec, "-O"])
            .arg(&packed)
            .arg(frame())
            .status()
            .unwrap();
        assert!(status.success());
        let by_funpack = dir.join("funpack.fits");
        let out = Command::new(FPACK_NG)
            .args(["shim", "--", "funpack", "-O"])
            .arg(&by_funpack)
            .arg(&packed)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let by_ng = dir.join("ng.fits");
        let status = Command::new(FUNPACK_NG)
            .arg("-O")
            .arg(&by_ng)
            .arg(&packed)
            .status()
            .unwrap();
        assert!(status.success());
        // funpack-ng and the shimmed funpack restore the same file as the
        // original frame: compare the data units (headers differ in comments).
        let original = std::fs::read(frame()).unwrap();
        let a = std::fs::read(&by_funpack).unwrap();
        let b = std::fs::read(&by_ng).unwrap();
        assert_eq!(fpackng_image(&a), fpackng_image(&original));
        assert_eq!(fpackng_image(&b), fpackng_image(&original));
    }

    // A missing program: a clear error and a failure status.
    let out = Command::new(FPACK_NG)
        .args(["shim", "--", "no-such-program-xyz"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-program-xyz"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pixel bytes of the first image with pixels.
fn fpackng_image(file: &[u8]) -> Vec<u8> {
    let mut reader = fpackng::fits::FitsReader::new(
        std::io::Cursor::new(file.to_vec()),
        fpackng::Limits::default(),
        Some(file.len() as u64),
    );
    while let Some(hdu) = reader.next_hdu().unwrap() {
        if hdu.kind() == fpackng::fits::HduKind::Image && !hdu.image_axes().is_empty() {
            return hdu.data_bytes().to_vec();
        }
    }
    panic!("no image")
}
