//! Cross-checks RICE_1, GZIP_1 and GZIP_2 against cfitsio's own C codecs, as
//! wrapped by astropy (`astropy.io.fits.hdu.compressed._codecs`).
//!
//! Why an oracle: the unit tests prove our codecs are self-consistent, not
//! that fpack and funpack agree with them. Here our RICE_1 bytes must be
//! identical to cfitsio's for the same pixels, and gzip tiles must decode
//! both ways. Python is driven through `std::process::Command`, one run per
//! test, with raw big-endian pixel bytes exchanged through files in a
//! private temporary directory.
//!
//! Without python3 + astropy the tests print a notice and pass, except when
//! the `CI` environment variable is set: there a missing oracle is a failure.
//! The real-data test reads the shared corpus from `FPACKNG_CORPUS`, or else
//! from `$CARGO_MANIFEST_DIR/../shared/corpus`.

use std::path::{Path, PathBuf};
use std::process::Command;

use fpackng::codec::{self, Codec, EncodeOptions, Params, TileSpec};
use fpackng::tile::{PixelType, Pixels};

/// Reads a manifest of operations, one per line, and performs each with
/// astropy's wrappers of the cfitsio codecs. Files hold big-endian pixels.
const ORACLE_SCRIPT: &str = r#"
import sys, zlib
import numpy as np
from astropy.io import fits
from astropy.io.fits.hdu.compressed._codecs import Rice1, Gzip1, Gzip2

def load(path, dtype):
    with open(path, 'rb') as f:
        return np.frombuffer(f.read(), dtype=dtype)

def save(path, data):
    with open(path, 'wb') as f:
        f.write(bytes(data))

for line in open(sys.argv[1]):
    f = line.split()
    if not f:
        continue
    op = f[0]
    if op == 'rice_encode':
        dtype, block, src, dst = f[1], int(f[2]), f[3], f[4]
        a = load(src, dtype)
        if a.dtype.itemsize == 1:
            a = a.view('i1')
        codec = Rice1(blocksize=block, bytepix=a.dtype.itemsize, tilesize=a.size)
        save(dst, codec.encode(a))
    elif op == 'rice_decode':
        bytepix, block, count, src, dst = int(f[1]), int(f[2]), int(f[3]), f[4], f[5]
        codec = Rice1(blocksize=block, bytepix=bytepix, tilesize=count)
        out = np.asarray(codec.decode(load(src, 'u1')))
        save(dst, out.astype(out.dtype.newbyteorder('>')).tobytes())
    elif op == 'gzip_decode':
        kind, itemsize, src, dst = f[1], int(f[2]), f[3], f[4]
        codec = Gzip1() if kind == 'GZIP_1' else Gzip2(itemsize=itemsize)
        save(dst, np.asarray(codec.decode(load(src, 'u1'))).tobytes())
    elif op == 'gzip_encode':
        kind, dtype, src, dst = f[1], f[2], f[3], f[4]
        a = load(src, dtype)
        codec = Gzip1() if kind == 'GZIP_1' else Gzip2(itemsize=a.dtype.itemsize)
        save(dst, codec.encode(a))
    elif op == 'zlib_gzip_level1':
        # The exact call cfitsio makes: deflateInit2(level 1, windowBits 15+16).
        src, dst = f[1], f[2]
        c = zlib.compressobj(1, zlib.DEFLATED, 31)
        save(dst, c.compress(load(src, 'u1').tobytes()) + c.flush())
    elif op == 'corpus_rows':
        # The first rows of an image's stored (unscaled) integers, one file
        # per row, plus one file holding all of them as a single tile.
        path, rows, prefix = f[1], int(f[2]), f[3]
        with fits.open(path, do_not_scale_image_data=True) as hdus:
            data = np.asarray(hdus[0].data[:rows])
        big = data.astype(data.dtype.newbyteorder('>'))
        for i in range(rows):
            save(f'{prefix}_row{i}.bin', big[i].tobytes())
        save(f'{prefix}_all.bin', big.tobytes())
        save(f'{prefix}_dtype.txt', big.dtype.str.encode())
    else:
        raise SystemExit(f'unknown oracle operation {op!r}')
