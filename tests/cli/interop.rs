//! Interoperability of fpack-ng/funpack-ng with cfitsio's fpack/funpack,
//! fitsverify and astropy, on every corpus frame and every fixture.
//!
//! Checks (see each test):
//! - (a) `fpack-ng` (RICE_1, GZIP_1, GZIP_2; more modes on fixtures) → cfitsio
//!   `funpack` restores the original: pixels, dtype after scaling, NaN
//!   positions, and the non-structural header cards in order.
//! - (b) cfitsio `fpack` (-r, -g, -g2, -h, -p; quantizing modes on floats) →
//!   `funpack-ng` gives the same values as cfitsio `funpack` on the same .fz.
//! - (c) astropy reads every `fpack-ng` output: identical to the original
//!   (lossless), or to `funpack-ng`'s output (`-q`).
//! - (d) fitsverify: 0 errors, 0 warnings in every fpack-ng and funpack-ng
//!   output (problems the original already had, copied verbatim, excepted).
//! - RICE_1 size within 0.5% of cfitsio fpack's on every corpus frame.
//! - fpack-ng → funpack-ng round trips: byte-identical with `-C`; output
//!   independent of `--threads`; `-qt` reproducible.
//! - Deterministic lossy modes (`-qt`, `-q0`, `-qzt`, `-h -s`): fpack-ng +
//!   funpack-ng give the same values as cfitsio fpack + funpack.
//! - The codec and ZQUANTIZ written are the ones asked for.
//! - CLI conventions: FILE → FILE.fz, no overwrite, `-S`, `-` (stdin).
//!
//! Known limitations of the reference tools are logged as skips, never as
//! passes: cfitsio refusing a mode (BITPIX=64, HCOMPRESS < 4 pixels, PLIO
//! out of range), cfitsio funpack failing on every 64-bit compressed image,
//! astropy 8.0 misreading PLIO_1 with BZERO=32768 and failing on 64-bit
//! UNCOMPRESSED_DATA (1PK) tiles, and cfitsio funpack disagreeing with both
//! funpack-ng and astropy on small float tiles with NaNs (`-t 7,5`).
//!
//! Every test collects all results and fails at the end with the full list.
//! Missing tools skip with a notice, or fail when the `CI` variable is set.
//! `FPACKNG_INTEROP_ONLY=name,...` restricts the files; `FPACKNG_KEEP_TMP=1`
//! keeps the outputs. Run with `--nocapture` to see the summary tables.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Threads per test for the per-file loop (cargo also runs tests in parallel).
fn threads() -> usize {
    std::env::var("FPACKNG_INTEROP_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Modes `fpack-ng` must support on every file (check (a)).
const REQUIRED_MODES: &[&str] = &["", "-g", "-g2"];
/// Extra modes tried on the (small) fixtures; a refusal is logged, not failed.
const EXTRA_FIXTURE_MODES: &[&str] = &["-h", "-p", "-d", "-w", "-t 7,5", "-g2 -t 0,1"];

fn mode_label(m: &str) -> &str {
    if m.is_empty() {
        "(default)"
    } else {
        m
    }
}

/// Compose a tool invocation: FLAGS... -O OUT IN.
fn args_o(mode: &str, extra: &[&str], out: &Path, input: &Path) -> Vec<String> {
    let mut a = flags(mode);
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push("-O".into());
    a.push(p2s(out));
    a.push(p2s(input));
    a
}

fn run_tool(prog: &Path, args: Vec<String>) -> Run {
    run_cmd_full(prog, &args, None, TOOL_LIMIT)
}

/// A tool claims success: check that it also wrote a non-empty `out`.
fn produced(r: &Run, out: &Path) -> Result<(), String> {
    if !r.ok() {
        return Err(r.describe());
    }
    match std::fs::metadata(out) {
        Ok(m) if m.len() > 0 => Ok(()),
        Ok(_) => Err(format!(
            "`{}` exited 0 but {} is empty",
            r.cmdline,
            out.display()
        )),
        Err(_) => Err(format!(
            "`{}` exited 0 but wrote no {}",
            r.cmdline,
            out.display()
        )),
    }
}

/// The ZCMPTYPE the user asked for with these flags.
fn requested_codec(mode: &str) -> &'static str {
    let f = flags(mode);
    let has = |x: &str| f.iter().any(|a| a == x);
    if has("-g2") {
        "GZIP_2"
    } else if has("-g") || has("-g1") {
        "GZIP_1"
    } else if has("-h") {
        "HCOMPRESS_1"
    } else if has("-p") {
        "PLIO_1"
    } else if has("-d") {
        "NOCOMPRESS"
    } else {
        "RICE_1"
    }
}

/// What fpack-ng must write for an HDU with this ZBITPIX, losslessly:
/// `Some(codec)`, or `None` when any lossless codec is acceptable (HCOMPRESS_1
/// or PLIO_1 on data that cfitsio's fpack also refuses for that codec).
/// Floating-point and 64-bit images take the requested codec only if it can
/// hold them losslessly (GZIP_1, GZIP_2, NOCOMPRESS), else GZIP_2.
fn expected_codec(mode: &str, zbitpix: i64, cfitsio_accepts: bool) -> Option<&'static str> {
    let req = requested_codec(mode);
    if zbitpix < 0 || zbitpix == 64 {
        return Some(if matches!(req, "GZIP_1" | "GZIP_2" | "NOCOMPRESS") {
            req
        } else {
            "GZIP_2"
        });
    }
    if matches!(req, "HCOMPRESS_1" | "PLIO_1") && !cfitsio_accepts {
        return None;
    }
    Some(req)
}

