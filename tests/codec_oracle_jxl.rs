//! Cross-check of the JXL_1 codec against an independent build of libjxl:
//! the one inside python's `imagecodecs`.
//!
//! Why: the unit tests prove our encoder (libjxl through our own FFI) and our
//! decoder (jxl-oxide) agree with each other. This test checks two things
//! they cannot: that another decoder reads our codestreams to the same
//! pixels, and that our FFI drives libjxl as well as a mature binding does
//! (compressed size within 1% of `imagecodecs.jpegxl_encode` at the same
//! effort on a real frame; a misconfigured encoder, e.g. a wrong option id
//! or a lossy setting, shows up as a size difference).
//!
//! The frame is read with astropy into raw little-endian integers, so nothing
//! here depends on our FITS container code. The corpus is found through env
//! `FPACKNG_CORPUS` (a directory holding `train/`), default
//! `$CARGO_MANIFEST_DIR/../shared/corpus`.
//!
//! When python3, numpy, astropy or imagecodecs is missing the test prints a
//! notice and passes, except under CI (env `CI` set), where it fails: an
//! oracle that silently never runs is no oracle.
//!
//! `measure_sizes_and_speeds` (ignored by default; run it with
//! `cargo test --release --test codec_oracle_jxl -- --ignored --nocapture`)
//! prints the size and speed comparison used to choose defaults.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use fpackng::codec::{jxl::Jxl, Codec, EncodeOptions, TileSpec};
use fpackng::tile::{PixelType, Pixels};

const ORACLE_PY: &str = r#"
import sys, time
import numpy as np

cmd = sys.argv[1]
if cmd == 'check':
    import imagecodecs
    from astropy.io import fits
    print(imagecodecs.__version__, imagecodecs.jpegxl_version())
elif cmd == 'read_image':
    # Stored (unscaled) values of the primary array, as little-endian int16.
    from astropy.io import fits
    src, dst = sys.argv[2:4]
    with fits.open(src, do_not_scale_image_data=True) as h:
        data = h[0].data
        if data.dtype.kind != 'i' or data.dtype.itemsize != 2:
            raise SystemExit('not a 16-bit integer image: %s' % data.dtype)
        data.astype('<i2').tofile(dst)
        print(' '.join(str(d) for d in data.shape[::-1]))
elif cmd == 'compare':
    # Our codestream and the frame's samples (uint16, sign bit flipped):
    # decode ours with imagecodecs, encode the samples with imagecodecs.
    import imagecodecs
    ours, samples, width, height, effort, repeats = sys.argv[2:8]
    width, height, effort, repeats = int(width), int(height), int(effort), int(repeats)
    arr = np.fromfile(samples, dtype='<u2').reshape(height, width)
    stream = open(ours, 'rb').read()
    decoded = imagecodecs.jpegxl_decode(stream)
    same = decoded.dtype == np.uint16 and decoded.shape == arr.shape and np.array_equal(decoded, arr)
    t0 = time.perf_counter()
    for _ in range(repeats):
        theirs = imagecodecs.jpegxl_encode(arr, lossless=True, effort=effort, numthreads=1)
    t_enc = (time.perf_counter() - t0) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        back = imagecodecs.jpegxl_decode(theirs, numthreads=1)
    t_dec = (time.perf_counter() - t0) / repeats
    if not np.array_equal(back, arr):
        raise SystemExit('imagecodecs does not round-trip its own stream')
    print(len(theirs), int(same), t_enc, t_dec, decoded.dtype, decoded.shape)
else:
    raise SystemExit('unknown command ' + cmd)
"#;

struct Oracle {
    dir: PathBuf,
    script: PathBuf,
}

