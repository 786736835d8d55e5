//! IDF_1 through the command-line tools: every corpus frame and fixture
//! round trips bit for bit; the output does not depend on thread counts; a
//! missing model, a wrong model hash and a damaged tile are clear errors that
//! write nothing.

mod roundtrip_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use roundtrip_common::{corpus, images};

fn fpack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fpack-ng"))
}

fn funpack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_funpack-ng"))
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fpackng-idf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// A real frame when the corpus is there, else a fixture.
fn a_frame() -> PathBuf {
    let f = corpus().join("test/lco1m_sinistro_elp_fa05_amp3.fits");
    if f.exists() {
        f
    } else {
        fixture("uint16.fits")
    }
}

#[test]
fn every_corpus_frame_and_fixture_round_trips_through_idf() {
    roundtrip_common::corpus_and_fixtures_round_trip("idf", &["-n", "idf"], "IDF_1");
}

#[test]
fn output_does_not_depend_on_thread_counts() {
    let work = scratch("threads");
    let src = a_frame();
    let mut files = Vec::new();
    for (threads, tiles) in [
        ("1", None),
        ("2", None),
        ("1", Some("128,64")),
        ("2", Some("128,64")),
    ] {
        let out = work.join(format!(
            "t{threads}-{}.fz",
            tiles.unwrap_or("default").replace(',', "x")
        ));
        let mut cmd = fpack();
        cmd.args(["-n", "idf", "--threads", threads, "-O"])
            .arg(&out);
        if let Some(t) = tiles {
            cmd.args(["-t", t]);
        }
        ok(cmd.arg(&src).output().unwrap(), "fpack-ng -n idf");
        files.push(out);
    }
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(bytes[0], bytes[1], "1 and 2 threads gave different files");
    assert_eq!(
        bytes[2], bytes[3],
        "1 and 2 threads gave different files (128x64 tiles)"
    );
    for (f, threads) in files.iter().zip(["2", "1", "2", "1"]) {
        let back = f.with_extension("back");
        ok(
            funpack()
                .args(["--threads", threads, "-O"])
                .arg(&back)
                .arg(f)
                .output()
                .unwrap(),
            "funpack-ng",
        );
        assert!(
            images(&back) == images(&src),
            "{} decoded with {threads} threads differs",
            f.display()
        );
    }
    std::fs::remove_dir_all(&work).unwrap();
}

/// Byte range of the heap of the first BINTABLE HDU: (start, length).
fn heap_of_first_table(bytes: &[u8]) -> (usize, usize) {
    let mut at = 0;
    loop {
        let card = |i: usize| {
            std::str::from_utf8(&bytes[at + 80 * i..at + 80 * i + 80])
                .unwrap()
                .to_string()
        };
        let mut i = 0;
        let (mut naxis1, mut naxis2, mut pcount, mut table) = (0, 0, 0, false);
        let num = |c: &str| {
            c[10..]
                .split('/')
                .next()
                .unwrap()
                .trim()
                .parse::<usize>()
                .unwrap()
        };
        loop {
            let c = card(i);
            if c.starts_with("XTENSION= 'BINTABLE'") {
                table = true;
            } else if c.starts_with("NAXIS1  =") {
                naxis1 = num(&c);
            } else if c.starts_with("NAXIS2  =") {
                naxis2 = num(&c);
            } else if c.starts_with("PCOUNT  =") {
                pcount = num(&c);
            } else if c.starts_with("END ") {
                break;
            }
            i += 1;
        }
        let data = (at + 80 * (i + 1)).div_ceil(2880) * 2880;
        if table {
            return (data + naxis1 * naxis2, pcount);
        }
        at = data + (naxis1 * naxis2 + pcount).div_ceil(2880) * 2880;
    }
}