/// (ZBITPIX, ZCMPTYPE) of every compressed HDU of a file.
fn codecs_of(fz: &Path) -> Result<Vec<(i64, String)>, String> {
    let (_, h) = split_file(fz)?;
    Ok(h.iter()
        .filter(|x| x.is_compressed_image())
        .map(|x| {
            (
                x.int("ZBITPIX").unwrap_or(0),
                x.value("ZCMPTYPE").unwrap_or_default(),
            )
        })
        .collect())
}

struct Ctx {
    report: Report,
    py: Mutex<Py>,
    verifier: Option<Verifier>,
}

impl Ctx {
    fn ask(&self, kind: &str, args: &[&Path]) -> Result<PyAnswer, String> {
        self.py.lock().unwrap().ask(kind, args)
    }

    /// A python comparison as one report row.
    fn compare(&self, file: &str, mode: &str, check: &str, kind: &str, args: &[&Path]) -> bool {
        match self.ask(kind, args) {
            Ok(a) if a.ok => {
                self.report.pass(file, mode, check, a.notes);
                true
            }
            Ok(a) if a.skip => {
                self.report.skip(file, mode, check, a.failure);
                true
            }
            Ok(a) => {
                let notes = if a.notes.is_empty() {
                    String::new()
                } else {
                    format!(" (notes: {})", a.notes)
                };
                self.report.fail(
                    file,
                    mode,
                    check,
                    format!("{}{notes} [compare: {}]", a.failure, Py::repro(kind, args)),
                );
                false
            }
            Err(e) => {
                self.report
                    .fail(file, mode, check, format!("python helper: {e}"));
                false
            }
        }
    }

    /// fitsverify as one report row (no row when fitsverify is missing).
    fn verify(&self, file: &str, mode: &str, check: &str, out: &Path, orig: &Path) {
        if let Some(v) = &self.verifier {
            match v.check(out, orig) {
                Ok(note) => self
                    .report
                    .pass(file, mode, check, note.unwrap_or_default()),
                Err(e) => self.report.fail(file, mode, check, e),
            }
        }
    }
}

fn setup(name: &str) -> Option<Ctx> {
    let py = Py::start()?;
    let verifier = require_tool("fitsverify").map(Verifier::new);
    Some(Ctx {
        report: Report::new(name),
        py: Mutex::new(py),
        verifier,
    })
}

// --------------------------------------------------------------------- (a)

