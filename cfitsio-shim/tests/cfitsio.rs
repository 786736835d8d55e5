//! Unmodified cfitsio programs read the new algorithms through the
//! LD_PRELOAD interposer: Debian's funpack and fitsverify, and a C program
//! compiled against Debian's libcfitsio-dev (whole images and sections).
//! Without the shim the same programs fail with cfitsio's standard error.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use fpackng::fits::{FitsReader, HduKind};

fn with_shim(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env("LD_PRELOAD", shim_library());
    c
}

/// Compiles tests/c/NAME.c with gcc against Debian's libcfitsio.
fn compile_c(name: &str, dir: &Path, extra: &[&str]) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    let exe = dir.join(name);
    let (ok, _, err) = run(Command::new("gcc")
        .arg("-O1")
        .arg("-Wall")
        .arg("-o")
        .arg(&exe)
        .arg(&source)
        .args(extra));
    assert!(ok, "gcc {name}.c failed:\n{err}");
    exe
}

/// 0-based index of the first image HDU with pixels, plain or compressed.
fn first_image_ext(path: &Path) -> usize {
    let file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let mut reader = FitsReader::new(std::io::BufReader::new(file), Default::default(), Some(len));
    while let Some(hdu) = reader.next_hdu().unwrap() {
        let has_pixels = match hdu.kind() {
            HduKind::Image => !hdu.image_axes().is_empty(),
            HduKind::CompressedImage => true,
            _ => false,
        };
        if has_pixels {
            return hdu.number - 1;
        }
    }
    panic!("{} has no image", path.display())
}

