//! The command-line contract beyond the codecs: output naming, -E/-P/-O,
//! exit statuses, carrying on after a failed file, and refusing to destroy
//! data (existing outputs, lossy -D without -Y).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fpackng-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(tool: &str, dir: &Path, args: &[&str]) -> Output {
    let exe = match tool {
        "fpack-ng" => env!("CARGO_BIN_EXE_fpack-ng"),
        _ => env!("CARGO_BIN_EXE_funpack-ng"),
    };
    Command::new(exe)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn image_hdus(path: &Path) -> Vec<(usize, Option<String>, Vec<usize>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut r =
        fpackng::fits::FitsReader::new(&bytes[..], Default::default(), Some(bytes.len() as u64));
    let mut out = Vec::new();
    while let Some(h) = r.next_hdu().unwrap() {
        out.push((h.number, h.header.get_string("EXTNAME"), h.image_axes()));
    }
    out
}

#[test]
fn extract_selected_hdus_and_prefix() {
    let dir = scratch("extract");
    std::fs::copy(fixture("mef_tables.fits"), dir.join("m.fits")).unwrap();
    assert!(run("fpack-ng", &dir, &["m.fits"]).status.success());

    // One HDU by name: it becomes the primary array.
    assert!(run(
        "funpack-ng",
        &dir,
        &["-E", "SCI", "-O", "sci.fits", "m.fits.fz"]
    )
    .status
    .success());
    let hdus = image_hdus(&dir.join("sci.fits"));
    assert_eq!(hdus.len(), 1);
    assert_eq!(hdus[0].2, vec![80, 60]);

    // Two by number (0 = primary, as funpack counts): empty primary + both.
    assert!(run(
        "funpack-ng",
        &dir,
        &["-E", "1,4", "-O", "two.fits", "m.fits.fz"]
    )
    .status
    .success());
    let hdus = image_hdus(&dir.join("two.fits"));
    assert_eq!(hdus.len(), 3);
    assert!(hdus[0].2.is_empty());
    assert_eq!(hdus[1].1.as_deref(), Some("SCI"));
    assert_eq!(hdus[2].1.as_deref(), Some("ERR"));

    // -P puts a prefix on the output name.
    assert!(run("funpack-ng", &dir, &["-P", "new_", "m.fits.fz"])
        .status
        .success());
    assert!(dir.join("new_m.fits").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exit_statuses_and_carrying_on() {
    let dir = scratch("status");
    std::fs::copy(fixture("uint16.fits"), dir.join("a.fits")).unwrap();
    std::fs::write(dir.join("bad.fits"), b"this is not FITS").unwrap();
    std::fs::copy(fixture("bitpix16.fits"), dir.join("c.fits")).unwrap();

    // A bad file in the middle: reported, the others still done, status 1.
    let out = run("fpack-ng", &dir, &["a.fits", "bad.fits", "c.fits"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.fits") && err.contains("HDU 1"), "{err}");
    assert!(dir.join("a.fits.fz").exists() && dir.join("c.fits.fz").exists());
    assert!(!dir.join("bad.fits.fz").exists());

    // An existing output is never overwritten.
    let before = std::fs::read(dir.join("a.fits.fz")).unwrap();
    let out = run("fpack-ng", &dir, &["-g2", "a.fits"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(dir.join("a.fits.fz")).unwrap(), before);

    // Usage errors: status 2 and nothing done.
    assert_eq!(
        run("fpack-ng", &dir, &["-t", "abc", "a.fits"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run("fpack-ng", &dir, &["--no-such-flag"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run("funpack-ng", &dir, &["-E", "1", "-D", "a.fits.fz"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run("fpack-ng", &dir, &["-i2f", "a.fits"]).status.code(),
        Some(2)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lossy_delete_needs_confirmation() {
    let dir = scratch("lossy");
    std::fs::copy(fixture("float32.fits"), dir.join("f.fits")).unwrap();
    let out = run("fpack-ng", &dir, &["-q", "4", "-D", "f.fits"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(dir.join("f.fits").exists() && !dir.join("f.fits.fz").exists());
    // With -Y the quantized file is written and the original deleted.
    let out = run("fpack-ng", &dir, &["-q", "4", "-D", "-Y", "f.fits"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("f.fits").exists() && dir.join("f.fits.fz").exists());
    // Lossless -F replaces the input under its own name with a compressed file.
    std::fs::copy(fixture("uint16.fits"), dir.join("u.fits")).unwrap();
    assert!(run("fpack-ng", &dir, &["-F", "u.fits"]).status.success());
    let hdus = image_hdus(&dir.join("u.fits"));
    assert_eq!(hdus.len(), 2, "primary + compressed image");
    std::fs::remove_dir_all(&dir).unwrap();
}
