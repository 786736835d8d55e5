//! `fpack-ng recompress`: whole trees recompressed, resumed after SIGKILL,
//! and split into shards.
//!
//! The trees hold raw CCD frames made by ../shared/tools/synth.py (through
//! tests/cli/recompress_tree.py), real corpus frames, frames compressed by
//! Debian's fpack as Rice and gzip (`.fz`, recompressed in place),
//! gzipped frames (`.fits.gz`), damaged files (truncated `.fz`, `.fits`
//! and `.fits.gz`, a `.fz` with a flipped heap byte), a file that is not
//! FITS, and uniform 16-bit noise that no lossless codec can shrink.
//! Pixels are checked with the test's own FITS parser (robust_common), not
//! the library's, after funpack-ng (and, for Rice outputs, Debian's
//! funpack) decoded the results.
//!
//! Needs python3 with numpy and astropy, Debian's fpack/funpack and gzip,
//! the shared corpus and synth.py; without them the tests are skipped,
//! unless `CI` is set, where that is a failure.

mod robust_common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fpackng::archive::{Report, Status};
use robust_common::*;

const LIMIT: Duration = Duration::from_secs(600);

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn missing(what: &str) {
    if in_ci() {
        panic!("prerequisite missing (CI is set, so this is a failure, not a skip): {what}");
    }
    eprintln!("NOTICE: skipping: {what} (set CI=1 to make this a failure)");
}

