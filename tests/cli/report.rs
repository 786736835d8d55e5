//! bench/report.py (issue 9's benchmark report) in --quick mode on two small
//! fixtures, checked against sizes computed here independently: each input is
//! compressed again with fpack-ng (-r, -g2) and Debian fpack (-r), the data
//! units of the compressed HDUs (NAXIS1*NAXIS2 + PCOUNT) are measured with the
//! test's own FITS splitter, and the report's JSON and its Table 1 ratio must
//! agree with them. The image bytes (the numerator) are recomputed the same way.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const INPUTS: [&str; 2] = ["uint16.fits", "bitpix16.fits"];

/// Sum of the image data bytes of `path` (all HDUs with NAXIS > 0 that are images).
fn image_bytes(path: &Path) -> usize {
    let (_, hdus) = split_file(path).unwrap();
    hdus.iter()
        .filter(|h| {
            h.int("NAXIS").unwrap_or(0) > 0 && h.value("XTENSION").is_none_or(|x| x == "IMAGE")
        })
        .map(|h| h.data_len())
        .sum()
}

/// Compressed data bytes of `path`: NAXIS1*NAXIS2 + PCOUNT of every ZIMAGE HDU.
fn compressed_bytes(path: &Path) -> usize {
    let (_, hdus) = split_file(path).unwrap();
    let z: Vec<_> = hdus.iter().filter(|h| h.is_compressed_image()).collect();
    assert!(!z.is_empty(), "{}: no compressed HDU", path.display());
    z.iter()
        .map(|h| {
            let n = (h.int("NAXIS1").unwrap() * h.int("NAXIS2").unwrap()
                + h.int("PCOUNT").unwrap_or(0)) as usize;
            assert_eq!(n, h.data_len());
            n
        })
        .sum()
}

fn python_ok() -> bool {
    let r = run_cmd(
        Path::new("python3"),
        &["-c", "import astropy, numpy, imagecodecs"],
    );
    if !r.ok() {
        missing("python3 with astropy, numpy and imagecodecs (scripts/install-deps.sh)");
    }
    r.ok()
}

#[test]
fn quick_report_matches_independent_sizes() {
    if !python_ok() {
        return;
    }
    let fpack = require_tool("fpack");
    let tmp = TempDir::new("report");
    let data = tmp.join("frames");
    std::fs::create_dir_all(&data).unwrap();
    let inputs: Vec<PathBuf> = INPUTS
        .iter()
        .map(|n| {
            let p = data.join(n);
            std::fs::copy(fixtures_dir().join(n), &p).unwrap();
            p
        })
        .collect();
    let bindir = fpack_ng().parent().unwrap().to_path_buf();
    let json = tmp.join("r.json");
    let out = tmp.join("rep");
    let script = manifest_dir().join("../bench/report.py");
    let mut args = vec![
        p2s(&script),
        "--quick".into(),
        "--bin".into(),
        p2s(&bindir),
        "--out".into(),
        p2s(&out),
        "--json".into(),
        p2s(&json),
    ];
    args.extend(inputs.iter().map(|p| p2s(p)));
    let r = run_cmd_full(
        Path::new("python3"),
        &args,
        None,
        std::time::Duration::from_secs(180),
    );
    assert!(r.ok(), "report.py failed: {}", r.describe());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let results = v["results"].as_array().unwrap();
    assert!(
        md.contains("## Failures\n\nnone"),
        "report lists failures:\n{md}"
    );

    let mut checked = Vec::new();
    let mut codecs: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        ("fpack-ng RICE_1", fpack_ng(), vec!["-r"]),
        ("fpack-ng GZIP_2", fpack_ng(), vec!["-g2"]),
    ];
    if let Some(f) = &fpack {
        codecs.push(("fpack Rice (Debian)", f.clone(), vec!["-r"]));
    }
    for (name, prog, flags) in &codecs {
        let (mut raw_all, mut comp_all) = (0usize, 0usize);
        for input in &inputs {
            let fz = tmp.join("check.fz");
            let _ = std::fs::remove_file(&fz);
            let mut a: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
            a.extend(["-O".into(), p2s(&fz), p2s(input)]);
            let run = run_cmd(prog, &a);
            assert!(run.ok(), "{name}: {}", run.describe());
            let comp = compressed_bytes(&fz);
            let raw = image_bytes(input);
            let res = results
                .iter()
                .find(|r| {
                    r["codec"] == *name && Path::new(r["file"].as_str().unwrap()) == input.as_path()
                })
                .unwrap_or_else(|| panic!("no result for {name} on {}", input.display()));
            assert_eq!(res["ok"], true, "{name}: {}", res["error"]);
            let frames = res["frames"].as_array().unwrap();
            let jcomp: u64 = frames.iter().map(|f| f["comp"].as_u64().unwrap()).sum();
            let jraw: u64 = frames.iter().map(|f| f["raw"].as_u64().unwrap()).sum();
            assert_eq!(
                jcomp as usize,
                comp,
                "{name} on {}: compressed bytes",
                input.display()
            );
            assert_eq!(
                jraw as usize,
                raw,
                "{name} on {}: image bytes",
                input.display()
            );
            raw_all += raw;
            comp_all += comp;
        }
        // Both fixtures lack TELESCOP/INSTRUME: one dataset row named after the folder.
        let row = md
            .lines()
            .find(|l| l.starts_with("| frames |"))
            .expect("Table 1 row for the folder");
        let cell = format!("{:.3}", raw_all as f64 / comp_all as f64);
        assert!(
            row.contains(&cell),
            "{name}: ratio {cell} not in Table 1 row {row}"
        );
        checked.push(*name);
    }
    // Every codec of the quick mode ran and verified on both frames.
    for r in results {
        assert!(
            r["ok"] == true || !r["na"].as_str().unwrap_or("").is_empty(),
            "{}: {}",
            r["codec"],
            r["error"]
        );
    }
    eprintln!("checked {checked:?} against independent sizes");
}