/// (a) fpack-ng → cfitsio funpack, plus (c) astropy on the .fz and (d)
/// fitsverify on the .fz.
#[test]
fn a_fpackng_output_restored_by_cfitsio_funpack() {
    let Some(funpack) = require_tool("funpack") else {
        return;
    };
    let fpack = require_tool("fpack");
    let Some(ctx) = setup("(a)+(c)+(d): fpack-ng -> cfitsio funpack / astropy / fitsverify") else {
        return;
    };
    let inputs = all_inputs();
    let fpackng = fpack_ng();
    par_each(&inputs, threads(), |inp| {
        let tmp = TempDir::new(&format!("a-{}", inp.stem()));
        let mut modes: Vec<(&str, bool)> = REQUIRED_MODES.iter().map(|m| (*m, true)).collect();
        if !inp.corpus {
            modes.extend(EXTRA_FIXTURE_MODES.iter().map(|m| (*m, false)));
        }
        let b64 = has_bitpix64(&inp.path);
        for (k, (mode, required)) in modes.iter().enumerate() {
            let ml = mode_label(mode);
            let fz = tmp.join(&format!("m{k}.fits.fz"));
            let back = tmp.join(&format!("m{k}.fits"));
            // Standard readers are the point here: cubes stay plane by
            // plane (CUBE_1, the default for cubes where it pays, is
            // checked in tests/cli/cube.rs).
            let r = run_tool(&fpackng, args_o(mode, &["--cube", "off"], &fz, &inp.path));
            if let Err(e) = produced(&r, &fz) {
                if *required {
                    ctx.report.fail(&inp.label, ml, "fpack-ng runs", e);
                } else {
                    ctx.report.skip(
                        &inp.label,
                        ml,
                        "fpack-ng runs",
                        format!("fpack-ng refused: {e}"),
                    );
                }
                continue;
            }
            ctx.report.pass(&inp.label, ml, "fpack-ng runs", "");
            // The codec actually written.
            let cfitsio_accepts = match (requested_codec(mode), &fpack) {
                ("HCOMPRESS_1" | "PLIO_1", Some(fp)) => {
                    let mut a = flags(mode);
                    a.extend(["-C".into(), "-S".into(), p2s(&inp.path)]);
                    run_tool(fp, a).ok()
                }
                _ => true,
            };
            match codecs_of(&fz) {
                Ok(cs) => {
                    let bad: Vec<String> = cs
                        .iter()
                        .filter_map(|(zb, c)| match expected_codec(mode, *zb, cfitsio_accepts) {
                            Some(e) if e != c => {
                                Some(format!("ZBITPIX={zb}: wrote {c}, expected {e}"))
                            }
                            _ => None,
                        })
                        .collect();
                    let used: Vec<&str> = cs.iter().map(|c| c.1.as_str()).collect();
                    if bad.is_empty() {
                        ctx.report.pass(
                            &inp.label,
                            ml,
                            "codec as requested",
                            if cfitsio_accepts {
                                String::new()
                            } else {
                                format!("cfitsio refuses {mode} here; fpack-ng wrote {used:?}")
                            },
                        );
                    } else {
                        ctx.report
                            .fail(&inp.label, ml, "codec as requested", bad.join("; "));
                    }
                }
                Err(e) => ctx.report.fail(&inp.label, ml, "codec as requested", e),
            }
            ctx.verify(
                &inp.label,
                ml,
                "(d) fitsverify fpack-ng .fz",
                &fz,
                &inp.path,
            );
            ctx.compare(
                &inp.label,
                ml,
                "(c) astropy reads .fz = original",
                "astropy_fz",
                &[&fz, &inp.path],
            );
            let r = run_tool(&funpack, args_o("", &[], &back, &fz));
            match produced(&r, &back) {
                Ok(()) => {
                    ctx.compare(
                        &inp.label,
                        ml,
                        "(a) cfitsio funpack restores",
                        "restored",
                        &[&inp.path, &back],
                    );
                }
                Err(e) if b64 => ctx.report.skip(
                    &inp.label,
                    ml,
                    "(a) cfitsio funpack restores",
                    format!("BITPIX=64: cfitsio funpack cannot read fpack-ng's 64-bit output: {e}"),
                ),
                Err(e) => ctx.report.fail(
                    &inp.label,
                    ml,
                    "(a) cfitsio funpack restores",
                    format!(
                        "{e} [reproduce: fpack-ng {mode} -O x.fz {} && funpack -O x.fits x.fz]",
                        inp.path.display()
                    ),
                ),
            }
            let _ = std::fs::remove_file(&back);
            let _ = std::fs::remove_file(&fz);
        }
    });
    ctx.report.finish();
}

// --------------------------------------------------------------------- (b)

/// (b) cfitsio fpack → funpack-ng = cfitsio funpack, and (d) fitsverify on
/// funpack-ng's output.
#[test]
fn b_cfitsio_fpack_output_restored_by_funpackng() {
    let Some(fpack) = require_tool("fpack") else {
        return;
    };
    let Some(funpack) = require_tool("funpack") else {
        return;
    };
    let Some(ctx) = setup("(b)+(d): cfitsio fpack -> funpack-ng vs cfitsio funpack") else {
        return;
    };
    let inputs = all_inputs();
    let funpackng = funpack_ng();
    par_each(&inputs, threads(), |inp| {
        let tmp = TempDir::new(&format!("b-{}", inp.stem()));
        let mut modes = vec!["-r", "-g", "-g2", "-h", "-p"];
        if has_float_image(&inp.path) {
            modes.extend([
                "-q 4", "-qt 4", "-q0 4", "-qz 4", "-g -q 0", "-g2 -q 0", "-h -q 4",
            ]);
        }
        if !inp.corpus {
            modes.extend(["-w", "-t 7,5"]);
        }
        for (k, mode) in modes.iter().enumerate() {
            let fz = tmp.join(&format!("m{k}.fits.fz"));
            let refo = tmp.join(&format!("m{k}.ref.fits"));
            let ours = tmp.join(&format!("m{k}.ours.fits"));
            let r = run_tool(&fpack, args_o(mode, &[], &fz, &inp.path));
            if let Err(e) = produced(&r, &fz) {
                ctx.report.skip(
                    &inp.label,
                    mode,
                    "(b) funpack-ng = funpack",
                    format!("cfitsio fpack refuses: {e}"),
                );
                continue;
            }
            let r = run_tool(&funpack, args_o("", &[], &refo, &fz));
            if let Err(e) = produced(&r, &refo) {
                ctx.report.skip(
                    &inp.label,
                    mode,
                    "(b) funpack-ng = funpack",
                    format!("cfitsio funpack fails on its own .fz: {e}"),
                );
                continue;
            }
            let r = run_tool(&funpackng, args_o("", &[], &ours, &fz));
            if let Err(e) = produced(&r, &ours) {
                ctx.report.fail(
                    &inp.label,
                    mode,
                    "(b) funpack-ng = funpack",
                    format!(
                        "{e} [reproduce: fpack {mode} -O x.fz {} && funpack-ng -O x.fits x.fz]",
                        inp.path.display()
                    ),
                );
                continue;
            }
            ctx.compare(
                &inp.label,
                mode,
                "(b) funpack-ng = funpack",
                "values",
                &[&ours, &refo, &fz],
            );
            ctx.verify(
                &inp.label,
                mode,
                "(d) fitsverify funpack-ng out",
                &ours,
                &inp.path,
            );
            tmp.clear();
        }
    });
    ctx.report.finish();
}

