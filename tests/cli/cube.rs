//! CUBE_1 (inter-plane residuals, docs/cube.md) through the real tools:
//! - bit-exact round trips through fpack-ng / funpack-ng of the real JWST
//!   ramp in the corpus, of synth_ramp.py cubes (several seeds and sizes,
//!   4-D with several integrations) and of edge-value fixtures (0 next to
//!   65535, plane counts 1 and 2, 8- and 32-bit extremes), with every
//!   predictor choice;
//! - standard readers refuse a CUBE_1 HDU with an error instead of
//!   returning residuals: Debian funpack exits non-zero and writes nothing,
//!   astropy (which has no CUBE_1 plugin) raises on `.data`;
//! - `--cube auto` (the default) keeps CUBE_1 on the JWST ramp and pays at
//!   least 1.5x Debian fpack's Rice ratio there; `--cube off` stays standard.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

fn run(prog: &Path, args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    run_cmd_full(prog, &args, None, LIMIT)
}

/// A FITS file with an empty primary HDU and one image extension.
fn write_cube(path: &Path, bitpix: i64, bzero: Option<i64>, axes: &[usize], data: &[u8]) {
    let mut cards = vec![
        "SIMPLE  =                    T".to_string(),
        "BITPIX  =                    8".into(),
        "NAXIS   =                    0".into(),
        "EXTEND  =                    T".into(),
        "END".into(),
    ];
    let mut out = Vec::new();
    let block = |cards: &[String], out: &mut Vec<u8>| {
        for c in cards {
            out.extend_from_slice(format!("{c:<80}").as_bytes());
        }
        while !out.len().is_multiple_of(2880) {
            out.push(b' ');
        }
    };
    block(&cards, &mut out);
    cards = vec![
        "XTENSION= 'IMAGE   '".to_string(),
        format!("BITPIX  = {bitpix:>20}"),
        format!("NAXIS   = {:>20}", axes.len()),
    ];
    for (i, a) in axes.iter().enumerate() {
        cards.push(format!("NAXIS{:<3}= {a:>20}", i + 1));
    }
    cards.push("PCOUNT  =                    0".into());
    cards.push("GCOUNT  =                    1".into());
    if let Some(z) = bzero {
        cards.push(format!("BZERO   = {z:>20}"));
        cards.push("BSCALE  =                    1".into());
    }
    cards.push("EXTNAME = 'SCI     '".into());
    cards.push("END".into());
    block(&cards, &mut out);
    out.extend_from_slice(data);
    while out.len() % 2880 != 0 {
        out.push(0);
    }
    std::fs::write(path, out).unwrap();
}

/// uint16 values as FITS stores them (BZERO = 32768).
fn u16_bytes(values: &[u32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| ((v as i64 - 32768) as i16).to_be_bytes())
        .collect()
}

/// Edge-value fixtures: (name, path, planes along axes 3 and up).
fn edge_fixtures(dir: &Path) -> Vec<(String, PathBuf, usize)> {
    let mut out = Vec::new();
    let mut add = |name: &str, bitpix, bzero, axes: &[usize], data: Vec<u8>| {
        let p = dir.join(format!("{name}.fits"));
        write_cube(&p, bitpix, bzero, axes, &data);
        out.push((name.to_string(), p, axes[2..].iter().product()));
    };
    // 0 next to 65535, flipping from plane to plane: ±65535 differences.
    for (name, axes) in [
        ("checker_3", vec![9usize, 7, 3]),
        ("checker_2planes", vec![9, 7, 2]),
        ("checker_1plane", vec![9, 7, 1]),
        ("checker_4d", vec![5, 4, 2, 3]),
        ("checker_4d_1group", vec![5, 4, 1, 3]),
    ] {
        let n: usize = axes.iter().product();
        let plane = axes[0] * axes[1];
        let v: Vec<u32> = (0..n)
            .map(|i| if (i + i / plane) % 2 == 0 { 0 } else { 65535 })
            .collect();
        add(name, 16, Some(32768), &axes, u16_bytes(&v));
    }
    // A saturating ramp with a cosmic-ray jump and a reset anomaly.
    let (nx, ny, ng) = (16usize, 8usize, 6usize);
    let mut v = Vec::new();
    for g in 0..ng {
        for i in 0..nx * ny {
            let mut x = 12_000 + (i as u32 * 37) % 900 + g as u32 * (50 + i as u32 % 3000);
            if i == 5 && g >= 3 {
                x += 30_000; // cosmic-ray jump
            }
            if i == 9 && g == 4 {
                x = 0; // reset anomaly
            }
            v.push(x.min(65535));
        }
    }
    add(
        "ramp_saturating",
        16,
        Some(32768),
        &[nx, ny, ng],
        u16_bytes(&v),
    );
    // 8-bit and 32-bit extremes.
    let b: Vec<u8> = (0..6 * 5 * 4)
        .map(|i| if i % 3 == 0 { 255 } else { 0 })
        .collect();
    add("bytes_extremes", 8, None, &[6, 5, 4], b);
    let w: Vec<u8> = (0..6 * 5 * 3)
        .flat_map(|i| (if i % 2 == 0 { i32::MAX } else { i32::MIN }).to_be_bytes())
        .collect();
    add("int32_extremes", 32, None, &[6, 5, 3], w);
    out
}