impl Oracle {
    /// A working python3 with numpy, astropy and imagecodecs, or None after
    /// printing why (failing instead when env CI is set).
    fn new(test: &str) -> Option<Oracle> {
        let dir =
            std::env::temp_dir().join(format!("fpackng-jxl-oracle-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("oracle.py");
        std::fs::write(&script, ORACLE_PY).unwrap();
        let oracle = Oracle { dir, script };
        match oracle.run(&["check"]) {
            Ok(version) => {
                println!("oracle: imagecodecs {version}");
                Some(oracle)
            }
            Err(why) => {
                let message = format!(
                    "the JXL_1 oracle needs python3 with numpy, astropy and imagecodecs \
                     (pip install imagecodecs astropy): {why}"
                );
                if std::env::var_os("CI").is_some() {
                    panic!("{message}");
                }
                eprintln!("NOTICE: skipping: {message}");
                None
            }
        }
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("python3")
            .arg(&self.script)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn corpus_file(name: &str) -> PathBuf {
    let root = std::env::var_os("FPACKNG_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    root.join("train").join(name)
}

/// The frame's stored int16 values and its (width, height).
fn read_frame(oracle: &Oracle, name: &str) -> (Vec<i16>, usize, usize) {
    let path = corpus_file(name);
    assert!(
        path.exists(),
        "corpus frame {} is missing (set FPACKNG_CORPUS)",
        path.display()
    );
    let raw = oracle.dir.join(format!("{name}.i16"));
    let shape = oracle
        .run(&["read_image", path.to_str().unwrap(), raw.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let dims: Vec<usize> = shape
        .split_whitespace()
        .map(|d| d.parse().unwrap())
        .collect();
    assert_eq!(dims.len(), 2, "{name} is not a 2-D image: {shape}");
    let bytes = std::fs::read(&raw).unwrap();
    let pixels: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(pixels.len(), dims[0] * dims[1]);
    (pixels, dims[0], dims[1])
}

struct Comparison {
    ours: usize,
    theirs: usize,
    same_pixels: bool,
    our_encode_s: f64,
    our_decode_s: f64,
    their_encode_s: f64,
    their_decode_s: f64,
}

/// Codes the whole frame as one tile at `effort` with our codec and with
/// imagecodecs, checks both decoders, and times all four operations.
fn compare(oracle: &Oracle, name: &str, effort: u32, repeats: u32) -> Comparison {
    let (stored, width, height) = read_frame(oracle, name);
    let options = EncodeOptions {
        jxl_effort: effort,
        ..EncodeOptions::default()
    };
    let params = Jxl.encode_params(PixelType::I16, &options);
    let shape = [width, height];
    let spec = TileSpec {
        shape: &shape,
        pixel_type: PixelType::I16,
        params: &params,
        context: Default::default(),
    };
    let pixels = Pixels::I16(stored.clone());

    let t0 = Instant::now();
    let mut ours = Vec::new();
    for _ in 0..repeats {
        ours = Jxl.encode(&pixels, &spec).unwrap();
    }
    let our_encode_s = t0.elapsed().as_secs_f64() / f64::from(repeats);
    let t0 = Instant::now();
    for _ in 0..repeats {
        assert_eq!(
            Jxl.decode(&ours, &spec).unwrap(),
            pixels,
            "our own round trip of {name}"
        );
    }
    let our_decode_s = t0.elapsed().as_secs_f64() / f64::from(repeats);

    let ours_path = oracle.dir.join(format!("{name}.e{effort}.jxl"));
    std::fs::write(&ours_path, &ours).unwrap();
    let samples_path = oracle.dir.join(format!("{name}.u16"));
    let samples: Vec<u8> = stored
        .iter()
        .flat_map(|&v| ((v as u16) ^ 0x8000).to_le_bytes())
        .collect();
    std::fs::write(&samples_path, samples).unwrap();
    let (w, h, e, r) = (
        width.to_string(),
        height.to_string(),
        effort.to_string(),
        repeats.to_string(),
    );
    let reply = oracle
        .run(&[
            "compare",
            ours_path.to_str().unwrap(),
            samples_path.to_str().unwrap(),
            &w,
            &h,
            &e,
            &r,
        ])
        .unwrap_or_else(|e| panic!("imagecodecs on {name}: {e}"));
    let fields: Vec<&str> = reply.split_whitespace().collect();
    Comparison {
        ours: ours.len(),
        theirs: fields[0].parse().unwrap(),
        same_pixels: fields[1] == "1",
        our_encode_s,
        our_decode_s,
        their_encode_s: fields[2].parse().unwrap(),
        their_decode_s: fields[3].parse().unwrap(),
    }
}

#[test]
fn saao_frame_matches_imagecodecs() {
    let Some(oracle) = Oracle::new("saao") else {
        return;
    };
    let name = "saao1m_ste3_a8280271.fits";
    let c = compare(&oracle, name, 7, 1);
    let ratio = c.ours as f64 / c.theirs as f64;
    println!(
        "{name}, whole frame, effort 7: ours {} bytes, imagecodecs {} bytes, ratio {ratio:.4}",
        c.ours, c.theirs
    );
    assert!(
        c.same_pixels,
        "imagecodecs decodes our codestream of {name} to different pixels"
    );
    assert!(
        (ratio - 1.0).abs() <= 0.01,
        "our size {} differs from imagecodecs' {} by more than 1%",
        c.ours,
        c.theirs
    );
}

#[test]
#[ignore = "measurement for the report; run with --release --ignored --nocapture"]
fn measure_sizes_and_speeds() {
    let Some(oracle) = Oracle::new("measure") else {
        return;
    };
    println!("frame | effort | ours bytes | imagecodecs bytes | ratio | our enc s | their enc s | our dec (jxl-oxide) s | their dec (libjxl) s");
    for name in [
        "saao1m_ste3_a8280271.fits",
        "orion_ssdsi_m13_blue_0001.fits",
    ] {
        for effort in [7, 9] {
            let c = compare(&oracle, name, effort, 3);
            assert!(c.same_pixels, "{name} effort {effort}");
            println!(
                "{name} | {effort} | {} | {} | {:.4} | {:.3} | {:.3} | {:.3} | {:.3}",
                c.ours,
                c.theirs,
                c.ours as f64 / c.theirs as f64,
                c.our_encode_s,
                c.their_encode_s,
                c.our_decode_s,
                c.their_decode_s
            );
            println!(
                "  peak resident memory of this process so far: {}",
                peak_memory()
            );
        }
    }
}

/// VmHWM from /proc (Linux), for a rough idea of libjxl's working memory:
/// the python oracle runs in its own process and is not counted.
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}