// --------------------------------------------------------------------- (c) quantized

/// (c) fpack-ng -q on floating-point images: astropy's reading of the .fz =
/// funpack-ng's output = cfitsio funpack's output; (d) on both outputs.
#[test]
fn c_quantized_fpackng_read_by_astropy_funpack_and_funpackng() {
    let Some(funpack) = require_tool("funpack") else {
        return;
    };
    let Some(ctx) = setup("(c)+(d): fpack-ng -q -> astropy / funpack-ng / cfitsio funpack") else {
        return;
    };
    let inputs: Vec<Input> = all_inputs()
        .into_iter()
        .filter(|i| has_float_image(&i.path))
        .collect();
    assert!(
        !inputs.is_empty() || std::env::var("FPACKNG_INTEROP_ONLY").is_ok(),
        "no floating-point fixtures"
    );
    let fpackng = fpack_ng();
    let funpackng = funpack_ng();
    par_each(&inputs, threads(), |inp| {
        let tmp = TempDir::new(&format!("c-{}", inp.stem()));
        let modes = [
            "-q 4",
            "-qt 4",
            "-q0 4",
            "-qz 4",
            "-q 16",
            "-q -2",
            "-g2 -q 4",
            "-h -q 4",
            "-q 4 -t 7,5",
        ];
        for (k, mode) in modes.iter().enumerate() {
            let fz = tmp.join(&format!("m{k}.fits.fz"));
            let ours = tmp.join(&format!("m{k}.ours.fits"));
            let refo = tmp.join(&format!("m{k}.ref.fits"));
            let r = run_tool(&fpackng, args_o(mode, &[], &fz, &inp.path));
            if let Err(e) = produced(&r, &fz) {
                ctx.report.fail(&inp.label, mode, "fpack-ng runs", e);
                continue;
            }
            ctx.verify(
                &inp.label,
                mode,
                "(d) fitsverify fpack-ng .fz",
                &fz,
                &inp.path,
            );
            check_quantized_header(&ctx.report, inp, mode, &fz);
            let r = run_tool(&funpackng, args_o("", &[], &ours, &fz));
            if let Err(e) = produced(&r, &ours) {
                ctx.report
                    .fail(&inp.label, mode, "funpack-ng reads fpack-ng -q", e);
                continue;
            }
            ctx.verify(
                &inp.label,
                mode,
                "(d) fitsverify funpack-ng out",
                &ours,
                &inp.path,
            );
            ctx.compare(
                &inp.label,
                mode,
                "(c) astropy(.fz) = funpack-ng",
                "astropy_fz",
                &[&fz, &ours],
            );
            let r = run_tool(&funpack, args_o("", &[], &refo, &fz));
            match produced(&r, &refo) {
                Ok(()) => {
                    ctx.compare(
                        &inp.label,
                        mode,
                        "cfitsio funpack = funpack-ng (-q)",
                        "values",
                        &[&ours, &refo, &fz],
                    );
                }
                Err(e) => ctx
                    .report
                    .fail(&inp.label, mode, "cfitsio funpack = funpack-ng (-q)", e),
            }
            // Informational: the quantization error.
            if let Ok(a) = ctx.ask("quant_error", &[&inp.path, &ours]) {
                ctx.report
                    .pass(&inp.label, mode, "quantization error (info)", a.notes);
            }
            tmp.clear();
        }
    });
    ctx.report.finish();
}

/// Floating-point HDUs written with -q must carry the requested codec and
/// ZQUANTIZ (except a constant image, which cannot be quantized).
fn check_quantized_header(report: &Report, inp: &Input, mode: &str, fz: &Path) {
    let check = "-q: codec and ZQUANTIZ as requested";
    let f = flags(mode);
    let method = if f.iter().any(|a| a.starts_with("-q0")) {
        "NO_DITHER"
    } else if f.iter().any(|a| a.starts_with("-qz")) {
        "SUBTRACTIVE_DITHER_2"
    } else {
        "SUBTRACTIVE_DITHER_1"
    };
    // cfitsio names RICE_1 "RICE_ONE" with SUBTRACTIVE_DITHER_2, so that
    // readers that predate that method refuse the file.
    let codec = match requested_codec(mode) {
        "RICE_1" if method == "SUBTRACTIVE_DITHER_2" => "RICE_ONE",
        c => c,
    };
    let (_, h) = match split_file(fz) {
        Ok(x) => x,
        Err(e) => return report.fail(&inp.label, mode, check, e),
    };
    let constant = inp.label.contains("constant");
    let mut bad = Vec::new();
    for (i, x) in h
        .iter()
        .enumerate()
        .filter(|(_, x)| x.is_compressed_image())
    {
        if x.int("ZBITPIX").unwrap_or(0) >= 0 {
            continue;
        }
        let q = x.value("ZQUANTIZ");
        let c = x.value("ZCMPTYPE").unwrap_or_default();
        if constant {
            continue;
        }
        if q.as_deref() != Some(method) {
            bad.push(format!("HDU {i}: ZQUANTIZ {q:?}, expected {method}"));
        }
        if c != codec {
            bad.push(format!("HDU {i}: ZCMPTYPE {c}, expected {codec}"));
        }
    }
    if bad.is_empty() {
        report.pass(&inp.label, mode, check, "");
    } else {
        report.fail(&inp.label, mode, check, bad.join("; "));
    }
}

