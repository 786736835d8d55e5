//! `fpack-ng shim`: finds libfpackng_shim.so, prints the LD_PRELOAD line,
//! and runs Debian's funpack with it on a JXL_1 file (pixels identical);
//! with `--write CODEC`, Debian's fpack writes CODEC, and a bad codec or
//! parameter fails before the program starts.

use std::path::PathBuf;
use std::process::{Command, Output};

mod common;

const FPACK_NG: &str = env!("CARGO_BIN_EXE_fpack-ng");
const FUNPACK_NG: &str = env!("CARGO_BIN_EXE_funpack-ng");

fn frame() -> PathBuf {
    common::corpus_root().join("test/lco1m_sinistro_elp_fa05_amp3.fits")
}

/// Run `cmd`; it must succeed (its stderr is the failure message).
fn succeed(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fpackng-cli-shim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn print_and_path_name_the_built_library() {
    let out = succeed(Command::new(FPACK_NG).args(["shim", "--path"]));
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
        succeed(
            Command::new(FPACK_NG)
                .args(["shim", "--", "funpack", "-O"])
                .arg(&by_funpack)
                .arg(&packed),
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

#[test]
fn write_runs_debian_fpack_with_the_codec_and_checks_it_first() {
    let dir = std::env::temp_dir().join(format!("fpackng-cli-shim-write-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (spec, zcmptype) in [("JXL_1,effort=3", "JXL_1"), ("mixpred", "MIXPRED_1")] {
        let packed = dir.join(format!("{zcmptype}.fz"));
        let _ = std::fs::remove_file(&packed);
        succeed(
            Command::new(FPACK_NG)
                .args(["shim", "--write", spec, "--", "fpack", "-O"])
                .arg(&packed)
                .arg(frame()),
        );
        let bytes = std::fs::read(&packed).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(&format!("ZCMPTYPE= '{zcmptype}")), "{spec}");
        if spec.contains("effort=3") {
            let zval3 = text.split("ZVAL3   =").nth(1).map(|r| r[..21].trim());
            assert!(text.contains("ZNAME3  = 'EFFORT"), "{spec}");
            assert_eq!(zval3, Some("3"), "{spec}");
        }
        let restored = dir.join(format!("{zcmptype}.fits"));
        let status = Command::new(FUNPACK_NG)
            .arg("-O")
            .arg(&restored)
            .arg(&packed)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            fpackng_image(&std::fs::read(&restored).unwrap()),
            fpackng_image(&std::fs::read(frame()).unwrap())
        );
    }

    // --print with --write: both variables, on one line for export $(...).
    let out = Command::new(FPACK_NG)
        .args(["shim", "--write", "JXL_1", "--print"])
        .env("LD_PRELOAD", "")
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with("LD_PRELOAD=") && line.trim_end().ends_with(" FPACKNG_SHIM_WRITE=JXL_1"),
        "{line}"
    );

    // Bad codecs and parameters: an error naming what is accepted, and
    // the program never runs.
    let marker = dir.join("ran");
    for (spec, says) in [
        ("NOSUCH_1", "JXL_1, MIXPRED_1"),
        ("RICE_1", "JXL_1, MIXPRED_1"),
        ("JXL_1,speed=9", "effort=1..10"),
        ("MIXPRED_1,effort=9", "no parameters"),
    ] {
        let out = Command::new(FPACK_NG)
            .args(["shim", "--write", spec, "--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{spec}");
        assert!(
            err.contains(says) && err.contains(spec.split(',').next().unwrap()),
            "{spec}: {err}"
        );
        assert!(!marker.exists(), "{spec}: the program ran");
    }
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