"#;

/// A private scratch directory, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "fpackng-oracle-{test}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Whether python3 with astropy's codec wrappers can be run. Where it cannot,
/// fail under CI and skip (with a notice) elsewhere.
fn oracle_available() -> bool {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import numpy; from astropy.io.fits.hdu.compressed._codecs import Rice1, Gzip1, Gzip2",
        ])
        .output();
    let problem = match probe {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "python3 cannot import astropy's codecs: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("python3 cannot be run: {e}"),
    };
    if in_ci() {
        panic!("the cfitsio oracle is required under CI: {problem}");
    }
    eprintln!("NOTICE: skipping cfitsio oracle test: {problem}");
    false
}

/// A manifest of oracle operations, run by one python process.
struct Manifest {
    lines: Vec<String>,
}

impl Manifest {
    fn new() -> Manifest {
        Manifest { lines: Vec::new() }
    }

    fn add(&mut self, fields: &[&str]) {
        self.lines.push(fields.join(" "));
    }

    fn run(&self, scratch: &Scratch) {
        let manifest = scratch.path("manifest.txt");
        std::fs::write(&manifest, self.lines.join("\n")).expect("write manifest");
        let out = Command::new("python3")
            .arg("-c")
            .arg(ORACLE_SCRIPT)
            .arg(&manifest)
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "oracle script failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn path_text(path: &Path) -> String {
    let text = path.to_str().expect("scratch paths are UTF-8");
    assert!(
        !text.contains(char::is_whitespace),
        "manifest paths must not contain blanks: {text}"
    );
    text.to_string()
}

fn numpy_dtype(pixel_type: PixelType) -> &'static str {
    match pixel_type {
        PixelType::U8 => "u1",
        PixelType::I16 => ">i2",
        PixelType::I32 => ">i4",
        PixelType::I64 => ">i8",
        PixelType::F32 => ">f4",
        PixelType::F64 => ">f8",
    }
}

/// SplitMix64: fixed seeds, reproducible tiles.
struct TestRng(u64);

impl TestRng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn noise(&mut self, level: f64, spread: f64) -> f64 {
        let sum: f64 = (0..4)
            .map(|_| (self.next() >> 11) as f64 / (1u64 << 53) as f64)
            .sum();
        level + (sum - 2.0) * spread * 1.7
    }
}

/// Integer tiles covering every kind of Rice block: constant, low noise,
/// high noise (raw blocks), full-range random and alternating extremes.
fn integer_tiles(rng: &mut TestRng, len: usize) -> Vec<(String, Vec<i64>)> {
    let mut tiles = vec![("constant".to_string(), vec![42; len])];
    for spread in [0.3, 4.0, 150.0, 5000.0, 1e6] {
        let values = (0..len).map(|_| rng.noise(100.0, spread) as i64).collect();
        tiles.push((format!("noise{spread}"), values));
    }
    tiles.push((
        "random".into(),
        (0..len).map(|_| rng.next() as i64).collect(),
    ));
    tiles.push((
        "extremes".into(),
        (0..len)
            .map(|i| if i % 3 == 0 { i64::MIN } else { i64::MAX })
            .collect(),
    ));
    tiles
}

/// The values as pixels of `pixel_type`, saturated at the type's range
/// (so extremes become 0/255, -32768/32767, i32::MIN/i32::MAX).
fn saturate(values: &[i64], pixel_type: PixelType) -> Pixels {
    match pixel_type {
        PixelType::U8 => Pixels::U8(values.iter().map(|&v| v.clamp(0, 255) as u8).collect()),
        PixelType::I16 => Pixels::I16(
            values
                .iter()
                .map(|&v| v.clamp(i16::MIN.into(), i16::MAX.into()) as i16)
                .collect(),
        ),
        PixelType::I32 => Pixels::I32(
            values
                .iter()
                .map(|&v| v.clamp(i32::MIN.into(), i32::MAX.into()) as i32)
                .collect(),
        ),
        PixelType::I64 => Pixels::I64(values.to_vec()),
        PixelType::F32 => Pixels::F32(values.iter().map(|&v| v as f32 * 0.125).collect()),
        PixelType::F64 => Pixels::F64(values.iter().map(|&v| v as f64 * 1e-7).collect()),
    }
}

