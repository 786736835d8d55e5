//! Round trips shared by the codec tests: every corpus frame and every
//! fixture through `fpack-ng FLAGS` and `funpack-ng` must come back bit for
//! bit (images the codec cannot code fall back to a standard codec and must
//! come back too), with odd tile shapes as well as the default tiling.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

// ---- neural codecs (IDF_1, PCNN_1): determinism, models, damage ----------

/// A neural codec as the command line selects it.
pub struct Neural {
    pub tag: &'static str,
    pub flags: &'static [&'static str],
    pub zcmptype: &'static str,
    /// The built-in model's file under models/.
    pub model_file: &'static str,
    pub default_sha: String,
}

impl Neural {
    fn model_ext(&self) -> &str {
        self.model_file.rsplit('.').next().unwrap_or("model")
    }
}

pub fn fpack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fpack-ng"))
}

pub fn funpack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_funpack-ng"))
}

pub fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fpackng-nn-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// A real frame when the corpus is there, else a fixture.
pub fn a_frame() -> PathBuf {
    let f = corpus().join("test/lco1m_sinistro_elp_fa05_amp3.fits");
    if f.exists() {
        f
    } else {
        fixture("uint16.fits")
    }
}

/// The same file from 1 and 2 threads, with default and 128x64 tiles; each
/// decodes with the other thread count.
pub fn output_does_not_depend_on_thread_counts(codec: &Neural) {
    let work = scratch(&format!("{}-threads", codec.tag));
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
        cmd.args(codec.flags)
            .args(["--threads", threads, "-O"])
            .arg(&out);
        if let Some(t) = tiles {
            cmd.args(["-t", t]);
        }
        ok(cmd.arg(&src).output().unwrap(), "fpack-ng (neural)");
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
pub fn heap_of_first_table(bytes: &[u8]) -> (usize, usize) {
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

pub fn expect_clean_failure(out: Output, dir: &Path, before: &[String], wants: &[&str]) {
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

pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A model other than the built-in one must be found (by path or directory)
/// or named in a clean error; a wrong model hash and damaged tiles too.
pub fn missing_or_wrong_models_and_damaged_tiles_are_clean_errors(codec: &Neural) {
    let work = scratch(&format!("{}-models", codec.tag));
    let src = fixture("uint16.fits");

    // Another model: the built-in one with one bias changed (a valid model
    // with another SHA-256).
    let default_model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(codec.model_file);
    let mut other = std::fs::read(&default_model).unwrap();
    let n = other.len();
    other[n - 4] = other[n - 4].wrapping_add(1);
    let models = work.join("models");
    std::fs::create_dir_all(&models).unwrap();
    let other_path = models.join(format!("other.{}", codec.model_ext()));
    std::fs::write(&other_path, &other).unwrap();

    let packed = work.join("other.fz");
    ok(
        fpack()
            .args(codec.flags)
            .arg("--model")
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
    assert!(list.contains(codec.zcmptype), "{list}");

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
            .arg("-C")
            .args(codec.flags)
            .arg("-O")
            .arg(&plain)
            .arg(&src)
            .output()
            .unwrap(),
        "fpack-ng -C (neural)",
    );
    let good = std::fs::read(&plain).unwrap();
    let sha = codec.default_sha.clone();
    let text = String::from_utf8_lossy(&good).into_owned();
    let at = text
        .find(&sha)
        .expect("the HDU records the built-in model's hash");
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
    damaged_heap_bytes_are_clean_errors(
        &good,
        &[0.1, 0.5, 0.9],
        0x40,
        &work,
        &out_dir,
        &["tile", "HDU 2"],
    );
    std::fs::remove_dir_all(&work).unwrap();
}

/// Flip `mask` in the heap byte at each fraction of the first table's heap
/// of the .fz `good`: funpack-ng must fail cleanly, mentioning `wants`, and
/// leave `out_dir` as it was.
pub fn damaged_heap_bytes_are_clean_errors(
    good: &[u8],
    fractions: &[f64],
    mask: u8,
    work: &Path,
    out_dir: &Path,
    wants: &[&str],
) {
    let before = listing(out_dir);
    let (heap, len) = heap_of_first_table(good);
    for frac in fractions {
        let mut bad = good.to_vec();
        bad[heap + (len as f64 * frac) as usize] ^= mask;
        let bad_path = work.join("damaged.fz");
        std::fs::write(&bad_path, &bad).unwrap();
        let out = funpack()
            .arg("-O")
            .arg(out_dir.join("z.fits"))
            .arg(&bad_path)
            .output()
            .unwrap();
        expect_clean_failure(out, out_dir, &before, wants);
    }
}
