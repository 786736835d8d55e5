//! Unmodified cfitsio programs write the new codecs through the interposer
//! (`fpack-ng shim --write CODEC`, i.e. FPACKNG_SHIM_WRITE=CODEC): Debian's
//! fpack, imcopy with `out.fz[compress]`, and a C program that calls
//! fits_set_compression_type. Each file is read back identically by
//! funpack-ng's library and by the shimmed Debian funpack, and its tiles are
//! the very bytes fpack-ng writes with the same tiles.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use fpackng::codec::choice::CFITSIO_WRITE_ENV;
use fpackng::fits::{FitsReader, HduKind, Header};
use fpackng::pack::file::InputAfter;
use fpackng::pack::{
    compress_file, decompress_file, CompressOptions, CompressedImageInfo, CubeMode,
    DecompressOptions, Tiling,
};
use fpackng::tile::table::CompressedTable;
use fpackng::{Context, Limits};

/// 16-bit frames of the test corpus through the three writers, and the
/// JWST ramp of 4 axes through fpack only (cfitsio's own image writes stop
/// at 3 axes). corpus/train: `every_train_frame_through_the_three_writers`.
const SMALL_FRAMES: &[&str] = &[
    "test/hst_stis_o4sp040b0_raw_sci1.fits",
    "test/hst_stis_ocoa03q2q_raw.fits",
    "test/eso_ntt_emmi_sep_image.fits",
    "test/lco1m_sinistro_elp_fa05_amp3.fits",
    "test/orion_ssdsi_m13_blue_0004.fits",
    "test/trace_171_19980519.fits",
];
const LARGE_FRAMES: &[&str] = &["cubes/jwst_fgs_acq1_jw01019001001_uncal.fits"];
/// 8- and 16-bit fixtures (signed, unsigned, cubes, one row, one pixel, MEF).
const FIXTURES_8_16: &[&str] = &[
    "bitpix8.fits",
    "bitpix16.fits",
    "uint16.fits",
    "cube3d.fits",
    "cube4d.fits",
    "flat_constant.fits",
    "headers.fits",
    "onecol.fits",
    "onerow.fits",
    "plio_mask.fits",
    "tiny.fits",
    "mef_tables.fits",
    "primary_plus_ext.fits",
];
/// What only the fast codec takes: 32-bit integers and quantized floats.
const FIXTURES_32_FLOAT: &[&str] = &[
    "bitpix32.fits",
    "int32_bzero.fits",
    "float32.fits",
    "float64.fits",
    "float32_constant.fits",
    "float32_noise_only.fits",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// A command with the shim preloaded and `codec` chosen for writes.
fn writing(program: impl AsRef<std::ffi::OsStr>, codec: &str) -> Command {
    let mut c = Command::new(program);
    c.env("LD_PRELOAD", shim_library())
        .env(CFITSIO_WRITE_ENV, codec);
    c
}

fn reading(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("LD_PRELOAD", shim_library())
        .env_remove(CFITSIO_WRITE_ENV);
    c
}

fn compile_c(name: &str, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    let exe = dir.join(name);
    let (ok, _, err) = run(Command::new("gcc")
        .args(["-O1", "-Wall", "-o"])
        .arg(&exe)
        .arg(&source)
        .arg("-lcfitsio"));
    assert!(ok, "gcc {name}.c failed:\n{err}");
    exe
}

/// Every HDU of a file: header and data unit.
fn hdus(path: &Path) -> Vec<(HduKind, Header, Vec<u8>)> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let len = file.metadata().unwrap().len();
    let mut reader = FitsReader::new(std::io::BufReader::new(file), Limits::default(), Some(len));
    let mut out = Vec::new();
    while let Some(hdu) = reader.next_hdu().unwrap() {
        out.push((hdu.kind(), hdu.header.clone(), hdu.data_bytes().to_vec()));
    }
    out
}

/// The ZCMPTYPE of every compressed image HDU.
fn algorithms(path: &Path) -> Vec<String> {
    hdus(path)
        .iter()
        .filter(|(kind, _, _)| *kind == HduKind::CompressedImage)
        .map(|(_, h, _)| h.get_string("ZCMPTYPE").unwrap_or_default())
        .collect()
}