// --------------------------------------------------------------------- lossy parity

/// Lossy modes with a deterministic result (quantization with the -qt seed or
/// without dither, HCOMPRESS with a scale): fpack-ng's file decompressed by
/// funpack-ng gives the same values (bits; NaN positions) as cfitsio fpack's
/// file decompressed by cfitsio funpack. Differences in the compressed bytes
/// and in header cards are noted.
#[test]
fn lossy_modes_match_cfitsio_values() {
    let Some(fpack) = require_tool("fpack") else {
        return;
    };
    let Some(funpack) = require_tool("funpack") else {
        return;
    };
    let Some(ctx) = setup("lossy modes: fpack-ng+funpack-ng values = cfitsio fpack+funpack values")
    else {
        return;
    };
    let inputs = all_inputs();
    let fpackng = fpack_ng();
    let funpackng = funpack_ng();
    par_each(&inputs, threads(), |inp| {
        let tmp = TempDir::new(&format!("l-{}", inp.stem()));
        let modes: Vec<&str> = if has_float_image(&inp.path) {
            vec![
                "-qt 4",
                "-q0 4",
                "-qzt 4",
                "-qt 16",
                "-q0 -2",
                "-g2 -qt 4",
                "-h -qt 4",
                "-w -qt 4",
            ]
        } else if inp.corpus {
            vec!["-h -s 4"]
        } else {
            vec!["-h -s 4", "-h -s 2.5 -t 32,32"]
        };
        let check = "values = cfitsio's";
        for (k, mode) in modes.iter().enumerate() {
            let rfz = tmp.join(&format!("m{k}.ref.fz"));
            let ofz = tmp.join(&format!("m{k}.ours.fz"));
            let rf = tmp.join(&format!("m{k}.ref.fits"));
            let of = tmp.join(&format!("m{k}.ours.fits"));
            let r = run_tool(&fpack, args_o(mode, &["-C"], &rfz, &inp.path));
            if let Err(e) = produced(&r, &rfz) {
                ctx.report.skip(
                    &inp.label,
                    mode,
                    check,
                    format!("cfitsio fpack refuses: {e}"),
                );
                continue;
            }
            let r = run_tool(&fpackng, args_o(mode, &["-C"], &ofz, &inp.path));
            if let Err(e) = produced(&r, &ofz) {
                ctx.report.fail(&inp.label, mode, check, e);
                continue;
            }
            let r = run_tool(&funpack, args_o("", &["-C"], &rf, &rfz));
            if let Err(e) = produced(&r, &rf) {
                ctx.report.skip(
                    &inp.label,
                    mode,
                    check,
                    format!("cfitsio funpack fails on cfitsio's .fz: {e}"),
                );
                continue;
            }
            let r = run_tool(&funpackng, args_o("", &["-C"], &of, &ofz));
            if let Err(e) = produced(&r, &of) {
                ctx.report.fail(&inp.label, mode, check, e);
                continue;
            }
            let same_data = match (split_file(&rfz), split_file(&ofz)) {
                (Ok((a, ha)), Ok((b, hb))) => {
                    let da: Vec<&[u8]> = ha
                        .iter()
                        .filter(|x| x.is_compressed_image())
                        .map(|x| &a[x.data.clone()])
                        .collect();
                    let db: Vec<&[u8]> = hb
                        .iter()
                        .filter(|x| x.is_compressed_image())
                        .map(|x| &b[x.data.clone()])
                        .collect();
                    da == db
                }
                _ => false,
            };
            let before = ctx.report.failures();
            ctx.compare(&inp.label, mode, check, "values", &[&of, &rf]);
            if ctx.report.failures() == before && !same_data {
                ctx.report.pass(
                    &inp.label,
                    mode,
                    "compressed data units = cfitsio's (info)",
                    "compressed data units differ from cfitsio's (values agree)",
                );
            }
            tmp.clear();
        }
    });
    ctx.report.finish();
}

// --------------------------------------------------------------------- size

