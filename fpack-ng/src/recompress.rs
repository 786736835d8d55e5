//! `fpack-ng recompress`: the archive job's command line, progress bar and
//! printed report. The job itself (discovery, sharding, journal, per-file
//! work) is `fpackng::archive`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context as _, Result};
use fpackng::archive::{self, JobOptions, Progress, Report, Source, Status};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::flags::{self, Parsed, RecompressArgs};
use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

const SUMMARY: &str =
    "recompress whole FITS archives to another algorithm, verified, resumable, sharded";
const USAGE: &str =
    "fpack-ng recompress --to ALG [flags] PATH... (directories, files, glob patterns)";
/// The man page is named like git's subcommand pages (git-commit(1)).
const MAN_USAGE: &str =
    "fpack-ng-recompress --to ALG [flags] PATH... (directories, files, glob patterns)";
const DESCRIPTION: &str = "Run as: fpack-ng recompress. It re-encodes every .fits, .fits.gz and .fz file under the PATHs (directories are walked recursively; symbolic links are not followed) to the target algorithm. Names follow fpack: x.fits and x.fits.gz become x.fits.fz (the original is kept unless -D is given), x.fz is replaced in place. Every file is decoded, encoded to the target, written to a temporary file, re-read and decoded, and its pixels and non-structural header keywords compared with the source before it is renamed into place. A file whose result would not be smaller is left as it is; a file that fails is reported with its reason and left untouched, and the job goes on. A journal records every file, so that a job killed at any moment resumes where it stopped when run again with the same arguments; temporary files left by a kill are removed then. --shard I/N splits the files by a stable hash of their relative path, so that N independent runs (a Slurm job array) cover every file exactly once; their JSON reports merge with --merge-reports. See docs/recompress.md.";
const EXIT_STATUS: &str = "0 if no file failed; 1 if any file failed (each is reported with its reason, left untouched, and the other files are still processed) or the journal could not be written; 2 if the command line is invalid (nothing is done).";

pub fn help() -> String {
    flags::help(
        "fpack-ng recompress",
        SUMMARY,
        USAGE,
        flags::RECOMPRESS_FLAGS,
    )
}

pub fn man_page() -> String {
    flags::man_page(
        "fpack-ng-recompress",
        SUMMARY,
        MAN_USAGE,
        flags::RECOMPRESS_FLAGS,
        DESCRIPTION,
        EXIT_STATUS,
    )
}

/// Entry point of `fpack-ng recompress ARGS`; returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let parsed: Parsed<RecompressArgs> = match flags::parse(args, flags::RECOMPRESS_FLAGS, &[]) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fpack-ng recompress: {e}");
            return EXIT_USAGE;
        }
    };
    if parsed.args.common.help {
        print!("{}", help());
        return EXIT_OK;
    }
    if parsed.args.merge_reports {
        return match merge(&parsed) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("fpack-ng recompress: {e:#}");
                EXIT_FAILED
            }
        };
    }
    let (opts, sources) = match setup(&parsed) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("fpack-ng recompress: {e:#}");
            return EXIT_USAGE;
        }
    };
    let quiet = parsed.args.quiet;
    if parsed.args.dry_run {
        return match dry_run(&parsed, &opts, &sources, quiet) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("fpack-ng recompress: {e:#}");
                EXIT_FAILED
            }
        };
    }
    match run(&parsed, &opts, &sources, quiet) {
        Ok(report) if report.failures.is_empty() => EXIT_OK,
        Ok(_) => EXIT_FAILED,
        Err(e) => {
            eprintln!("fpack-ng recompress: {e:#}");
            EXIT_FAILED
        }
    }
}