fn rice_params(block: usize, pixel_type: PixelType) -> Params {
    let mut params = codec::rice::Rice.encode_params(pixel_type, &EncodeOptions::default());
    params.set("BLOCKSIZE", codec::ParamValue::Int(block as i64));
    params
}

fn rice_encode(pixels: &Pixels, block: usize) -> Vec<u8> {
    let params = rice_params(block, pixels.pixel_type());
    let shape = [pixels.len()];
    let spec = TileSpec {
        shape: &shape,
        pixel_type: pixels.pixel_type(),
        params: &params,
        context: Default::default(),
    };
    codec::rice::Rice
        .encode(pixels, &spec)
        .expect("rice encode")
}

/// A Rice case: our stream must equal cfitsio's, and cfitsio must decode
/// our stream back to the pixels.
struct RiceCase {
    label: String,
    pixels: Pixels,
    block: usize,
    ours: Vec<u8>,
    theirs: PathBuf,
    their_decoding: PathBuf,
}

fn queue_rice_case(
    scratch: &Scratch,
    manifest: &mut Manifest,
    cases: &mut Vec<RiceCase>,
    label: String,
    pixels: Pixels,
    block: usize,
) {
    let index = cases.len();
    let input = scratch.path(&format!("rice{index}.in"));
    let ours_file = scratch.path(&format!("rice{index}.ours"));
    let theirs = scratch.path(&format!("rice{index}.theirs"));
    let their_decoding = scratch.path(&format!("rice{index}.decoded"));
    std::fs::write(&input, pixels.to_be_bytes()).expect("write pixels");
    let ours = rice_encode(&pixels, block);
    std::fs::write(&ours_file, &ours).expect("write stream");
    let pixel_type = pixels.pixel_type();
    manifest.add(&[
        "rice_encode",
        numpy_dtype(pixel_type),
        &block.to_string(),
        &path_text(&input),
        &path_text(&theirs),
    ]);
    manifest.add(&[
        "rice_decode",
        &pixel_type.size().to_string(),
        &block.to_string(),
        &pixels.len().to_string(),
        &path_text(&ours_file),
        &path_text(&their_decoding),
    ]);
    cases.push(RiceCase {
        label,
        pixels,
        block,
        ours,
        theirs,
        their_decoding,
    });
}