fn expect_clean_failure(out: Output, dir: &Path, before: &[String], wants: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded; stderr: {err}");
    assert_ne!(out.status.code(), Some(101), "panicked: {err}");
    for w in wants {
        assert!(err.contains(w), "error does not mention {w:?}: {err}");
    }
    let mut now: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    now.sort();
    assert_eq!(now, before, "the failed run left files behind");
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn missing_or_wrong_models_and_damaged_tiles_are_clean_errors() {
    let work = scratch("models");
    let src = fixture("uint16.fits");

    // Another model: the built-in one with one bias changed (a valid model
    // with another SHA-256).
    let default_model =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/idf16-small-v1.idfm");
    let mut other = std::fs::read(&default_model).unwrap();
    let n = other.len();
    other[n - 4] = other[n - 4].wrapping_add(1);
    let models = work.join("models");
    std::fs::create_dir_all(&models).unwrap();
    let other_path = models.join("other.idfm");
    std::fs::write(&other_path, &other).unwrap();

    let packed = work.join("other.fz");
    ok(
        fpack()
            .args(["-n", "idf", "--model"])
            .arg(&other_path)
            .arg("-O")
            .arg(&packed)
            .arg(&src)
            .output()
            .unwrap(),
        "fpack-ng --model",
    );
    let list =
        String::from_utf8_lossy(&ok(fpack().arg("-L").arg(&packed).output().unwrap(), "-L").stdout)
            .into_owned();
    assert!(list.contains("IDF_1"), "{list}");

    // Missing model: an error naming it, nothing written.
    let out_dir = work.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let before = listing(&out_dir);
    let out = funpack()
        .arg("-O")
        .arg(out_dir.join("x.fits"))
        .arg(&packed)
        .output()
        .unwrap();
    expect_clean_failure(out, &out_dir, &before, &["needs model", "--model", "HDU 2"]);

    // With the model, by path or by directory: identical pixels.
    for how in ["path", "dir"] {
        let back = out_dir.join(format!("{how}.fits"));
        let mut cmd = funpack();
        if how == "path" {
            cmd.arg("--model").arg(&other_path);
        } else {
            cmd.env("FPACKNG_MODELS", &models);
        }
        ok(
            cmd.arg("-O").arg(&back).arg(&packed).output().unwrap(),
            "funpack-ng with the model",
        );
        assert!(images(&back) == images(&src));
        std::fs::remove_file(&back).unwrap();
    }

    // Wrong model hash in the header (no checksums, so the decoder is
    // reached): an error naming the model.
    let plain = work.join("nochecksum.fz");
    ok(
        fpack()
            .args(["-C", "-n", "idf", "-O"])
            .arg(&plain)
            .arg(&src)
            .output()
            .unwrap(),
        "fpack-ng -C -n idf",
    );
    let good = std::fs::read(&plain).unwrap();
    let sha = fpackng::neural::store::default_model().sha256.clone();
    let text = String::from_utf8_lossy(&good).into_owned();
    let at = text
        .find(&sha)
        .expect("IDFSHA card holds the built-in model's hash");
    let mut wrong = good.clone();
    wrong[at..at + 64].copy_from_slice("0123456789abcdef".repeat(4).as_bytes());
    let wrong_path = work.join("wronghash.fz");
    std::fs::write(&wrong_path, &wrong).unwrap();
    let out = funpack()
        .arg("-O")
        .arg(out_dir.join("y.fits"))
        .arg(&wrong_path)
        .output()
        .unwrap();
    expect_clean_failure(out, &out_dir, &before, &["needs model", "0123456789abcdef"]);

    // A damaged tile: flipped heap bytes are caught (the tile's CRC at the
    // latest) and named.
    let (heap, len) = heap_of_first_table(&good);
    for frac in [0.1, 0.5, 0.9] {
        let mut bad = good.clone();
        bad[heap + (len as f64 * frac) as usize] ^= 0x40;
        let bad_path = work.join("damaged.fz");
        std::fs::write(&bad_path, &bad).unwrap();
        let out = funpack()
            .arg("-O")
            .arg(out_dir.join("z.fits"))
            .arg(&bad_path)
            .output()
            .unwrap();
        expect_clean_failure(out, &out_dir, &before, &["tile", "HDU 2"]);
    }
    std::fs::remove_dir_all(&work).unwrap();
}