/// RICE_1 sizes: fpack-ng within 0.5% of cfitsio fpack on every corpus frame
/// (both with -C, whole-file size and compressed data-unit bytes).
#[test]
fn rice_size_matches_cfitsio_fpack() {
    let Some(fpack) = require_tool("fpack") else {
        return;
    };
    let inputs = corpus_inputs();
    if inputs.is_empty() {
        return;
    }
    let report = Report::new("RICE_1 size vs cfitsio fpack");
    let fpackng = fpack_ng();
    // label, file bytes theirs / ours, data bytes theirs / ours
    type SizeRow = (String, u64, u64, u64, u64);
    let rows: Mutex<Vec<SizeRow>> = Mutex::new(Vec::new());
    par_each(&inputs, threads(), |inp| {
        let tmp = TempDir::new(&format!("s-{}", inp.stem()));
        let theirs = tmp.join("ref.fz");
        let ours = tmp.join("ours.fz");
        let r = run_tool(&fpack, args_o("-C", &[], &theirs, &inp.path));
        if let Err(e) = produced(&r, &theirs) {
            report.skip(
                &inp.label,
                "-C",
                "size",
                format!("cfitsio fpack refuses: {e}"),
            );
            return;
        }
        let r = run_tool(&fpackng, args_o("-C", &["--cube", "off"], &ours, &inp.path));
        if let Err(e) = produced(&r, &ours) {
            report.fail(&inp.label, "-C", "size", e);
            return;
        }
        let data_bytes = |p: &PathBuf| -> Result<u64, String> {
            let (_, h) = split_file(p)?;
            Ok(h.iter()
                .filter(|x| x.is_compressed_image())
                .map(|x| x.data_len() as u64)
                .sum())
        };
        let (ft, fo) = (
            std::fs::metadata(&theirs).unwrap().len(),
            std::fs::metadata(&ours).unwrap().len(),
        );
        let (dt, d_o) = match (data_bytes(&theirs), data_bytes(&ours)) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                report.fail(
                    &inp.label,
                    "-C",
                    "size",
                    format!("cannot parse: {a:?} {b:?}"),
                );
                return;
            }
        };
        rows.lock()
            .unwrap()
            .push((inp.label.clone(), ft, fo, dt, d_o));
        let rel = |a: u64, b: u64| (b as f64 - a as f64) / a.max(1) as f64 * 100.0;
        let (rf, rd) = (rel(ft, fo), rel(dt, d_o));
        if rf.abs() <= 0.5 && rd.abs() <= 0.5 {
            report.pass(&inp.label, "-C", "size within 0.5%", "");
        } else {
            report.fail(
                &inp.label,
                "-C",
                "size within 0.5%",
                format!("file {ft} (fpack) vs {fo} (fpack-ng) = {rf:+.3}%; compressed data {dt} vs {d_o} = {rd:+.3}%"),
            );
        }
    });
    let mut rows = rows.into_inner().unwrap();
    rows.sort();
    let mut s = String::from("\nRICE_1 (-C), bytes: cfitsio fpack vs fpack-ng\n");
    s += &format!(
        "{:<44} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8}\n",
        "frame", "fpack", "fpack-ng", "diff%", "data", "data-ng", "diff%"
    );
    let (mut tf, mut to, mut td, mut tdo) = (0u64, 0u64, 0u64, 0u64);
    for (l, ft, fo, dt, d_o) in &rows {
        s += &format!(
            "{:<44} {:>10} {:>10} {:>+8.3} {:>10} {:>10} {:>+8.3}\n",
            l,
            ft,
            fo,
            (*fo as f64 / *ft as f64 - 1.0) * 100.0,
            dt,
            d_o,
            (*d_o as f64 / (*dt).max(1) as f64 - 1.0) * 100.0
        );
        tf += ft;
        to += fo;
        td += dt;
        tdo += d_o;
    }
    if !rows.is_empty() {
        s += &format!(
            "{:<44} {:>10} {:>10} {:>+8.3} {:>10} {:>10} {:>+8.3}\n",
            "TOTAL",
            tf,
            to,
            (to as f64 / tf as f64 - 1.0) * 100.0,
            td,
            tdo,
            (tdo as f64 / td.max(1) as f64 - 1.0) * 100.0
        );
    }
    println!("{s}");
    report.finish();
}

// --------------------------------------------------------------------- own round trip