fn synth_ramps(dir: &Path) -> Vec<(String, PathBuf, usize)> {
    let script = corpus_root().join("../tools/synth_ramp.py");
    if !script.is_file() {
        missing(&format!("{} not found", script.display()));
        return Vec::new();
    }
    let python = tool("python3");
    let Some(python) = python else {
        missing("python3");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (seed, nints, ngroups, ny, nx) in
        [(1, 1, 5, 48, 64), (2, 3, 4, 17, 33), (3, 2, 10, 64, 128)]
    {
        let name = format!("synth_s{seed}_{nints}x{ngroups}x{ny}x{nx}");
        let p = dir.join(format!("{name}.fits"));
        let r = run(
            &python,
            &[
                &p2s(&script),
                "--seed",
                &seed.to_string(),
                "--nints",
                &nints.to_string(),
                "--ngroups",
                &ngroups.to_string(),
                "--ny",
                &ny.to_string(),
                "--nx",
                &nx.to_string(),
                "--out",
                &p2s(&p),
            ],
        );
        if !r.ok() {
            missing(&format!("synth_ramp.py failed: {}", r.describe()));
            return Vec::new();
        }
        out.push((name, p, nints * ngroups));
    }
    out
}

fn jwst_cube() -> Option<PathBuf> {
    let p = corpus_root().join("cubes/jwst_fgs_acq1_jw01019001001_uncal.fits");
    if p.is_file() {
        Some(p)
    } else {
        missing(&format!("{} not found", p.display()));
        None
    }
}

/// ZCMPTYPE of every compressed HDU.
fn zcmptypes(fz: &Path) -> Vec<String> {
    let (_, hdus) = split_file(fz).unwrap();
    hdus.iter()
        .filter(|h| h.is_compressed_image())
        .map(|h| {
            h.value("ZCMPTYPE")
                .unwrap_or_default()
                .trim_matches(|c| c == '\'' || c == ' ')
                .to_string()
        })
        .collect()
}

/// Compressed data bytes of the image HDUs.
fn data_bytes(fz: &Path) -> usize {
    let (_, hdus) = split_file(fz).unwrap();
    hdus.iter()
        .filter(|h| h.is_compressed_image())
        .map(|h| h.data_len())
        .sum()
}

fn restored_exactly(orig: &Path, back: &Path) -> Result<(), String> {
    match compare_bytes(orig, back) {
        ByteCompare::Differs(d) => Err(d),
        _ => Ok(()),
    }
}

#[test]
fn cubes_round_trip_bit_exactly_with_every_predictor() {
    let tmp = TempDir::new("cube-rt");
    let mut inputs = edge_fixtures(tmp.path());
    inputs.extend(synth_ramps(tmp.path()));
    if let Some(j) = jwst_cube() {
        inputs.push(("jwst".into(), j, 12));
    }
    let mut failures = Vec::new();
    for (name, path, planes) in &inputs {
        for mode in ["auto", "on", "prev", "linear", "off"] {
            for codec in ["", "--jxl", "-g2"] {
                let fz = tmp.join(&format!("{name}-{mode}{codec}.fz"));
                let back = tmp.join(&format!("{name}-{mode}{codec}.fits"));
                let mut args = vec!["--cube", mode];
                if !codec.is_empty() {
                    args.push(codec);
                }
                args.extend(["-O", fz.to_str().unwrap(), path.to_str().unwrap()]);
                let r = run(&fpack_ng(), &args);
                if !r.ok() {
                    failures.push(format!("{name} {mode} {codec}: fpack-ng: {}", r.describe()));
                    continue;
                }
                let types = zcmptypes(&fz);
                let forced = !matches!(mode, "auto" | "off");
                // JXL_1 cannot code 32-bit pixels: the file falls back to Rice.
                let can = *planes >= 2 && !(codec == "--jxl" && name.starts_with("int32"));
                if forced && can && types != ["CUBE_1"] {
                    failures.push(format!(
                        "{name} {mode} {codec}: wrote {types:?}, not CUBE_1"
                    ));
                }
                if (mode == "off" || !can) && types.iter().any(|t| t == "CUBE_1") {
                    failures.push(format!(
                        "{name} {mode} {codec}: CUBE_1 where it must not be"
                    ));
                }
                let r = run(
                    &funpack_ng(),
                    &["-O", back.to_str().unwrap(), fz.to_str().unwrap()],
                );
                if !r.ok() {
                    failures.push(format!(
                        "{name} {mode} {codec}: funpack-ng: {}",
                        r.describe()
                    ));
                    continue;
                }
                if let Err(e) = restored_exactly(path, &back) {
                    failures.push(format!("{name} {mode} {codec}: restored differs: {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn standard_readers_refuse_cube_1() {
    let tmp = TempDir::new("cube-refuse");
    let fixtures = edge_fixtures(tmp.path());
    let (_, input, _) = fixtures
        .iter()
        .find(|(n, _, _)| n == "ramp_saturating")
        .unwrap();
    let fz = tmp.join("cube.fz");
    let r = run(
        &fpack_ng(),
        &[
            "--cube",
            "on",
            "-O",
            fz.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
    );
    assert!(r.ok(), "{}", r.describe());
    assert_eq!(zcmptypes(&fz), ["CUBE_1"]);

    if let Some(funpack) = require_tool("funpack") {
        let out = tmp.join("by-funpack.fits");
        let r = run(
            &funpack,
            &["-O", out.to_str().unwrap(), fz.to_str().unwrap()],
        );
        assert!(
            !r.ok(),
            "Debian funpack accepted a CUBE_1 file: {}",
            r.describe()
        );
        let wrote_pixels = std::fs::metadata(&out).is_ok_and(|m| m.len() > 2880 * 2);
        assert!(
            !wrote_pixels || restored_exactly(input, &out).is_ok(),
            "Debian funpack wrote wrong pixels"
        );
    }
    if let Some(python) = tool("python3") {
        let script = "import sys, warnings\n\
            from astropy.io import fits\n\
            warnings.simplefilter('ignore')\n\
            with fits.open(sys.argv[1]) as h:\n\
            \x20   try:\n\
            \x20       d = h[1].data\n\
            \x20   except Exception as e:\n\
            \x20       print('REFUSED', type(e).__name__, e); sys.exit(0)\n\
            \x20   print('RETURNED', type(h[1]).__name__, getattr(d, 'shape', None)); sys.exit(3)\n";
        let r = run(&python, &["-c", script, fz.to_str().unwrap()]);
        if r.stderr_text().contains("No module named") {
            missing("astropy");
        } else {
            assert!(
                r.ok() && r.stdout_text().contains("REFUSED") && r.stdout_text().contains("CUBE_1"),
                "astropy did not refuse CUBE_1: {}",
                r.describe()
            );
        }
    } else {
        missing("python3");
    }
}

#[test]
fn cubes_stay_standard_by_default_and_cube_1_beats_fpack_when_chosen() {
    let Some(jwst) = jwst_cube() else {
        return;
    };
    let tmp = TempDir::new("cube-jwst");
    // Standard by default: plain fpack-ng (and -r) write RICE_1, and -v says
    // what CUBE_1 would have saved.
    let plain = tmp.join("plain.fz");
    let r = run(
        &fpack_ng(),
        &[
            "-v",
            "-r",
            "-O",
            plain.to_str().unwrap(),
            jwst.to_str().unwrap(),
        ],
    );
    assert!(r.ok(), "{}", r.describe());
    assert_eq!(zcmptypes(&plain), ["RICE_1"]);
    assert!(
        format!("{}{}", r.stdout_text(), r.stderr_text()).contains("CUBE_1 (inner RICE_1) would"),
        "-v does not say what CUBE_1 would save: {}",
        r.describe()
    );
    // With a non-standard codec, --cube auto keeps CUBE_1 when it pays.
    let mixed = tmp.join("mix.fz");
    let r = run(
        &fpack_ng(),
        &[
            "-v",
            "--mix",
            "-O",
            mixed.to_str().unwrap(),
            jwst.to_str().unwrap(),
        ],
    );
    assert!(r.ok(), "{}", r.describe());
    assert_eq!(zcmptypes(&mixed), ["CUBE_1"]);
    let ours = tmp.join("ours.fz");
    let r = run(
        &fpack_ng(),
        &[
            "-v",
            "--cube",
            "on",
            "-O",
            ours.to_str().unwrap(),
            jwst.to_str().unwrap(),
        ],
    );
    assert!(r.ok(), "{}", r.describe());
    assert_eq!(zcmptypes(&ours), ["CUBE_1"]);
    assert!(
        r.stdout_text().contains("CUBE_1") || r.stderr_text().contains("CUBE_1"),
        "-v does not say that CUBE_1 was chosen: {}",
        r.describe()
    );
    let off = tmp.join("off.fz");
    let r = run(
        &fpack_ng(),
        &[
            "--cube",
            "off",
            "-O",
            off.to_str().unwrap(),
            jwst.to_str().unwrap(),
        ],
    );
    assert!(r.ok(), "{}", r.describe());
    assert_eq!(zcmptypes(&off), ["RICE_1"]);
    let Some(fpack) = require_tool("fpack") else {
        return;
    };
    let theirs = tmp.join("theirs.fz");
    let r = run(
        &fpack,
        &["-O", theirs.to_str().unwrap(), jwst.to_str().unwrap()],
    );
    assert!(r.ok(), "{}", r.describe());
    let (a, b) = (data_bytes(&ours), data_bytes(&theirs));
    assert!(
        (a as f64) * 1.5 <= b as f64,
        "CUBE_1 {a} bytes vs fpack Rice {b} bytes: less than 1.5x"
    );
}

/// Standard by default: plain `fpack-ng FILE` and `fpack-ng -r FILE` on the
/// real JWST ramp and on synth_ramp.py cubes write only RICE_1, which Debian
/// funpack and astropy (no plugin) read back identically; `recompress --to
/// rice` keeps them standard too, while `--to mixpred` may use CUBE_1.
#[test]
fn plain_fpack_ng_and_recompress_to_rice_write_standard_cubes() {
    let tmp = TempDir::new("cube-standard");
    let mut cubes: Vec<(String, PathBuf)> = synth_ramps(&tmp.join("."))
        .into_iter()
        .map(|(n, p, _)| (n, p))
        .collect();
    if let Some(j) = jwst_cube() {
        cubes.push(("jwst".into(), j));
    }
    if cubes.is_empty() {
        return;
    }
    let funpack = require_tool("funpack");
    let python = tool("python3");
    for (name, src) in &cubes {
        for flags in [&[][..], &["-r"][..]] {
            let fz = tmp.join(&format!("{name}{}.fz", flags.join("")));
            let mut args: Vec<&str> = flags.to_vec();
            let (fz_s, src_s) = (p2s(&fz), p2s(src));
            args.extend(["-O", &fz_s, &src_s]);
            let r = run(&fpack_ng(), &args);
            assert!(r.ok(), "{}", r.describe());
            assert!(
                zcmptypes(&fz).iter().all(|z| z == "RICE_1"),
                "{name} {flags:?}: {:?}",
                zcmptypes(&fz)
            );
            if let Some(funpack) = &funpack {
                let back = tmp.join(&format!("{name}{}.funpack.fits", flags.join("")));
                let r = run(funpack, &["-O", &p2s(&back), &fz_s]);
                assert!(r.ok(), "Debian funpack: {}", r.describe());
                restored_exactly(src, &back).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            if let Some(python) = &python {
                let script = "import sys, numpy as np\n\
                    from astropy.io import fits\n\
                    a = [h.data for h in fits.open(sys.argv[1]) if h.data is not None and h.is_image]\n\
                    b = [h.data for h in fits.open(sys.argv[2]) if h.data is not None and h.is_image]\n\
                    sys.exit(0 if len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)) else 3)\n";
                let r = run(python, &["-c", script, &src_s, &fz_s]);
                if r.stderr_text().contains("No module named") {
                    missing("astropy");
                } else {
                    assert!(
                        r.ok(),
                        "astropy read {name} {flags:?} differently: {}",
                        r.describe()
                    );
                }
            }
        }
    }
    // recompress: --to rice stays standard; --to mixpred may choose CUBE_1.
    if let Some(j) = jwst_cube() {
        for (to, want) in [("rice", "RICE_1"), ("mixpred", "CUBE_1")] {
            let dir = tmp.join(&format!("recompress-{to}"));
            std::fs::create_dir_all(&dir).unwrap();
            let copy = dir.join("ramp.fits");
            std::fs::copy(&j, &copy).unwrap();
            let journal = tmp.join(&format!("{to}.journal"));
            let r = run(
                &fpack_ng(),
                &[
                    "recompress",
                    "--to",
                    to,
                    "--quiet",
                    "--journal",
                    &p2s(&journal),
                    &p2s(&dir),
                ],
            );
            assert!(r.ok(), "{}", r.describe());
            assert_eq!(
                zcmptypes(&dir.join("ramp.fits.fz")),
                [want],
                "recompress --to {to}"
            );
        }
    }
}