fn check_rice_cases(cases: &[RiceCase]) {
    let mut failures = Vec::new();
    for case in cases {
        let theirs = std::fs::read(&case.theirs).expect("read cfitsio stream");
        if theirs != case.ours {
            let first_difference = theirs
                .iter()
                .zip(&case.ours)
                .position(|(a, b)| a != b)
                .unwrap_or(theirs.len().min(case.ours.len()));
            failures.push(format!(
                "{} (block {}): cfitsio wrote {} bytes, we wrote {}; first difference at byte {}",
                case.label,
                case.block,
                theirs.len(),
                case.ours.len(),
                first_difference
            ));
        }
        let decoded = std::fs::read(&case.their_decoding).expect("read cfitsio decoding");
        if decoded != case.pixels.to_be_bytes() {
            failures.push(format!(
                "{} (block {}): cfitsio decodes our stream to different pixels",
                case.label, case.block
            ));
        }
        // And we decode cfitsio's stream to the pixels.
        let params = rice_params(case.block, case.pixels.pixel_type());
        let shape = [case.pixels.len()];
        let spec = TileSpec {
            shape: &shape,
            pixel_type: case.pixels.pixel_type(),
            params: &params,
            context: Default::default(),
        };
        match codec::rice::Rice.decode(&theirs, &spec) {
            Ok(pixels) if pixels == case.pixels => {}
            other => failures.push(format!(
                "{} (block {}): we decode cfitsio's stream as {:?}",
                case.label,
                case.block,
                other.map(|p| p.len())
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} Rice cases differ from cfitsio:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn rice_streams_identical_to_cfitsio_for_synthetic_tiles() {
    if !oracle_available() {
        return;
    }
    let scratch = Scratch::new("rice-synthetic");
    let mut manifest = Manifest::new();
    let mut cases = Vec::new();
    let mut rng = TestRng(0xC0FFEE);
    for pixel_type in [PixelType::U8, PixelType::I16, PixelType::I32] {
        for len in [1usize, 2, 31, 32, 33, 1000, 4099] {
            for (name, values) in integer_tiles(&mut rng, len) {
                for block in [16, 32] {
                    let label = format!("{pixel_type:?} {name} x{len}");
                    let pixels = saturate(&values, pixel_type);
                    queue_rice_case(&scratch, &mut manifest, &mut cases, label, pixels, block);
                }
            }
        }
    }
    manifest.run(&scratch);
    check_rice_cases(&cases);
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("FPACKNG_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    let problem = format!(
        "corpus directory {} not found (set FPACKNG_CORPUS)",
        dir.display()
    );
    if in_ci() {
        panic!("{problem}");
    }
    eprintln!("NOTICE: skipping real-data oracle test: {problem}");
    None
}

#[test]
fn rice_streams_identical_to_cfitsio_on_real_data() {
    let Some(corpus) = corpus_dir() else { return };
    if !oracle_available() {
        return;
    }
    let image = corpus.join("train/saao1m_ste3_a8280271.fits");
    assert!(image.is_file(), "missing corpus file {}", image.display());
    let scratch = Scratch::new("rice-real");
    let rows = 12;
    let prefix = scratch.path("saao");
    let mut extract = Manifest::new();
    extract.add(&[
        "corpus_rows",
        &path_text(&image),
        &rows.to_string(),
        &path_text(&prefix),
    ]);
    extract.run(&scratch);

    let dtype = std::fs::read_to_string(scratch.path("saao_dtype.txt")).expect("dtype");
    assert_eq!(dtype, ">i2", "the SAAO frame is a 16-bit image");
    let mut manifest = Manifest::new();
    let mut cases = Vec::new();
    for row in 0..rows {
        let bytes = std::fs::read(scratch.path(&format!("saao_row{row}.bin"))).expect("row");
        let pixels = Pixels::from_be_bytes(PixelType::I16, &bytes);
        assert_eq!(pixels.len(), 536);
        queue_rice_case(
            &scratch,
            &mut manifest,
            &mut cases,
            format!("saao row {row}"),
            pixels,
            32,
        );
    }
    let bytes = std::fs::read(scratch.path("saao_all.bin")).expect("rows");
    let shorts = Pixels::from_be_bytes(PixelType::I16, &bytes);
    // The same pixels as 32-bit integers (what quantized or BITPIX 32 tiles
    // look like), and as bytes of their low-order half (BITPIX 8).
    let (ints, low_bytes) = match &shorts {
        Pixels::I16(v) => (
            Pixels::I32(v.iter().map(|&x| i32::from(x) * 3 + 70_000).collect()),
            Pixels::U8(v.iter().map(|&x| x as u8).collect()),
        ),
        _ => unreachable!("decoded as int16 above"),
    };
    for block in [16, 32] {
        queue_rice_case(
            &scratch,
            &mut manifest,
            &mut cases,
            "saao rows as one tile".into(),
            shorts.clone(),
            block,
        );
        queue_rice_case(
            &scratch,
            &mut manifest,
            &mut cases,
            "saao rows as int32".into(),
            ints.clone(),
            block,
        );
        queue_rice_case(
            &scratch,
            &mut manifest,
            &mut cases,
            "saao rows as bytes".into(),
            low_bytes.clone(),
            block,
        );
    }
    manifest.run(&scratch);
    check_rice_cases(&cases);
}

#[test]
fn gzip_tiles_decode_both_ways_with_cfitsio_wrappers() {
    if !oracle_available() {
        return;
    }
    let scratch = Scratch::new("gzip");
    let mut manifest = Manifest::new();
    let params = Params::new();
    let mut rng = TestRng(0xF00D);
    let all_types = PixelType::ALL;
    struct GzipCase {
        label: String,
        codec: &'static dyn Codec,
        pixels: Pixels,
        their_decoding: PathBuf,
        their_stream: PathBuf,
        zlib_stream: PathBuf,
        ours: Vec<u8>,
    }
    let mut cases = Vec::new();
    for codec in [
        &codec::gzip::Gzip1 as &'static dyn Codec,
        &codec::gzip::Gzip2,
    ] {
        for pixel_type in all_types {
            for len in [1usize, 33, 1000] {
                let values: Vec<i64> = (0..len).map(|_| rng.noise(0.0, 700.0) as i64).collect();
                let mut pixels = saturate(&values, pixel_type);
                if let Pixels::I64(v) = &mut pixels {
                    v[0] = i64::MIN;
                }
                let index = cases.len();
                let input = scratch.path(&format!("gz{index}.in"));
                let ours_file = scratch.path(&format!("gz{index}.ours"));
                let their_decoding = scratch.path(&format!("gz{index}.decoded"));
                let their_stream = scratch.path(&format!("gz{index}.theirs"));
                let zlib_stream = scratch.path(&format!("gz{index}.zlib"));
                std::fs::write(&input, pixels.to_be_bytes()).expect("write pixels");
                let shape = [len];
                let spec = TileSpec {
                    shape: &shape,
                    pixel_type,
                    params: &params,
                    context: Default::default(),
                };
                let ours = codec.encode(&pixels, &spec).expect("gzip encode");
                std::fs::write(&ours_file, &ours).expect("write stream");
                let itemsize = pixel_type.size().to_string();
                manifest.add(&[
                    "gzip_decode",
                    codec.id(),
                    &itemsize,
                    &path_text(&ours_file),
                    &path_text(&their_decoding),
                ]);
                manifest.add(&[
                    "gzip_encode",
                    codec.id(),
                    numpy_dtype(pixel_type),
                    &path_text(&input),
                    &path_text(&their_stream),
                ]);
                manifest.add(&[
                    "zlib_gzip_level1",
                    &path_text(&input),
                    &path_text(&zlib_stream),
                ]);
                cases.push(GzipCase {
                    label: format!("{} {pixel_type:?} x{len}", codec.id()),
                    codec,
                    pixels,
                    their_decoding,
                    their_stream,
                    zlib_stream,
                    ours,
                });
            }
        }
    }
    manifest.run(&scratch);

    let mut failures = Vec::new();
    let mut same_as_zlib = 0;
    let mut gzip1_cases = 0;
    for case in &cases {
        let decoded = std::fs::read(&case.their_decoding).expect("read decoding");
        if decoded != case.pixels.to_be_bytes() {
            failures.push(format!(
                "{}: astropy decodes our stream differently",
                case.label
            ));
        }
        let theirs = std::fs::read(&case.their_stream).expect("read astropy stream");
        let shape = [case.pixels.len()];
        let spec = TileSpec {
            shape: &shape,
            pixel_type: case.pixels.pixel_type(),
            params: &params,
            context: Default::default(),
        };
        match case.codec.decode(&theirs, &spec) {
            Ok(pixels) if pixels == case.pixels => {}
            other => failures.push(format!(
                "{}: we decode astropy's stream as {other:?}",
                case.label
            )),
        }
        if case.codec.id() == "GZIP_1" {
            gzip1_cases += 1;
            let zlib = std::fs::read(&case.zlib_stream).expect("read zlib stream");
            if zlib == case.ours {
                same_as_zlib += 1;
            }
            // A stream from zlib called exactly as cfitsio calls it must decode.
            match case.codec.decode(&zlib, &spec) {
                Ok(pixels) if pixels == case.pixels => {}
                other => failures.push(format!(
                    "{}: we decode zlib's stream as {other:?}",
                    case.label
                )),
            }
        }
    }
    eprintln!(
        "GZIP_1: {same_as_zlib} of {gzip1_cases} streams byte-identical to zlib level 1 (informational)"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
