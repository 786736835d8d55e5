//! `--device`: where the neural codecs compute, never what they output.
//!
//! Runs in every build. Without the `tch` feature `--device cuda` is refused
//! with a message naming the feature; with it (scripts/test-tch.sh),
//! `--device cuda` either works or says libtorch sees no CUDA device. In every
//! case the files written with `auto`, `cpu` and (when it works) `cuda` are
//! byte-identical, and funpack-ng on any device restores the input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fpackng-device-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(tool: &str, args: &[&str]) -> Output {
    let exe = match tool {
        "fpack-ng" => env!("CARGO_BIN_EXE_fpack-ng"),
        _ => env!("CARGO_BIN_EXE_funpack-ng"),
    };
    Command::new(exe).args(args).output().unwrap()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// Compress `src` with `-n idf --device dev` into `dir/dev.fz`.
fn pack(dir: &Path, src: &Path, dev: &str) -> (Output, PathBuf) {
    let out = dir.join(format!("{dev}.fz"));
    let o = run(
        "fpack-ng",
        &[
            "-n",
            "idf",
            "--device",
            dev,
            "-O",
            out.to_str().unwrap(),
            src.to_str().unwrap(),
        ],
    );
    (o, out)
}

#[test]
fn every_device_writes_the_same_bytes() {
    let dir = scratch("same");
    let src = fixture("uint16.fits");
    let (o, cpu) = pack(&dir, &src, "cpu");
    assert!(
        o.status.success(),
        "cpu: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (o, auto) = pack(&dir, &src, "auto");
    assert!(
        o.status.success(),
        "auto: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let cpu_bytes = std::fs::read(&cpu).unwrap();
    assert!(
        std::fs::read(&auto).unwrap() == cpu_bytes,
        "--device auto and cpu wrote different files"
    );

    let (o, cuda) = pack(&dir, &src, "cuda");
    let err = String::from_utf8_lossy(&o.stderr);
    if cfg!(feature = "tch") {
        if o.status.success() {
            assert!(
                std::fs::read(&cuda).unwrap() == cpu_bytes,
                "--device cuda and cpu wrote different files"
            );
        } else {
            assert!(
                err.contains("no CUDA device"),
                "--device cuda failed otherwise: {err}"
            );
            eprintln!("note: no CUDA device here, --device cuda was refused as it should be");
        }
    } else {
        assert!(
            !o.status.success() && err.contains("`tch` cargo feature"),
            "--device cuda without tch: {err}"
        );
        assert!(!cuda.exists(), "a refused run wrote {}", cuda.display());
    }

    // Decode on each device that works; all restore the input's data.
    let want = std::fs::read(&src).unwrap();
    for dev in ["cpu", "auto", "cuda"] {
        let back = dir.join(format!("back-{dev}.fits"));
        let o = run(
            "funpack-ng",
            &[
                "--device",
                dev,
                "-O",
                back.to_str().unwrap(),
                cpu.to_str().unwrap(),
            ],
        );
        if dev == "cuda" && !o.status.success() {
            continue; // refused above for the same reason
        }
        assert!(
            o.status.success(),
            "funpack-ng --device {dev}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let got = std::fs::read(&back).unwrap();
        // The data unit follows the header; compare the whole files' data
        // parts through the library so header-keyword order cannot matter.
        assert_eq!(
            data_of(&got),
            data_of(&want),
            "funpack-ng --device {dev} restored other pixels"
        );
    }
    let o = run("fpack-ng", &["--device", "tpu", src.to_str().unwrap()]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("auto, cpu or cuda")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn data_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut r = fpackng::fits::FitsReader::new(bytes, Default::default(), Some(bytes.len() as u64));
    let mut out = Vec::new();
    while let Some(h) = r.next_hdu().unwrap() {
        out.push(h.data_bytes().to_vec());
    }
    out
}