fn setup(p: &Parsed<RecompressArgs>) -> Result<(JobOptions, Vec<Source>)> {
    let a = &p.args;
    if a.compress.algorithm.is_none() {
        bail!("--to ALG is required (see --help)");
    }
    let compress = crate::compress_options(&a.compress, &a.common)?;
    let threads = match a.common.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .ok();
    let shard = a.shard.unwrap_or_default();
    let journal = match &a.journal {
        Some(j) => j.clone(),
        None if shard.count == 1 => PathBuf::from("fpack-ng-recompress.journal"),
        None => PathBuf::from(format!(
            "fpack-ng-recompress.shard-{}-of-{}.journal",
            shard.index, shard.count
        )),
    };
    let mut sources: Vec<Source> = p
        .files
        .iter()
        .map(|f| Source::Path(PathBuf::from(f)))
        .collect();
    sources.extend(a.files_from.iter().cloned().map(Source::List));
    if sources.is_empty() {
        bail!("no input paths (see --help)");
    }
    let opts = JobOptions {
        compress,
        delete_originals: a.delete,
        output_dir: a.output_dir.clone(),
        journal: Some(journal),
        restart: a.restart,
        shard,
        jobs: match a.jobs {
            Some(0) => bail!("--jobs must be at least 1"),
            Some(n) => n as usize,
            None => threads,
        },
        memory_budget: a.memory_mb.unwrap_or(4096).max(1) << 20,
    };
    Ok((opts, sources))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// The progress bar: position in input bytes (for the ETA), message with
/// files, bytes and bytes saved. Hidden when standard error is not a
/// terminal (indicatif's stderr target) or with --quiet.
struct Bar {
    bar: ProgressBar,
    state: Mutex<(u64, u64, u64, i64)>, // files done, files total, bytes done, saved
}

impl Bar {
    fn new(quiet: bool) -> Bar {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if quiet {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {percent:>3}% {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Bar {
            bar,
            state: Mutex::new((0, 0, 0, 0)),
        }
    }

    fn update(&self, event: Progress) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Progress::Planned {
                files,
                bytes,
                files_done,
                bytes_done,
            } => {
                *s = (files_done, files, bytes_done, 0);
                self.bar.set_length(bytes);
                self.bar.set_position(bytes_done);
                self.bar.reset_eta();
            }
            Progress::Finished(r) => {
                s.0 += 1;
                s.2 += r.bytes_before;
                if r.status == Status::Recompressed {
                    s.3 += r.bytes_before as i64 - r.bytes_after as i64;
                }
                self.bar.inc(r.bytes_before);
                if r.status == Status::Failed {
                    let reason = r.reason.as_deref().unwrap_or("");
                    let line = if reason.starts_with(&r.input) {
                        reason.to_string()
                    } else {
                        format!("{}: {reason}", r.input)
                    };
                    self.bar
                        .suspend(|| eprintln!("fpack-ng recompress: {line}"));
                }
            }
        }
        self.bar.set_message(format!(
            "files {}/{}, {:.1} MB, saved {:.1} MB",
            s.0,
            s.1,
            mb(s.2),
            s.3 as f64 / 1e6
        ));
    }
}

fn write_report(p: &Parsed<RecompressArgs>, report: &Report) -> Result<()> {
    if let Some(path) = &p.args.report {
        std::fs::write(path, report.to_json() + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn run(
    p: &Parsed<RecompressArgs>,
    opts: &JobOptions,
    sources: &[Source],
    quiet: bool,
) -> Result<Report> {
    let bar = Bar::new(quiet);
    let report = archive::run(sources, opts, &|event| bar.update(event))?;
    bar.bar.finish_and_clear();
    write_report(p, &report)?;
    if !quiet {
        print!("{}", report.to_table());
    }
    Ok(report)
}

fn dry_run(
    p: &Parsed<RecompressArgs>,
    opts: &JobOptions,
    sources: &[Source],
    quiet: bool,
) -> Result<()> {
    let sample = p.args.sample.unwrap_or(10) as usize;
    let e = archive::dry_run(sources, opts, sample)?;
    if let Some(path) = &p.args.report {
        let text = serde_json_string(&e);
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if quiet {
        return Ok(());
    }
    println!(
        "dry run, recompress to {} (shard {}): {} files, {:.3} MB; {} sampled in {:.2} s",
        e.target,
        e.shard,
        e.files,
        mb(e.bytes),
        e.sampled_files,
        e.seconds
    );
    println!(
        "\n{:<24} {:>7} {:>12} {:>8} {:>13} {:>16}",
        "source", "files", "MB", "sampled", "sample ratio", "estimated MB"
    );
    for r in &e.by_source {
        println!(
            "{:<24} {:>7} {:>12.3} {:>8} {:>13.3} {:>16.3}",
            r.source,
            r.files,
            mb(r.bytes),
            r.sampled_files,
            r.sample_ratio,
            mb(r.estimated_bytes_after)
        );
    }
    println!(
        "\nestimated: {:.3} MB -> {:.3} MB, saving about {:.3} MB",
        mb(e.bytes),
        mb(e.estimated_bytes_after),
        (e.bytes as f64 - e.estimated_bytes_after as f64) / 1e6
    );
    for (file, reason) in &e.sample_failures {
        println!("  sample failed (counted as unchanged): {file}: {reason}");
    }
    Ok(())
}

fn serde_json_string(e: &archive::Estimate) -> String {
    // The library's Estimate is serializable; the report helper keeps the
    // CLI free of a direct serde dependency.
    archive::job::estimate_json(e)
}

fn merge(p: &Parsed<RecompressArgs>) -> Result<()> {
    if p.files.is_empty() {
        bail!("--merge-reports needs the JSON reports to merge");
    }
    let mut reports = Vec::new();
    for f in &p.files {
        let text = std::fs::read_to_string(Path::new(f)).with_context(|| format!("reading {f}"))?;
        reports.push(Report::from_json(&text).with_context(|| f.clone())?);
    }
    let merged = Report::merge(&reports)?;
    write_report(p, &merged)?;
    if !p.args.quiet {
        print!("{}", merged.to_table());
    }
    Ok(())
}