/// fpack-ng → funpack-ng. With -C on both sides the restored file must be
/// byte-identical to the original (lossless modes; for floats too, NaN bits
/// included), except nonstandard fill bytes that the original had after its
/// data. With checksums: data units and non-structural cards identical, and
/// fitsverify (which checks CHECKSUM/DATASUM) clean.
#[test]
fn roundtrip_fpackng_funpackng_is_exact() {
    let fpackng = fpack_ng();
    let funpackng = funpack_ng();
    let verifier = require_tool("fitsverify").map(Verifier::new);
    let report = Report::new("fpack-ng -> funpack-ng round trip");
    let inputs = all_inputs();
    par_each(&inputs, threads(), |inp| {
        let tmp = TempDir::new(&format!("r-{}", inp.stem()));
        let modes: Vec<&str> = if inp.corpus {
            vec!["", "-g2", "-h"]
        } else {
            vec!["", "-g", "-g2", "-h", "-p", "-d", "-w", "-t 7,5", "-h -w"]
        };
        let float = has_float_image(&inp.path);
        for (k, mode) in modes.iter().enumerate() {
            let ml = mode_label(mode);
            for checksums in [false, true] {
                if checksums && !mode.is_empty() {
                    continue;
                }
                let (cflag, check) = if checksums {
                    ("", "round trip, checksums: data+cards")
                } else {
                    ("-C", "round trip -C: byte-identical")
                };
                let fz = tmp.join(&format!("m{k}{cflag}.fits.fz"));
                let back = tmp.join(&format!("m{k}{cflag}.fits"));
                let extra: Vec<&str> = if checksums { vec![] } else { vec!["-C"] };
                let r = run_tool(&fpackng, args_o(mode, &extra, &fz, &inp.path));
                if let Err(e) = produced(&r, &fz) {
                    if REQUIRED_MODES.contains(mode) {
                        report.fail(&inp.label, ml, check, e);
                    } else {
                        report.skip(&inp.label, ml, check, format!("fpack-ng refused: {e}"));
                    }
                    continue;
                }
                let r = run_tool(&funpackng, args_o("", &extra, &back, &fz));
                if let Err(e) = produced(&r, &back) {
                    report.fail(
                        &inp.label,
                        ml,
                        check,
                        format!("funpack-ng cannot read fpack-ng's output: {e}"),
                    );
                    continue;
                }
                let repro = format!(
                    "[reproduce: fpack-ng {mode} {cflag} -O x.fz {} && funpack-ng {cflag} -O x.fits x.fz && cmp x.fits {}]",
                    inp.path.display(),
                    inp.path.display()
                );
                match compare_bytes(&inp.path, &back) {
                    ByteCompare::Identical => report.pass(&inp.label, ml, check, ""),
                    ByteCompare::OnlyNonstandardFill => report.pass(
                        &inp.label,
                        ml,
                        check,
                        "identical except the original's nonstandard (non-zero) fill after the data, or the header's free space (blank cards before END, same size, as Debian funpack)",
                    ),
                    ByteCompare::SameDataAndCards(why) if checksums => report.pass(&inp.label, ml, check, {
                        // Expected: CHECKSUM/DATASUM values or comments differ.
                        let _ = why;
                        String::new()
                    }),
                    ByteCompare::SameDataAndCards(why) => report.fail(
                        &inp.label,
                        ml,
                        check,
                        format!("data units and non-structural cards identical, but not byte-identical: {why} {repro}"),
                    ),
                    ByteCompare::Differs(why) => report.fail(&inp.label, ml, check, format!("{why} {repro}")),
                }
                if let Some(v) = &verifier {
                    let lbl = "(d) fitsverify funpack-ng out";
                    match v.check(&back, &inp.path) {
                        Ok(n) => report.pass(&inp.label, ml, lbl, n.unwrap_or_default()),
                        Err(e) => report.fail(&inp.label, ml, lbl, e),
                    }
                    let cube = codecs_of(&fz).is_ok_and(|cs| cs.iter().any(|c| c.1 == "CUBE_1"));
                    if checksums && cube {
                        // fitsverify opens images through cfitsio, which
                        // refuses CUBE_1 by design (tests/cli/cube.rs).
                        report.skip(
                            &inp.label,
                            ml,
                            "(d) fitsverify fpack-ng .fz",
                            "CUBE_1 (default for cubes) is not readable by cfitsio",
                        );
                    } else if checksums {
                        let lbl = "(d) fitsverify fpack-ng .fz";
                        match v.check(&fz, &inp.path) {
                            Ok(n) => report.pass(&inp.label, ml, lbl, n.unwrap_or_default()),
                            Err(e) => report.fail(&inp.label, ml, lbl, e),
                        }
                    }
                }
                let _ = std::fs::remove_file(&fz);
                let _ = std::fs::remove_file(&back);
            }
        }
        // The output must not depend on the thread count.
        {
            let a = tmp.join("t1.fz");
            let b = tmp.join("t3.fz");
            let check = "--threads 1 = --threads 3";
            let r1 = run_tool(&fpackng, args_o("-C --threads 1", &[], &a, &inp.path));
            let r2 = run_tool(&fpackng, args_o("-C --threads 3", &[], &b, &inp.path));
            match (produced(&r1, &a), produced(&r2, &b)) {
                (Ok(()), Ok(())) => {
                    if std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap() {
                        report.pass(&inp.label, "-C", check, "");
                    } else {
                        report.fail(
                            &inp.label,
                            "-C",
                            check,
                            "fpack-ng -C output differs between --threads 1 and --threads 3",
                        );
                    }
                }
                (Err(e), _) | (_, Err(e)) => report.fail(&inp.label, "-C", check, e),
            }
            let _ = std::fs::remove_file(&a);
            let _ = std::fs::remove_file(&b);
        }
        // -qt (seed from the first tile) must be reproducible.
        if float {
            let a = tmp.join("qt1.fz");
            let b = tmp.join("qt2.fz");
            let r1 = run_tool(&fpackng, args_o("-C -qt 4", &[], &a, &inp.path));
            let r2 = run_tool(&fpackng, args_o("-C -qt 4", &[], &b, &inp.path));
            let check = "-qt 4 output reproducible";
            match (produced(&r1, &a), produced(&r2, &b)) {
                (Ok(()), Ok(())) => {
                    if std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap() {
                        report.pass(&inp.label, "-C -qt 4", check, "");
                    } else {
                        report.fail(
                            &inp.label,
                            "-C -qt 4",
                            check,
                            "two runs of fpack-ng -C -qt 4 differ",
                        );
                    }
                }
                (Err(e), _) | (_, Err(e)) => report.fail(&inp.label, "-C -qt 4", check, e),
            }
        }
    });
    report.finish();
}