fn shared_dir() -> PathBuf {
    match std::env::var_os("FPACKNG_CORPUS") {
        Some(v) if !v.is_empty() => PathBuf::from(v).join(".."),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

fn tool_works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn prerequisites() -> bool {
    let synth = shared_dir().join("tools/synth.py");
    if !synth.is_file() {
        missing(&format!("{} not found", synth.display()));
        return false;
    }
    let py = Command::new("python3")
        .args(["-c", "import numpy, astropy"])
        .status();
    if !py.is_ok_and(|s| s.success()) {
        missing("python3 with numpy and astropy");
        return false;
    }
    for tool in ["fpack", "funpack", "gzip"] {
        if !tool_works(tool, &["-V"]) && !tool_works(tool, &["--version"]) {
            missing(tool);
            return false;
        }
    }
    true
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run a helper command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a test tree holds, by path relative to the tree's root.
struct Tree {
    root: PathBuf,
    /// Every good input, with the plain FITS file its pixels come from.
    good: BTreeMap<String, PathBuf>,
    /// Inputs the job must report as failed and leave alone.
    bad: BTreeSet<String>,
    /// Inputs that cannot get smaller.
    incompressible: BTreeSet<String>,
}

impl Tree {
    fn all(&self) -> BTreeSet<String> {
        self.good
            .keys()
            .chain(&self.bad)
            .chain(&self.incompressible)
            .cloned()
            .collect()
    }
}

/// Build a tree under `dir/archive` with `frames` synthetic frames (plus
/// corpus frames when `corpus`), the damaged files and the noise files.
fn build_tree(dir: &Path, frames: usize, seed: u64, corpus: bool) -> Tree {
    let generated = dir.join("generated");
    run_ok(
        Command::new("python3").args([
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/cli/recompress_tree.py")
                .as_os_str(),
            shared_dir().join("tools/synth.py").as_os_str(),
            generated.as_os_str(),
            frames.to_string().as_ref(),
            seed.to_string().as_ref(),
        ]),
    );
    let root = dir.join("archive");
    for sub in ["plain", "deep/gz", "fz", "corpus", "bad"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    let mut tree = Tree {
        root: root.clone(),
        good: BTreeMap::new(),
        bad: BTreeSet::new(),
        incompressible: BTreeSet::new(),
    };
    for i in 0..frames {
        let src = generated.join(format!("frame_{i:03}.fits"));
        let name = format!("frame_{i:03}");
        let rel = match i % 6 {
            0..=2 => {
                let rel = format!("plain/{name}.fits");
                fs::copy(&src, root.join(&rel)).unwrap();
                rel
            }
            3 => {
                let rel = format!("deep/gz/{name}.fits.gz");
                let gz = Command::new("gzip")
                    .args(["-n", "-c"])
                    .arg(&src)
                    .output()
                    .unwrap();
                assert!(gz.status.success());
                fs::write(root.join(&rel), gz.stdout).unwrap();
                rel
            }
            4 => {
                let rel = format!("fz/{name}_rice.fits.fz");
                run_ok(
                    Command::new("fpack")
                        .arg("-r")
                        .arg("-O")
                        .arg(root.join(&rel))
                        .arg(&src),
                );
                rel
            }
            _ => {
                let rel = format!("fz/{name}_gzip.fits.fz");
                run_ok(
                    Command::new("fpack")
                        .arg("-g")
                        .arg("-O")
                        .arg(root.join(&rel))
                        .arg(&src),
                );
                rel
            }
        };
        tree.good.insert(rel, src);
    }
    if corpus {
        for name in [
            "eso_ntt_emmi_sep_image.fits",
            "hst_stis_ocoa03q2q_raw.fits",
            "lco1m_sinistro_elp_fa05_amp3.fits",
        ] {
            let src = shared_dir().join("corpus/test").join(name);
            let rel = format!("corpus/{name}");
            fs::copy(&src, root.join(&rel)).unwrap();
            tree.good.insert(rel, src);
        }
    }
    for i in 0..2 {
        let rel = format!("plain/noise_{i}.fits");
        fs::copy(generated.join(format!("noise_{i}.fits")), root.join(&rel)).unwrap();
        tree.incompressible.insert(rel);
    }
    // Damaged files, made from the first frames' forms above.
    let frame0 = fs::read(generated.join("frame_000.fits")).unwrap();
    let mut bad = |rel: &str, bytes: &[u8]| {
        fs::write(root.join(rel), bytes).unwrap();
        tree.bad.insert(rel.to_string());
    };
    bad("bad/truncated.fits", &frame0[..frame0.len() - 2 * BLOCK]);
    bad("bad/notes.fits", b"observing notes, not FITS at all\n");
    let gz = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(generated.join("frame_000.fits"))
        .output()
        .unwrap()
        .stdout;
    bad("bad/truncated_gz.fits.gz", &gz[..gz.len() / 2]);
    let rice = fs::read(root.join("fz/frame_004_rice.fits.fz")).unwrap();
    bad("bad/truncated_rice.fits.fz", &rice[..rice.len() - BLOCK]);
    let mut flipped = fs::read(root.join("fz/frame_005_gzip.fits.fz")).unwrap();
    let at = flipped.len() - BLOCK - 100;
    flipped[at] ^= 0x5a;
    bad("bad/flipped_gzip.fits.fz", &flipped);
    tree
}

/// Every file under `dir`, by `/`-separated relative path.
fn files_under(dir: &Path) -> BTreeMap<String, Digest> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Digest>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, digest_file(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn temp_files(files: &BTreeMap<String, Digest>) -> Vec<&String> {
    files.keys().filter(|k| is_temp_name(k)).collect()
}

/// Run `fpack-ng recompress ARGS` in `cwd`.
fn recompress(cwd: &Path, args: &[&str]) -> RunOutcome {
    let mut all = vec!["recompress"];
    all.extend_from_slice(args);
    let r = run_limited(fpack_bin(), &all, cwd, LIMIT);
    assert!(r.crashed().is_none(), "{}", r.describe());
    r
}

fn read_report(path: &Path) -> Report {
    Report::from_json(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Decode `fz` with `decoder -S` and compare its data units with `source`'s.
fn decodes_to(decoder: &str, fz: &Path, source: &Path) -> Result<(), String> {
    let dir = fz.parent().unwrap();
    let r = run_limited(
        decoder,
        &["-S", fz.file_name().unwrap().to_str().unwrap()],
        dir,
        LIMIT,
    );
    if !r.success() {
        return Err(r.describe());
    }
    let got = data_hdus(&r.stdout)?;
    let want = data_hdus(&fs::read(source).unwrap())?;
    match compare_data_hdus(&got, &want) {
        None => Ok(()),
        Some(d) => Err(d),
    }
}

/// The output of a record, relative to the tree root (paths in reports are
/// as given on the command line: `archive/...`).
fn rel(path: &str) -> String {
    path.strip_prefix("archive/").unwrap_or(path).to_string()
}

#[test]
fn recompress_a_tree_of_two_hundred_files() {
    if !prerequisites() {
        return;
    }
    let dir = scratch_dir("recompress-tree");
    let tree = build_tree(&dir, 190, 1000, true);
    let inputs = tree.all();
    assert!(inputs.len() >= 200, "only {} files", inputs.len());
    let before = files_under(&tree.root);

    // A dry run changes nothing and estimates a saving.
    let dry = recompress(
        &dir,
        &[
            "--to",
            "jxl",
            "--threads",
            "2",
            "--dry-run",
            "--sample",
            "3",
            "archive",
        ],
    );
    assert!(dry.success(), "{}", dry.describe());
    assert!(String::from_utf8_lossy(&dry.stdout).contains("estimated:"));
    assert_eq!(
        files_under(&tree.root),
        before,
        "--dry-run changed the tree"
    );

    let t0 = Instant::now();
    let r = recompress(
        &dir,
        &[
            "--to",
            "jxl",
            "--threads",
            "2",
            "--journal",
            "job.journal",
            "--report",
            "report.json",
            "archive",
        ],
    );
    let seconds = t0.elapsed().as_secs_f64();
    assert_eq!(
        r.code(),
        Some(1),
        "failures must give exit status 1: {}",
        r.describe()
    );
    let report = read_report(&dir.join("report.json"));
    let after = files_under(&tree.root);
    assert!(
        temp_files(&after).is_empty(),
        "temporary files left: {:?}",
        temp_files(&after)
    );

    // Every file is in the report exactly once.
    let reported: Vec<String> = report.records.iter().map(|r| rel(&r.input)).collect();
    assert_eq!(reported.iter().cloned().collect::<BTreeSet<_>>(), inputs);
    assert_eq!(reported.len(), inputs.len());
    assert_eq!(report.files as usize, inputs.len());

    let mut recompressed = 0;
    let mut kept_good = 0;
    let mut on_disk_after = 0u64;
    for rec in &report.records {
        let input = rel(&rec.input);
        let size = |p: &str| fs::metadata(tree.root.join(p)).map(|m| m.len()).ok();
        if tree.bad.contains(&input) {
            assert_eq!(
                rec.status,
                Status::Failed,
                "{input} was not reported as failed"
            );
            assert!(
                rec.reason.as_deref().is_some_and(|r| !r.is_empty()),
                "{input}: no reason"
            );
            assert_eq!(after.get(&input), before.get(&input), "{input} was touched");
            let out = rel(&rec.output);
            if out != input {
                assert!(!after.contains_key(&out), "{input}: output {out} left");
            }
        } else if tree.incompressible.contains(&input) {
            assert_eq!(rec.status, Status::Kept, "{input}: {rec:?}");
            assert_eq!(after.get(&input), before.get(&input), "{input} was touched");
            assert!(!after.contains_key(&format!("{input}.fz")));
        } else if rec.status == Status::Kept {
            // A small frame whose .fz, with its 2880-byte blocks, would not
            // be smaller than a gzipped original: left alone.
            kept_good += 1;
            assert_eq!(after.get(&input), before.get(&input), "{input} was touched");
            let out = rel(&rec.output);
            assert!(
                out == input || !after.contains_key(&out),
                "{input}: output {out} left"
            );
        } else {
            assert_eq!(rec.status, Status::Recompressed, "{input}: {rec:?}");
            recompressed += 1;
            let out = rel(&rec.output);
            let source = &tree.good[&input];
            if let Err(e) = decodes_to(funpack_bin(), &tree.root.join(&out), source) {
                panic!("{out} does not decode to its source: {e}");
            }
            assert!(rec.target_algorithm.contains("JXL_1"), "{rec:?}");
            if out != input {
                // The original is kept (no -D).
                assert_eq!(after.get(&input), before.get(&input), "{input} was touched");
            }
        }
        // The report's sizes are the files' sizes.
        let final_size = if rec.status == Status::Recompressed {
            size(&rel(&rec.output))
        } else {
            size(&input)
        };
        assert_eq!(final_size, Some(rec.bytes_after), "{input}: size on disk");
        on_disk_after += rec.bytes_after;
        let before_size = before.get(&input).map(|d| d.2);
        assert_eq!(before_size, Some(rec.bytes_before), "{input}: size before");
    }
    // Small frames lose to gzip or Rice by a block or two (FITS pads to
    // 2880 bytes); most must gain.
    assert!(
        kept_good * 4 <= tree.good.len(),
        "{kept_good} of {} good files were not recompressed",
        tree.good.len()
    );
    assert_eq!(report.bytes_after, on_disk_after);
    assert_eq!(
        report.bytes_before,
        inputs.iter().map(|i| before[i].2).sum::<u64>()
    );
    assert_eq!(report.failures.len(), tree.bad.len());
    assert_eq!(report.by_status["recompressed"], recompressed);
    // Every source kind appears in the per-algorithm table.
    let sources: BTreeSet<&str> = report
        .by_algorithm
        .iter()
        .map(|r| r.source.as_str())
        .collect();
    for s in ["FITS", "RICE_1", "GZIP_1"] {
        assert!(sources.contains(s), "{s} missing from {sources:?}");
    }
    // The table is printed.
    let table = String::from_utf8_lossy(&r.stdout);
    assert!(table.contains("failures (5)"), "{table}");
    eprintln!("200-file tree: {seconds:.1} s\n{table}");

    // Running again redoes nothing: every outcome comes from the journal.
    let again = recompress(
        &dir,
        &[
            "--to",
            "jxl",
            "--threads",
            "2",
            "--journal",
            "job.journal",
            "--report",
            "again.json",
            "archive",
        ],
    );
    assert_eq!(again.code(), Some(1));
    let second = read_report(&dir.join("again.json"));
    assert_eq!(
        files_under(&tree.root),
        after,
        "a resumed, finished job changed files"
    );
    let key = |r: &Report| {
        r.records
            .iter()
            .map(|x| (x.input.clone(), x.status, x.bytes_before, x.bytes_after))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&second), key(&report));
    // Only the failed files are tried again.
    let failed_bytes: u64 = report
        .records
        .iter()
        .filter(|r| r.status == Status::Failed)
        .map(|r| r.bytes_before)
        .sum();
    assert_eq!(
        second.processed_bytes, failed_bytes,
        "the resumed job processed files again"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn killed_jobs_resume_to_the_uninterrupted_result() {
    if !prerequisites() {
        return;
    }
    let dir = scratch_dir("recompress-kill");
    let tree = build_tree(&dir.join("made"), 36, 2000, false);
    let initial = files_under(&tree.root);
    let copy = |name: &str| {
        let d = dir.join(name);
        fs::create_dir_all(&d).unwrap();
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(&tree.root)
                .arg(d.join("archive")),
        );
        d
    };
    let args = [
        "--to",
        "jxl",
        "--threads",
        "2",
        "-D",
        "--journal",
        "job.journal",
        "--report",
        "report.json",
        "archive",
    ];
    // The uninterrupted run.
    let reference_dir = copy("reference");
    let t0 = Instant::now();
    let r = recompress(&reference_dir, &args);
    let whole = t0.elapsed();
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let reference = files_under(&reference_dir.join("archive"));
    let reference_report = read_report(&reference_dir.join("report.json"));

    // The same job, killed again and again. If it finishes before five
    // kills (a fast machine), start over on a fresh copy with shorter delays.
    let mut rng = Rng::new(4242);
    let mut max_delay = (whole.as_millis() as usize / 4).max(40);
    let mut round = 0;
    let (killed_dir, kills, attempts) = loop {
        round += 1;
        assert!(round <= 4, "the job always finished before five kills");
        let killed_dir = copy(&format!("killed-{round}"));
        let mut kills = 0;
        let mut attempts = 0;
        let mut journal_sizes = BTreeSet::new();
        let finished_early = loop {
            attempts += 1;
            // Eight kills at random moments, then the run that finishes.
            let delay = if kills < 8 {
                Duration::from_millis(rng.range(10, max_delay) as u64)
            } else {
                LIMIT
            };
            let mut all = vec!["recompress"];
            all.extend_from_slice(&args);
            // Reaped by try_wait() when it finishes, else by kill() + wait().
            #[allow(clippy::zombie_processes)]
            let mut child = Command::new(fpack_bin())
                .args(&all)
                .current_dir(&killed_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let start = Instant::now();
            let mut finished = None;
            while start.elapsed() < delay {
                if let Some(s) = child.try_wait().unwrap() {
                    finished = Some(s);
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if finished.is_none() {
                child.kill().unwrap(); // SIGKILL
                let s = child.wait().unwrap();
                if s.code().is_none() {
                    kills += 1;
                    let journal = fs::metadata(killed_dir.join("job.journal"))
                        .map(|m| m.len())
                        .unwrap_or(0);
                    journal_sizes.insert(journal);
                } else {
                    finished = Some(s);
                }
            }
            // At every moment: each file is the original or the final
            // version, and an input is gone only when its output is in place.
            let now = files_under(&killed_dir.join("archive"));
            for (name, digest) in &now {
                if is_temp_name(name) {
                    continue;
                }
                assert!(
                    initial.get(name) == Some(digest) || reference.get(name) == Some(digest),
                    "after kill {kills}: {name} is neither the original nor the final file"
                );
            }
            for name in initial.keys() {
                if !now.contains_key(name) {
                    assert!(!reference.contains_key(name), "{name} lost");
                    let rec = reference_report
                        .records
                        .iter()
                        .find(|r| rel(&r.input) == *name)
                        .unwrap();
                    let out = rel(&rec.output);
                    assert_eq!(
                        now.get(&out),
                        reference.get(&out),
                        "{name} deleted before {out} was in place"
                    );
                }
            }
            if let Some(s) = finished {
                assert_eq!(s.code(), Some(1), "the finished job's exit status");
                // Kills that all landed before the first file, or after
                // the last, would test little: the journal must have grown
                // between kills.
                break kills < 5 || journal_sizes.len() < 4;
            }
        };
        if !finished_early {
            break (killed_dir, kills, attempts);
        }
        max_delay = (max_delay / 2).max(10);
    };
    let final_files = files_under(&killed_dir.join("archive"));
    assert!(
        temp_files(&final_files).is_empty(),
        "temporary files left: {:?}",
        temp_files(&final_files)
    );
    assert_eq!(
        final_files, reference,
        "the resumed tree differs from the uninterrupted run's"
    );
    let report = read_report(&killed_dir.join("report.json"));
    let key = |r: &Report| {
        r.records
            .iter()
            .map(|x| (x.input.clone(), x.status, x.bytes_before, x.bytes_after))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&report), key(&reference_report));
    eprintln!("{kills} kills in {attempts} runs; uninterrupted run {whole:?}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shards_cover_every_file_exactly_once() {
    if !prerequisites() {
        return;
    }
    let dir = scratch_dir("recompress-shards");
    let tree = build_tree(&dir.join("made"), 40, 3000, false);
    let inputs = tree.all();
    let mut trees = Vec::new();
    for n in [1usize, 3, 7] {
        let work = dir.join(format!("n{n}"));
        fs::create_dir_all(&work).unwrap();
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(&tree.root)
                .arg(work.join("archive")),
        );
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut reports = Vec::new();
        for i in 0..n {
            let shard = format!("{i}/{n}");
            let report = format!("shard-{i}.json");
            let r = recompress(
                &work,
                &[
                    "--to",
                    "rice",
                    "--threads",
                    "2",
                    "--shard",
                    &shard,
                    "--report",
                    &report,
                    "--quiet",
                    "archive",
                ],
            );
            assert!(
                r.code() == Some(0) || r.code() == Some(1),
                "{}",
                r.describe()
            );
            for rec in read_report(&work.join(&report)).records {
                *seen.entry(rel(&rec.input)).or_default() += 1;
            }
            reports.push(report);
        }
        let twice: Vec<_> = seen.iter().filter(|(_, &c)| c != 1).collect();
        assert!(
            twice.is_empty(),
            "N={n}: files processed more than once: {twice:?}"
        );
        assert_eq!(
            seen.keys().cloned().collect::<BTreeSet<_>>(),
            inputs,
            "N={n}"
        );
        // The reports merge into one covering the whole tree.
        let mut args = vec!["--merge-reports", "--report", "merged.json", "--quiet"];
        args.extend(reports.iter().map(String::as_str));
        let r = recompress(&work, &args);
        assert!(r.success(), "{}", r.describe());
        let merged = read_report(&work.join("merged.json"));
        assert_eq!(merged.files as usize, inputs.len());
        assert_eq!(merged.failures.len(), tree.bad.len());
        let after = files_under(&work.join("archive"));
        assert!(temp_files(&after).is_empty());
        // Rice outputs are read by Debian's funpack too.
        for rec in merged
            .records
            .iter()
            .filter(|r| r.status == Status::Recompressed)
            .take(6)
        {
            let out = work.join(&rec.output);
            let source = &tree.good[&rel(&rec.input)];
            if let Err(e) = decodes_to("funpack", &out, source) {
                panic!("Debian funpack: {}: {e}", out.display());
            }
        }
        trees.push(after);
    }
    assert_eq!(trees[0], trees[1], "3 shards gave another tree than 1");
    assert_eq!(trees[0], trees[2], "7 shards gave another tree than 1");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_journal_serves_one_tree_and_one_process() {
    // Two trees recompressed from the same directory with the same settings:
    // the second job refuses (naming the journal) instead of resuming the
    // first one's journal and counting its files; a job on a journal that
    // another process holds refuses at once. Neither changes anything.
    let dir = scratch_dir("recompress-journal-binding");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    for (tree, names) in [
        ("a", ["uint16.fits", "bitpix16.fits"]),
        ("b", ["bitpix32.fits", "bitpix8.fits"]),
    ] {
        fs::create_dir_all(dir.join(tree)).unwrap();
        for n in names {
            fs::copy(fixtures.join(n), dir.join(tree).join(n)).unwrap();
        }
    }
    let r = recompress(
        &dir,
        &["--to", "rice", "--report", "a.json", "--quiet", "a"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(read_report(&dir.join("a.json")).records.len(), 2);
    let journal = dir.join("fpack-ng-recompress.journal");
    let journal_before = fs::read(&journal).unwrap();
    let b_before = files_under(&dir.join("b"));
    let r = recompress(
        &dir,
        &["--to", "rice", "--report", "b.json", "--quiet", "b"],
    );
    assert_ne!(
        r.code(),
        Some(0),
        "a second tree resumed the first tree's journal: {}",
        r.describe()
    );
    let text = format!("{}{}", String::from_utf8_lossy(&r.stdout), r.stderr);
    assert!(
        text.contains("other inputs") && text.contains("fpack-ng-recompress.journal"),
        "{}",
        r.describe()
    );
    assert_eq!(
        files_under(&dir.join("b")),
        b_before,
        "the refused job changed tree b"
    );
    assert_eq!(fs::read(&journal).unwrap(), journal_before);
    // With its own journal, tree b is a job of its own: its report counts its files only.
    let r = recompress(
        &dir,
        &[
            "--to",
            "rice",
            "--journal",
            "b.journal",
            "--report",
            "b.json",
            "--quiet",
            "b",
        ],
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let report = read_report(&dir.join("b.json"));
    assert_eq!(report.records.len(), 2);
    assert!(report
        .records
        .iter()
        .all(|rec| rec.input.contains("/b/") || rec.input.starts_with("b/")));
    // Another process holds the journal: refused at once, nothing changes,
    // not even with --restart.
    let holder = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&journal)
        .unwrap();
    holder.lock().unwrap();
    let a_before = files_under(&dir.join("a"));
    for extra in [&[][..], &["--restart"][..]] {
        let mut args = vec!["--to", "rice", "--quiet"];
        args.extend_from_slice(extra);
        args.push("a");
        let started = Instant::now();
        let r = recompress(&dir, &args);
        assert_ne!(r.code(), Some(0), "{}", r.describe());
        assert!(
            format!("{}{}", String::from_utf8_lossy(&r.stdout), r.stderr)
                .contains("another fpack-ng recompress"),
            "{}",
            r.describe()
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "did not refuse at once"
        );
        assert_eq!(fs::read(&journal).unwrap(), journal_before);
        assert_eq!(files_under(&dir.join("a")), a_before);
    }
    drop(holder);
    fs::remove_dir_all(&dir).unwrap();
}