#[test]
fn debian_funpack_and_fitsverify_read_new_codecs_only_with_the_shim() {
    let dir = scratch("funpack");
    for codec in NEW_CODECS {
        for (k, (name, tile)) in frames(codec).iter().enumerate() {
            let original = frame(name);
            let name = format!("{k}-{}", stem(name));
            let packed = dir.join(format!("{codec}-{name}.fz"));
            compress(&original, &packed, codec, tile);

            // Without the shim: cfitsio's standard refusal.
            let plain = dir.join(format!("plain-{codec}-{name}"));
            let (ok, out, err) = run(Command::new("funpack").arg("-O").arg(&plain).arg(&packed));
            assert!(!ok, "funpack without the shim read {codec}");
            assert!(
                format!("{out}{err}").contains("Unknown image compression type"),
                "unexpected funpack error: {out}{err}"
            );
            let (_, out, _) = run(Command::new("fitsverify").arg(&packed));
            assert!(
                !out.contains(" 0 error(s)"),
                "fitsverify without the shim: {out}"
            );

            // With it: identical pixels, a clean verification.
            let restored = dir.join(format!("restored-{codec}-{name}"));
            let (ok, out, err) = run(with_shim("funpack").arg("-O").arg(&restored).arg(&packed));
            assert!(ok, "shimmed funpack failed on {codec} {name}: {out}{err}");
            assert_same_images(&original, &restored);
            let (ok, out, err) = run(with_shim("fitsverify").arg(&packed));
            assert!(
                ok && out.contains(" 0 error(s)"),
                "shimmed fitsverify on {codec} {name}:\n{out}{err}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn c_program_reads_whole_images_and_sections_identically() {
    let dir = scratch("cprogram");
    let reader = compile_c("read_image", &dir, &["-lcfitsio"]);
    let image_sections = [
        "",
        "[10:40,20:40]",
        "[1:44:3,5:40:2]",
        "[44:1,44:1]",
        "[7:7,9:9]",
    ];
    let cube_sections = [
        "",
        "[10:70,20:100,2:2,2:5]",
        "[1:128:3,5:40:2,1:2,1:6:4]",
        "[128:1,1:128,2:1,6:1]",
        "[7:7,9:9,1:1,3:3]",
    ];
    for codec in NEW_CODECS {
        for (k, (name, tile)) in frames(codec).iter().enumerate() {
            let original = frame(name);
            let name = format!("{k}-{}", stem(name));
            let packed = dir.join(format!("{codec}-{name}.fz"));
            compress(&original, &packed, codec, tile);
            let (a, b) = (first_image_ext(&original), first_image_ext(&packed));
            if tile.len() > 3 {
                // cfitsio's fits_read_img reads compressed images of at most
                // 3 axes, whatever the algorithm: check that the refusal is
                // cfitsio's own (the same for RICE_1), not the shim's.
                let rice = dir.join(format!("rice-{name}.fz"));
                compress(&original, &rice, "RICE_1", tile);
                for (file, shim) in [(&rice, false), (&packed, true)] {
                    let mut command = if shim {
                        with_shim(&reader)
                    } else {
                        Command::new(&reader)
                    };
                    let (ok, _, err) = run(command
                        .arg(format!("{}[{b}]", file.display()))
                        .arg(dir.join("x")));
                    assert!(
                        !ok && err.contains("only 1D, 2D, or 3D images"),
                        "{}: {err}",
                        file.display()
                    );
                }
                continue;
            }
            let sections = if tile.len() > 2 {
                &cube_sections
            } else {
                &image_sections
            };
            for (k, section) in sections.iter().enumerate() {
                let expected = dir.join(format!("expected{k}"));
                let actual = dir.join(format!("actual{k}"));
                let spec_a = format!("{}[{a}]{section}", original.display());
                let spec_b = format!("{}[{b}]{section}", packed.display());
                let (ok, out_a, err) = run(Command::new(&reader).arg(&spec_a).arg(&expected));
                assert!(ok, "{spec_a}: {err}");
                let (ok, out_b, err) = run(with_shim(&reader).arg(&spec_b).arg(&actual));
                assert!(ok, "shimmed read of {spec_b}: {err}");
                assert_eq!(out_a, out_b, "{spec_b}");
                let (x, y) = (
                    std::fs::read(&expected).unwrap(),
                    std::fs::read(&actual).unwrap(),
                );
                assert!(
                    !x.is_empty() && x == y,
                    "{spec_b}: values differ from {spec_a}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn writing_a_new_codec_through_cfitsio_is_refused_and_leaves_the_file_intact() {
    let dir = scratch("cwrite");
    let reader = compile_c("read_image", &dir, &["-lcfitsio"]);
    for codec in NEW_CODECS {
        let (name, tile) = frames(codec)[1];
        if tile.len() > 3 {
            continue; // fits_write_img/fits_read_img stop at 3 axes (see above)
        }
        let packed = dir.join(format!("{codec}.fz"));
        compress(&frame(name), &packed, codec, tile);
        let before = std::fs::read(&packed).unwrap();
        let (ok, _, err) = run(with_shim(&reader)
            .arg("--write")
            .arg(format!("{}[1]", packed.display())));
        assert!(!ok, "cfitsio wrote into a {codec} image");
        assert!(err.contains("fpack-ng shim"), "no shim message: {err}");
        assert_eq!(
            std::fs::read(&packed).unwrap(),
            before,
            "{codec} file changed"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn standard_writes_still_work_under_the_shim_after_reading_a_new_codec() {
    let dir = scratch("cnext");
    let reader = compile_c("read_image", &dir, &["-lcfitsio"]);
    for codec in NEW_CODECS {
        let (name, tile) = frames(codec)[1];
        if tile.len() > 3 {
            continue; // fits_write_img/fits_read_img stop at 3 axes (see above)
        }
        let packed = dir.join(format!("{codec}.fz"));
        compress(&frame(name), &packed, codec, tile);
        let (ok, out, err) = run(with_shim(&reader)
            .arg("--then-rice")
            .arg(format!("{}[1]", packed.display()))
            .arg(dir.join("rice.fz")));
        assert!(ok && out.contains("identical"), "{codec}:\n{out}{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_tiles_give_cfitsio_errors_not_crashes() {
    use std::os::unix::process::ExitStatusExt;
    let dir = scratch("damaged");
    for codec in NEW_CODECS {
        let (name, tile) = frames(codec)[0];
        let packed = dir.join(format!("{codec}.fz"));
        compress(&frame(name), &packed, codec, tile);
        for (k, damaged) in damaged_copies(&packed, codec).iter().enumerate() {
            let out = with_shim("funpack")
                .arg("-O")
                .arg(dir.join("x.fits"))
                .arg(damaged)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                out.status.signal(),
                None,
                "funpack crashed on damaged {codec} ({k}): {text}"
            );
            assert!(
                !out.status.success(),
                "funpack accepted damaged {codec} ({k})"
            );
            assert!(
                text.contains("fpack-ng shim") && text.contains(codec),
                "{codec} ({k}): {text}"
            );
            let _ = std::fs::remove_file(dir.join("x.fits"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn c_api_from_c_survives_misuse() {
    let dir = scratch("capi");
    let library = shim_library();
    let lib_dir = library.parent().unwrap().to_str().unwrap().to_string();
    let include = format!("-I{}/include", env!("CARGO_MANIFEST_DIR"));
    let exe = compile_c(
        "api_misuse",
        &dir,
        &[
            &include,
            &format!("-L{lib_dir}"),
            &format!("-Wl,-rpath,{lib_dir}"),
            "-lfpackng_shim",
        ],
    );
    let (ok, out, err) = run(Command::new(&exe).args(NEW_CODECS));
    assert!(ok && out.contains("ok"), "api_misuse:\n{out}\n{err}");
    for codec in NEW_CODECS {
        assert!(
            out.contains(&format!("{codec} (new)")),
            "{codec} not listed:\n{out}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