/// The integer images of `restored` are those of `original` (fpack
/// quantizes float images: those are compared between readers).
fn assert_same_integer_images(original: &Path, restored: &Path) {
    let integers = |p: &Path| -> Vec<_> {
        image_units(p)
            .into_iter()
            .filter(|(_, bitpix, _)| *bitpix > 0)
            .collect()
    };
    let (a, b) = (integers(original), integers(restored));
    assert!(!a.is_empty(), "{} has no integer image", original.display());
    assert_eq!(a.len(), b.len(), "integer images in {}", restored.display());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            x == y,
            "integer image {i} differs in {}",
            restored.display()
        );
    }
}

/// The images of two files hold the same values: integers bit for bit,
/// floats equal or both NaN (readers write NaN with different bits).
fn assert_same_values(a: &Path, b: &Path) {
    let (x, y) = (image_units(a), image_units(b));
    assert_eq!(
        x.len(),
        y.len(),
        "images in {} and {}",
        a.display(),
        b.display()
    );
    for (i, (x, y)) in x.iter().zip(&y).enumerate() {
        assert_eq!((&x.0, x.1), (&y.0, y.1), "image {i} of {}", b.display());
        let same = match x.1 {
            -32 => x.2.chunks_exact(4).zip(y.2.chunks_exact(4)).all(|(p, q)| {
                let (p, q) = (
                    f32::from_be_bytes(p.try_into().unwrap()),
                    f32::from_be_bytes(q.try_into().unwrap()),
                );
                p == q || (p.is_nan() && q.is_nan())
            }),
            -64 => x.2.chunks_exact(8).zip(y.2.chunks_exact(8)).all(|(p, q)| {
                let (p, q) = (
                    f64::from_be_bytes(p.try_into().unwrap()),
                    f64::from_be_bytes(q.try_into().unwrap()),
                );
                p == q || (p.is_nan() && q.is_nan())
            }),
            _ => x.2 == y.2,
        };
        assert!(
            same,
            "image {i} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// (ZBITPIX, ZCMPTYPE) of every compressed image HDU.
fn images_and_algorithms(path: &Path) -> Vec<(i64, String)> {
    hdus(path)
        .iter()
        .filter(|(kind, _, _)| *kind == HduKind::CompressedImage)
        .map(|(_, h, _)| {
            (
                h.get_int("ZBITPIX").unwrap_or_default(),
                h.get_string("ZCMPTYPE").unwrap_or_default(),
            )
        })
        .collect()
}

/// Whether `codec` codes images of `bitpix` written by fpack (which
/// quantizes floats into 32-bit integers).
fn codes(codec: &str, bitpix: i64) -> bool {
    match bitpix {
        8 | 16 => true,
        32 | -32 | -64 => codec == "MIXPRED_1",
        _ => false,
    }
}

/// funpack-ng's library and the shimmed Debian funpack both restore
/// `packed`; returns funpack-ng's output after checking they agree.
fn restore_both(packed: &Path, dir: &Path, tag: &str) -> PathBuf {
    let by_ng = dir.join(format!("{tag}-ng.fits"));
    // imcopy copies an image's CHECKSUM/DATASUM into the table it makes,
    // where they no longer hold (the same without the shim): not checked.
    let options = DecompressOptions {
        verify_checksums: false,
        ..DecompressOptions::default()
    };
    decompress_file(packed, &by_ng, &options, true, InputAfter::Keep)
        .unwrap_or_else(|e| panic!("funpack-ng on {}: {e}", packed.display()));
    let by_debian = dir.join(format!("{tag}-debian.fits"));
    let _ = std::fs::remove_file(&by_debian);
    let (ok, out, err) = run(reading("funpack").arg("-O").arg(&by_debian).arg(packed));
    assert!(ok, "shimmed funpack on {}: {out}{err}", packed.display());
    assert_same_values(&by_ng, &by_debian);
    by_ng
}

/// Writes `input` through the three cfitsio writers under `--write codec`
/// (`fpack_only`: Debian fpack alone), checks the algorithm each file
/// names, and that every reader gives back the pixels (`exact`: those of
/// `input`; otherwise, for quantized floats, the same pixels from every
/// reader).
fn write_and_read_back(
    codec: &str,
    input: &Path,
    dir: &Path,
    writer: &Path,
    fpack_only: bool,
    exact: bool,
    expect: &str,
) {
    let stem = stem(input.to_str().unwrap()).trim_end_matches(".fits");
    // Debian fpack: every image HDU of the file.
    let packed = dir.join(format!("{codec}-fpack-{stem}.fz"));
    let _ = std::fs::remove_file(&packed);
    let (ok, out, err) = run(writing("fpack", codec).arg("-O").arg(&packed).arg(input));
    assert!(ok, "fpack {codec} {stem}: {out}{err}");
    // Each image of the file: the codec where it codes the pixel type,
    // else fpack's Rice (e.g. the float image of mef_tables for JXL_1).
    let found = images_and_algorithms(&packed);
    assert!(
        found.iter().any(|(_, n)| n == expect)
            && found.iter().all(|(bitpix, n)| if codes(codec, *bitpix) {
                n == expect
            } else {
                n == "RICE_1"
            }),
        "fpack {codec} {stem}: {found:?}"
    );
    let restored = restore_both(&packed, dir, &format!("{codec}-fpack-{stem}"));
    if exact {
        assert_same_integer_images(input, &restored);
    }
    if fpack_only {
        return;
    }
    // imcopy 'out.fz[compress]' and the C program: the first image.
    let copied = dir.join(format!("{codec}-imcopy-{stem}.fz"));
    let _ = std::fs::remove_file(&copied);
    let ext = hdus(input)
        .iter()
        .position(|(kind, h, _)| *kind == HduKind::Image && h.get_int("NAXIS").unwrap_or(0) > 0)
        .unwrap();
    let (ok, out, err) = run(writing("imcopy", codec)
        .arg(format!("{}[{ext}]", input.display()))
        .arg(format!("{}[compress]", copied.display())));
    assert!(ok, "imcopy {codec} {stem}: {out}{err}");
    let from_c = dir.join(format!("{codec}-c-{stem}.fz"));
    let (ok, out, err) = run(writing(writer, codec)
        .arg(format!("{}[{ext}]", input.display()))
        .arg(&from_c));
    assert!(ok, "write_image {codec} {stem}: {out}{err}");
    for (how, file) in [("imcopy", &copied), ("c", &from_c)] {
        let names = algorithms(file);
        assert_eq!(names, [expect], "{how} {codec} {stem}");
        let restored = restore_both(file, dir, &format!("{codec}-{how}-{stem}"));
        if exact {
            // The first image only: compare with a single-image copy.
            let single = dir.join(format!("{codec}-{how}-{stem}-orig.fits"));
            let _ = std::fs::remove_file(&single);
            let (ok, _, err) = run(Command::new("imcopy")
                .arg(format!("{}[{ext}]", input.display()))
                .arg(&single));
            assert!(ok, "{err}");
            assert_same_images(&single, &restored);
        }
    }
}

#[test]
fn debian_fpack_imcopy_and_a_c_program_write_jxl_1_and_mixpred_1() {
    let dir = scratch("write-codecs");
    let writer = compile_c("write_image", &dir);
    for codec in ["JXL_1", "MIXPRED_1"] {
        for name in SMALL_FRAMES {
            write_and_read_back(codec, &frame(name), &dir, &writer, false, true, codec);
        }
        for name in LARGE_FRAMES {
            write_and_read_back(codec, &frame(name), &dir, &writer, true, true, codec);
        }
        for name in FIXTURES_8_16 {
            // cfitsio writes images of 4 axes through fpack's routine only.
            let fpack_only = *name == "cube4d.fits";
            write_and_read_back(
                codec,
                &fixture(name),
                &dir,
                &writer,
                fpack_only,
                true,
                codec,
            );
        }
    }
    // The fast codec also codes 32-bit integers and quantized floats; cfitsio
    // quantizes with a seed from the clock, so readers are compared with
    // each other there.
    for name in FIXTURES_32_FLOAT {
        let exact = !name.starts_with("float");
        write_and_read_back(
            "MIXPRED_1",
            &fixture(name),
            &dir,
            &writer,
            false,
            exact,
            "MIXPRED_1",
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The BITPIX of the first image with pixels in a file.
fn first_image_bitpix(path: &Path) -> i64 {
    hdus(path)
        .iter()
        .find(|(kind, h, _)| *kind == HduKind::Image && h.get_int("NAXIS").unwrap_or(0) > 0)
        .and_then(|(_, h, _)| h.get_int("BITPIX"))
        .expect("an image with pixels")
}

#[test]
fn every_train_frame_through_the_three_writers() {
    // corpus/train: plate and film scans, fill values, BSCALE-scaled
    // integers, 8-, 16- and 32-bit frames. JXL_1 takes the 8- and 16-bit
    // ones; the fast codec all.
    let dir = scratch("write-train");
    let writer = compile_c("write_image", &dir);
    let mut names: Vec<PathBuf> = std::fs::read_dir(corpus_dir().join("train"))
        .expect("corpus/train")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fits"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "corpus/train has {} frames", names.len());
    let mut jxl = 0;
    for path in &names {
        let bitpix = first_image_bitpix(path);
        for codec in ["JXL_1", "MIXPRED_1"] {
            if !codes(codec, bitpix) {
                continue;
            }
            jxl += usize::from(codec == "JXL_1");
            write_and_read_back(codec, path, &dir, &writer, false, true, codec);
        }
        // Each frame's outputs are checked; keep the scratch folder small.
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "fz" || e == "fits") {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    assert!(jxl >= 25, "only {jxl} train frames of 8 or 16 bits");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idf_1_through_debian_fpack_on_small_frames() {
    let dir = scratch("write-idf");
    let writer = compile_c("write_image", &dir);
    for name in &SMALL_FRAMES[..2] {
        write_and_read_back("IDF_1", &frame(name), &dir, &writer, true, true, "IDF_1");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// (ZCMPTYPE, ZTILEn, ZNAMEn/ZVALn, tile bytes of each row) of every
/// compressed image of a file.
type Tiles = (String, Vec<usize>, fpackng::codec::Params, Vec<Vec<u8>>);

fn tiles_of(path: &Path) -> Vec<Tiles> {
    let context = Context::default();
    hdus(path)
        .iter()
        .filter(|(kind, _, _)| *kind == HduKind::CompressedImage)
        .map(|(_, header, data)| {
            let info = CompressedImageInfo::parse(header, &context).unwrap();
            let table = CompressedTable::parse(header, data, &context).unwrap();
            let column = table.column("COMPRESSED_DATA").unwrap();
            let rows = (0..table.n_rows())
                .map(|r| table.var_bytes(r, column).unwrap().to_vec())
                .collect();
            (
                header.get_string("ZCMPTYPE").unwrap(),
                info.tile_axes,
                info.params,
                rows,
            )
        })
        .collect()
}

#[test]
fn tiles_and_cards_are_those_fpack_ng_writes_with_the_same_tiles() {
    let dir = scratch("write-same");
    for codec in ["JXL_1", "MIXPRED_1"] {
        for input in [
            frame(SMALL_FRAMES[1]),
            frame(SMALL_FRAMES[3]),
            fixture("uint16.fits"),
            fixture("bitpix8.fits"),
            fixture("cube3d.fits"),
        ] {
            let stem = stem(input.to_str().unwrap()).to_string();
            let by_fpack = dir.join(format!("{codec}-{stem}.fz"));
            let _ = std::fs::remove_file(&by_fpack);
            let (ok, out, err) = run(writing("fpack", codec).arg("-O").arg(&by_fpack).arg(&input));
            assert!(ok, "{out}{err}");
            let shimmed = tiles_of(&by_fpack);
            assert!(!shimmed.is_empty());
            // fpack-ng with cfitsio's tiles (all images of a file share them
            // here: fpack's default is one row).
            let options = CompressOptions {
                algorithm: codec.to_string(),
                tiling: Tiling::Axes(shimmed[0].1.clone()),
                cube: CubeMode::Off,
                ..CompressOptions::default()
            };
            let by_ng = dir.join(format!("{codec}-{stem}-ng.fz"));
            compress_file(&input, &by_ng, &options, true, InputAfter::Keep).unwrap();
            let ours = tiles_of(&by_ng);
            assert_eq!(shimmed.len(), ours.len(), "{codec} {stem}");
            for (k, (a, b)) in shimmed.iter().zip(&ours).enumerate() {
                assert_eq!(
                    (&a.0, &a.1, &a.2),
                    (&b.0, &b.1, &b.2),
                    "{codec} {stem} image {k}"
                );
                assert!(a.3 == b.3, "{codec} {stem} image {k}: tile bytes differ");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn types_the_codec_does_not_code_keep_the_asked_algorithm_with_one_line() {
    let dir = scratch("write-fallback");
    let writer = compile_c("write_image", &dir);
    for (name, algorithm, expect) in [
        ("bitpix32.fits", "RICE_1", "RICE_1"),
        ("float32.fits", "GZIP_2", "GZIP_2"),
    ] {
        let out = dir.join(format!("{name}.fz"));
        let (ok, stdout, err) = run(writing(&writer, "JXL_1")
            .arg(fixture(name))
            .arg(&out)
            .arg(algorithm));
        assert!(ok, "{stdout}{err}");
        let lines: Vec<_> = err
            .lines()
            .filter(|l| l.contains("fpack-ng shim"))
            .collect();
        assert!(
            lines.len() == 1 && lines[0].contains("JXL_1") && lines[0].contains(expect),
            "{name}: {err}"
        );
        assert_eq!(algorithms(&out), [expect], "{name}");
        let restored = restore_both(&out, &dir, name);
        if !name.starts_with("float") {
            assert_same_images(&fixture(name), &restored);
        }
    }
    // Lossy HCOMPRESS (a scale) stays cfitsio's, lossless becomes the codec.
    for (scale, expect) in [("0", "JXL_1"), ("4", "HCOMPRESS_1")] {
        let out = dir.join(format!("h{scale}.fz"));
        let _ = std::fs::remove_file(&out);
        let (ok, stdout, err) = run(writing("fpack", "JXL_1")
            .args(["-h", "-s", scale, "-O"])
            .arg(&out)
            .arg(fixture("uint16.fits")));
        assert!(ok, "{stdout}{err}");
        assert_eq!(algorithms(&out), [expect], "scale {scale}");
        let restored = restore_both(&out, &dir, &format!("h{scale}"));
        if scale == "0" {
            assert_same_images(&fixture("uint16.fits"), &restored);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether a reader finds no compressed image in `path` (absent, not FITS,
/// or FITS without one).
fn no_compressed_image(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    !bytes.starts_with(b"SIMPLE  =")
        || hdus(path)
            .iter()
            .all(|(kind, _, _)| *kind != HduKind::CompressedImage)
}

#[test]
fn bad_codecs_and_images_fail_with_cfitsio_status_and_leave_no_image() {
    let dir = scratch("write-bad");
    let writer = compile_c("write_image", &dir);
    // 64-bit integers: no codec (and no cfitsio algorithm) writes them.
    for codec in ["JXL_1", "MIXPRED_1"] {
        let out = dir.join(format!("{codec}-64.fz"));
        let (ok, stdout, err) = run(writing(&writer, codec)
            .arg(fixture("bitpix64.fits"))
            .arg(&out));
        assert!(!ok, "{codec} wrote 64-bit integers: {stdout}");
        assert!(
            err.contains("413") && err.contains(codec) && err.contains("fpack-ng shim"),
            "{codec}: {err}"
        );
        assert!(
            no_compressed_image(&out),
            "{codec}: a compressed HDU was left"
        );
    }
    // A codec name set by hand that the library does not know: cfitsio's
    // compression error with the list of codecs; no compressed HDU.
    let out = dir.join("nosuch.fz");
    let (ok, _, err) = run(writing(&writer, "NOSUCH_9")
        .arg(fixture("bitpix16.fits"))
        .arg(&out));
    assert!(!ok);
    assert!(
        err.contains("413") && err.contains("NOSUCH_9") && err.contains("JXL_1"),
        "{err}"
    );
    assert!(no_compressed_image(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shimmed_funpack_on_damaged_shim_written_tiles_reports_errors() {
    let dir = scratch("write-damaged");
    for codec in ["JXL_1", "MIXPRED_1"] {
        let packed = dir.join(format!("{codec}.fz"));
        let (ok, out, err) = run(writing("fpack", codec)
            .args(["-t", "256,64", "-O"])
            .arg(&packed)
            .arg(frame(SMALL_FRAMES[2])));
        assert!(ok, "{out}{err}");
        for (k, damaged) in damaged_copies(&packed, codec).iter().enumerate() {
            let _ = std::fs::remove_file(dir.join("x.fits"));
            let out = reading("funpack")
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
            assert_eq!(out.status.signal(), None, "{codec} ({k}) crashed: {text}");
            assert!(
                !out.status.success(),
                "{codec} ({k}) damaged tiles accepted"
            );
            assert!(text.contains(codec), "{codec} ({k}): {text}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