// --------------------------------------------------------------------- conventions

/// File naming and streams, as fpack/funpack do them: FILE → FILE.fz beside
/// it, refusal to overwrite, funpack-ng FILE.fz → FILE, `-S` to stdout, `-`
/// from stdin; outputs equal to the `-O` ones.
#[test]
fn cli_file_naming_and_streams() {
    let report = Report::new("CLI naming and streams");
    let fpackng = fpack_ng();
    let funpackng = funpack_ng();
    let src = fixtures_dir().join("uint16.fits");
    let tmp = TempDir::new("names");
    let x = tmp.join("x.fits");
    std::fs::copy(&src, &x).unwrap();
    let xfz = tmp.join("x.fits.fz");
    let file = "fixtures/uint16.fits";
    let m = "-C";

    let r = run_cmd(&fpackng, &["-C".to_string(), p2s(&x)]);
    match produced(&r, &xfz) {
        Ok(()) => report.pass(file, m, "fpack-ng FILE writes FILE.fz", ""),
        Err(e) => report.fail(file, m, "fpack-ng FILE writes FILE.fz", e),
    }
    let before = std::fs::read(&xfz).ok();
    let r = run_cmd(&fpackng, &["-C".to_string(), p2s(&x)]);
    let after = std::fs::read(&xfz).ok();
    if r.ok() || r.stderr_text().is_empty() || before != after {
        report.fail(
            file,
            m,
            "fpack-ng refuses to overwrite FILE.fz",
            format!(
                "second run: {} (status {:?}); .fz unchanged: {}",
                r.describe(),
                r.status,
                before == after
            ),
        );
    } else {
        report.pass(
            file,
            m,
            "fpack-ng refuses to overwrite FILE.fz",
            r.stderr_text(),
        );
    }

    let o = tmp.join("o.fz");
    let r = run_tool(&fpackng, args_o("-C", &[], &o, &x));
    let same_o = produced(&r, &o).is_ok() && std::fs::read(&o).ok() == before;
    if same_o {
        report.pass(file, m, "-O output = default-name output", "");
    } else {
        report.fail(file, m, "-O output = default-name output", r.describe());
    }

    let r = run_cmd(&fpackng, &["-C".to_string(), "-S".to_string(), p2s(&x)]);
    if r.ok() && Some(&r.stdout) == before.as_ref() {
        report.pass(file, m, "fpack-ng -S = file output", "");
    } else {
        report.fail(
            file,
            m,
            "fpack-ng -S = file output",
            format!("{} ({} bytes on stdout)", r.describe(), r.stdout.len()),
        );
    }

    let r = run_cmd_full(
        &fpackng,
        &["-C".to_string(), "-S".to_string(), "-".to_string()],
        Some(&x),
        TOOL_LIMIT,
    );
    if r.ok() && Some(&r.stdout) == before.as_ref() {
        report.pass(file, m, "fpack-ng -S - (stdin) = file output", "");
    } else {
        report.fail(
            file,
            m,
            "fpack-ng -S - (stdin) = file output",
            format!("{} ({} bytes on stdout)", r.describe(), r.stdout.len()),
        );
    }

    // funpack-ng FILE.fz → FILE
    std::fs::remove_file(&x).unwrap();
    let r = run_cmd(&funpackng, &["-C".to_string(), p2s(&xfz)]);
    match produced(&r, &x) {
        Ok(()) => match compare_bytes(&src, &x) {
            ByteCompare::Identical => report.pass(file, m, "funpack-ng FILE.fz writes FILE", ""),
            other => report.fail(
                file,
                m,
                "funpack-ng FILE.fz writes FILE",
                format!("{other:?}"),
            ),
        },
        Err(e) => report.fail(file, m, "funpack-ng FILE.fz writes FILE", e),
    }
    let r = run_cmd(&funpackng, &["-C".to_string(), "-S".to_string(), p2s(&xfz)]);
    if r.ok() && Some(r.stdout.clone()) == std::fs::read(&src).ok() {
        report.pass(file, m, "funpack-ng -S = original", "");
    } else {
        report.fail(
            file,
            m,
            "funpack-ng -S = original",
            format!("{} ({} bytes on stdout)", r.describe(), r.stdout.len()),
        );
    }
    report.finish();
}
