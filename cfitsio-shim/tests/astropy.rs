//! astropy reads and writes the new algorithms through the fpackng-astropy
//! package: pip-installed from this checkout into a fresh virtual
//! environment (system site packages visible, for astropy and numpy; no
//! network), registered automatically by its .pth hook. Files astropy
//! writes are read back by funpack-ng and by Debian's funpack with the shim.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use fpackng::pack::file::InputAfter;
use fpackng::pack::{decompress_file, DecompressOptions};

fn venv_with_package(dir: &Path) -> PathBuf {
    let venv = dir.join("venv");
    let (ok, _, err) = run(Command::new("python3")
        .args(["-m", "venv", "--system-site-packages"])
        .arg(&venv));
    assert!(
        ok,
        "python3 -m venv failed (Debian: apt-get install python3-venv):\n{err}"
    );
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    // Built from a copy: pip must not leave build/ or *.egg-info in the checkout.
    let copy = dir.join("package");
    let (ok, _, err) = run(Command::new("cp").arg("-r").arg(&package).arg(&copy));
    assert!(ok, "{err}");
    let (ok, out, err) = run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--no-index", "--no-build-isolation"])
        .arg(&copy)
        .env("FPACKNG_SHIM_LIB", shim_library()));
    assert!(ok, "pip install failed:\n{out}\n{err}");
    venv.join("bin/python")
}

fn check_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/astropy_check.py")
}

#[test]
fn astropy_reads_and_writes_new_codecs_after_pip_install() {
    let dir = scratch("astropy");
    let python = venv_with_package(&dir);
    let script = check_script();
    for codec in NEW_CODECS {
        let mut pairs = Vec::new();
        for (name, tile) in frames(codec) {
            let packed = dir.join(format!("{codec}-{}-{}.fz", tile.len(), tile[0]));
            compress(&frame(name), &packed, codec, tile);
            pairs.push(frame(name));
            pairs.push(packed);
        }
        let (ok, out, err) = run(Command::new(&python).arg(&script).arg("read").args(&pairs));
        assert!(ok, "astropy read {codec}:\n{out}\n{err}");
        assert_eq!(out.matches("read ok").count(), frames(codec).len(), "{out}");

        for &i in WRITE_FRAMES {
            let (name, tile) = frames(codec)[i];
            // astropy's tile_shape is in numpy order (slowest axis first).
            let numpy_tile: Vec<String> = tile.iter().rev().map(|t| t.to_string()).collect();
            let file = format!("{i}-{}", stem(name));
            let written = dir.join(format!("astropy-{codec}-{file}.fz"));
            let (ok, out, err) = run(Command::new(&python)
                .arg(&script)
                .args(["write", codec, &numpy_tile.join(",")])
                .arg(frame(name))
                .arg(&written));
            assert!(ok, "astropy write {codec} {name}:\n{out}\n{err}");
            let header = std::fs::read(&written).unwrap();
            assert!(
                String::from_utf8_lossy(&header).contains(&format!("ZCMPTYPE= '{codec}")),
                "{name}: astropy did not write {codec}"
            );
            // funpack-ng (the library) reads it back...
            let restored = dir.join(format!("ng-{codec}-{file}"));
            decompress_file(
                &written,
                &restored,
                &DecompressOptions::default(),
                true,
                InputAfter::Keep,
            )
            .unwrap_or_else(|e| panic!("funpack-ng on astropy's {codec} {name}: {e}"));
            assert_same_images(&frame(name), &restored);
            // ...and so does Debian's funpack with the shim.
            let restored = dir.join(format!("funpack-{codec}-{file}"));
            let (ok, out, err) = run(Command::new("funpack")
                .env("LD_PRELOAD", shim_library())
                .arg("-O")
                .arg(&restored)
                .arg(&written));
            assert!(
                ok,
                "shimmed funpack on astropy's {codec} {name}: {out}{err}"
            );
            assert_same_images(&frame(name), &restored);
        }

        let (_, tile) = frames(codec)[1];
        let packed = dir.join(format!("{codec}-{}-{}.fz", tile.len(), tile[0]));
        let (ok, out, err) = run(Command::new(&python)
            .arg(&script)
            .arg("unsupported-version")
            .arg(&packed));
        assert!(ok, "unsupported astropy version:\n{out}\n{err}");
        // The system python has no fpackng_astropy: astropy's standard error.
        let (importable, _, _) =
            run(Command::new("python3").args(["-c", "import fpackng_astropy"]));
        if !importable {
            let (ok, out, err) = run(Command::new("python3")
                .arg(&script)
                .arg("without-package")
                .arg(&packed));
            assert!(ok, "astropy without the package:\n{out}\n{err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
