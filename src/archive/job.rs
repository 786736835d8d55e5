//! The recompression job: every file of a shard decoded, re-encoded to the
//! target, checked and put in place, in parallel, resumably.
//!
//! One file, in order:
//! 1. decode the source to plain FITS in memory (`.fz`: every tile decoded
//!    and CHECKSUM/DATASUM verified; `.fits.gz`: gunzipped under the
//!    size limit; `.fits`: read from disk as it is);
//! 2. encode it to the target in memory; if that is not smaller than the
//!    input, stop: the file is kept as it is;
//! 3. journal a `start` record with the output's size and CRC-32;
//! 4. write a temporary file beside the output, re-read it (structure and
//!    CRC), decode it and compare every pixel and every non-structural
//!    header card with the source ([`verify_compressed`]), then rename it
//!    into place, durably;
//! 5. delete the input if asked (never the input of an in-place rewrite,
//!    which the rename replaced);
//! 6. journal the `done` record.
//!
//! A failure at any step leaves the input as it was and no output (the
//! temporary file is removed) and is recorded with its reason; the job goes
//! on. A kill leaves at most a temporary file, which the next run removes.
//!
//! Files run on their own worker threads (`jobs` of them), each file's
//! tiles on rayon's pool. Workers are plain threads, not rayon tasks, so a
//! worker waiting for memory never blocks a thread that a running file's
//! tiles need. Memory is bounded by a byte budget: a file reserves an
//! estimate of what it will hold (source, decoded image, encoded output)
//! before it starts; a file larger than the whole budget runs alone.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use super::discover::{discover, resolve_collisions, Shard, Source, SourceKind, Task};
use super::journal::{Journal, Record, StartRecord};
use super::report::{FileRecord, Report, Status};
use crate::codec;
use crate::error::{Context, Error, Result};
use crate::fits::checksum::Crc;
use crate::pack::file::{is_temp_file, write_atomically, WriteMode};
use crate::pack::list::list;
use crate::pack::{
    compress_stream, decompress_stream, verify_compressed, CompressOptions, DecompressOptions,
    HduAction, Input,
};

/// What a job does.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// The target: algorithm, tiling and codec options. Quantization must
    /// be off (a recompression job never loses pixels); header directives
    /// (FZALGOR...) are ignored so that the job's target is what is written.
    pub compress: CompressOptions,
    /// Delete `x.fits` / `x.fits.gz` once `x.fits.fz` is verified (fpack -D).
    pub delete_originals: bool,
    /// Write results under this directory (same relative paths) instead of
    /// beside or over the inputs; inputs are then never modified.
    pub output_dir: Option<PathBuf>,
    /// The journal; `None` runs without one (nothing to resume from).
    pub journal: Option<PathBuf>,
    /// Ignore what an existing journal says and start over.
    pub restart: bool,
    pub shard: Shard,
    /// Files in flight at once.
    pub jobs: usize,
    /// Bytes the files in flight may hold in memory together (estimated).
    pub memory_budget: u64,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            compress: CompressOptions::default(),
            delete_originals: false,
            output_dir: None,
            journal: None,
            restart: false,
            shard: Shard::default(),
            jobs: 1,
            memory_budget: 4 << 30,
        }
    }
}

impl JobOptions {
    /// Everything that changes the bytes written: a journal is only resumed
    /// by a job with the same settings.
    pub fn settings(&self) -> String {
        let c = &self.compress;
        format!(
            "target={} tiling={:?} codec={:?} checksums={} delete={} output_dir={:?}",
            c.algorithm, c.tiling, c.codec, c.checksums, self.delete_originals, self.output_dir
        )
    }

    fn check(&self) -> Result<()> {
        if self.compress.quantize.is_some() || !self.compress.is_lossless_codec() {
            return Err(Error::bad_parameter(
                "recompression is lossless only: quantization and lossy Hcompress are refused",
            ));
        }
        if self.delete_originals && self.output_dir.is_some() {
            return Err(Error::bad_parameter(
                "deleting originals and writing to an output directory exclude each other",
            ));
        }
        Ok(())
    }
}

/// Resolve a user's algorithm name ("rice", "gzip2", "jxl", "RICE_1") to
/// the ZCMPTYPE of a codec that can encode, through the registry, so that
/// every codec that exists is accepted.
pub fn resolve_algorithm(name: &str) -> Result<String> {
    if let Some(codec) = codec::find_by_name(name) {
        if codec.can_encode() {
            return Ok(codec.id().to_string());
        }
        return Err(Error::bad_parameter(format!(
            "{} can be read but not written",
            codec.id()
        )));
    }
    let known: Vec<&str> = codec::REGISTRY
        .iter()
        .filter(|c| c.can_encode())
        .map(|c| c.id())
        .collect();
    Err(Error::bad_parameter(format!(
        "unknown algorithm {name} (known: {})",
        known.join(", ")
    )))
}

/// What the progress display is told.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Once, before work starts: everything in this shard, and how much of
    /// it an earlier run already finished.
    Planned {
        files: u64,
        bytes: u64,
        files_done: u64,
        bytes_done: u64,
    },
    /// A file finished in this run.
    Finished(&'a FileRecord),
}

/// The files of this shard, with what the journal knows of them.
struct Plan {
    tasks: Vec<Task>,
    /// Outcomes known without work (from the journal, or rejected inputs).
    known: Vec<FileRecord>,
    /// `start` records to resolve, by input.
    started: BTreeMap<String, StartRecord>,
    temp_files: Vec<PathBuf>,
}

fn plan(
    sources: &[Source],
    opts: &JobOptions,
    resumed: Option<&super::journal::Resumed>,
) -> Result<Plan> {
    let found = discover(sources, opts.output_dir.as_deref())?;
    let mut tasks: Vec<Task> = found
        .tasks
        .into_iter()
        .filter(|t| opts.shard.owns(&t.key))
        .collect();
    if let Some(resumed) = resumed {
        // What this job wrote is not one of its inputs.
        let written: HashSet<&str> = resumed.outputs.iter().map(String::as_str).collect();
        tasks.retain(|t| {
            let id = t.id();
            !written.contains(id.as_str())
                || resumed.done.contains_key(&id)
                || resumed.started.contains_key(&id)
        });
    }
    let (mut tasks, collisions) = resolve_collisions(tasks);
    let mut known = Vec::new();
    for r in found.rejected.into_iter().chain(collisions) {
        let key = r.input.to_string_lossy().into_owned();
        // Keyless rejections (a missing argument) are reported by one shard
        // only, so that merged reports count them once.
        let owned = match &r.output_key {
            Some(k) => opts.shard.owns(k),
            None => opts.shard.index == 0,
        };
        if !owned {
            continue;
        }
        let size = fs::metadata(&r.input).map(|m| m.len()).unwrap_or(0);
        known.push(FileRecord {
            input: key.clone(),
            output: String::new(),
            kind: SourceKind::from_name(&key).unwrap_or(SourceKind::Fits),
            status: if r.output_key.is_some() {
                Status::OutputExists
            } else {
                Status::Failed
            },
            reason: Some(r.reason),
            source_algorithm: String::new(),
            target_algorithm: String::new(),
            bytes_before: size,
            bytes_after: size,
            seconds: 0.0,
        });
    }
    let mut started = BTreeMap::new();
    if let Some(resumed) = resumed {
        let listed: HashSet<String> = tasks.iter().map(Task::id).collect();
        tasks.retain(|t| match resumed.done.get(&t.id()) {
            Some(d) if d.status.is_final() => {
                known.push(d.clone());
                false
            }
            _ => true,
        });
        for (input, s) in &resumed.started {
            if resumed.done.get(input).is_some_and(|d| d.status.is_final()) {
                continue;
            }
            if !listed.contains(input) {
                // Deleted after its output was verified, before `done`.
                tasks.push(Task {
                    input: PathBuf::from(input),
                    kind: s.kind,
                    output: PathBuf::from(&s.output),
                    key: String::new(),
                });
            }
            started.insert(input.clone(), s.clone());
        }
        // Final outcomes of inputs that are gone now (deleted with -D).
        let have: HashSet<String> = known.iter().map(|r| r.input.clone()).collect();
        for (input, d) in &resumed.done {
            if d.status.is_final() && !have.contains(input) && !listed.contains(input) {
                known.push(d.clone());
            }
        }
    }
    tasks.sort_by(|a, b| a.input.cmp(&b.input));
    // Our temporary files beside this shard's outputs: left by a kill.
    let mut by_dir: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for t in &tasks {
        let dir = t.output.parent().unwrap_or(Path::new("")).to_path_buf();
        let name = t
            .output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        by_dir
            .entry(dir)
            .or_default()
            .insert(format!(".{name}.fpack-ng-tmp."));
    }
    let mut temp_files = Vec::new();
    for (dir, prefixes) in by_dir {
        let listing = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        let Ok(entries) = fs::read_dir(listing) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if is_temp_file(&p) && prefixes.iter().any(|pre| name.starts_with(pre.as_str())) {
                temp_files.push(dir.join(&name));
            }
        }
    }
    let _ = found.temp_files;
    Ok(Plan {
        tasks,
        known,
        started,
        temp_files,
    })
}

/// A file decoded and encoded in memory, not yet written.
struct Prepared {
    /// The decoded source when it is not the input file itself.
    plain: Option<Vec<u8>>,
    encoded: Vec<u8>,
    source_algorithm: String,
    target_algorithm: String,
    bytes_before: u64,
}

enum Preparation {
    Ready(Prepared),
    AlreadyTarget { algorithm: String, bytes: u64 },
}

impl Prepared {
    fn source<'a>(&'a self, task: &'a Task) -> Input<'a> {
        match &self.plain {
            Some(b) => Input::Bytes(b),
            None => Input::Path(&task.input),
        }
    }
}

fn io_in(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(Context::default(), e).with_file(path)
}

/// Gunzip a whole file, refusing more than the limit allows.
fn gunzip(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = fs::File::open(path).map_err(io_in(path))?;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file))
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::malformed(Context::default(), format!("gzip: {e}")).with_file(path))?;
    if out.len() as u64 > limit {
        return Err(Error::LimitExceeded {
            context: Context {
                file: Some(path.to_path_buf()),
                ..Default::default()
            },
            what: "the gunzipped size".into(),
            value: u128::from(limit) + 1,
            limit: u128::from(limit),
        });
    }
    Ok(out)
}

fn compress_options(opts: &JobOptions) -> CompressOptions {
    let mut c = opts.compress.clone();
    c.header_directives = false;
    c.quantize = None;
    c
}

fn prepare(task: &Task, opts: &JobOptions) -> Result<Preparation> {
    let copts = compress_options(opts);
    let limits = copts.limits;
    let bytes_before = fs::metadata(&task.input).map_err(io_in(&task.input))?.len();
    let (plain, source_algorithm) = match task.kind {
        SourceKind::Fits => (None, "FITS".to_string()),
        SourceKind::GzipFits => (
            Some(gunzip(&task.input, limits.max_hdu_bytes)?),
            "FITS.gz".to_string(),
        ),
        SourceKind::Compressed => {
            // Headers only: a file already in the target is left alone
            // without decoding it.
            let mut algorithms = BTreeSet::new();
            let mut plain_images = false;
            if let Ok(entries) = list(Input::Path(&task.input), limits, &copts.context) {
                for e in entries {
                    match e.compression {
                        Some((alg, _)) => {
                            algorithms.insert(alg);
                        }
                        None if e.kind == "IMAGE" && !e.axes.is_empty() => plain_images = true,
                        None => {}
                    }
                }
            }
            let label = if algorithms.is_empty() {
                "none".to_string()
            } else {
                algorithms.iter().cloned().collect::<Vec<_>>().join("+")
            };
            if !plain_images && algorithms.len() == 1 && algorithms.contains(&copts.algorithm) {
                return Ok(Preparation::AlreadyTarget {
                    algorithm: label,
                    bytes: bytes_before,
                });
            }
            let dopts = DecompressOptions {
                hdus: None,
                checksums: false,
                verify_checksums: true,
                limits,
                context: copts.context,
            };
            let mut plain = Vec::new();
            decompress_stream(Input::Path(&task.input), &mut plain, &dopts)?;
            (Some(plain), label)
        }
    };
    let mut encoded = Vec::new();
    let source = match &plain {
        Some(b) => Input::Bytes(b),
        None => Input::Path(&task.input),
    };
    let report =
        compress_stream(source, &mut encoded, &copts).map_err(|e| e.with_file(&task.input))?;
    if !report.lossless() {
        return Err(Error::bad_parameter(format!(
            "{}: the target is lossy for this file; refused",
            task.input.display()
        )));
    }
    let targets: BTreeSet<&str> = report
        .hdus
        .iter()
        .filter_map(|h| match &h.action {
            HduAction::Compressed(s) => Some(s.algorithm.as_str()),
            _ => None,
        })
        .collect();
    let target_algorithm = if targets.is_empty() {
        "none".to_string()
    } else {
        targets.into_iter().collect::<Vec<_>>().join("+")
    };
    Ok(Preparation::Ready(Prepared {
        plain,
        encoded,
        source_algorithm,
        target_algorithm,
        bytes_before,
    }))
}

/// Size and CRC-32 of a file, if it exists.
fn file_crc(path: &Path) -> Option<(u64, u32)> {
    let mut f = fs::File::open(path).ok()?;
    let mut crc = Crc::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
        total += n as u64;
    }
    Some((total, crc.sum()))
}

struct Worker<'a> {
    opts: &'a JobOptions,
    journal: &'a Mutex<Option<Journal>>,
    journal_broken: &'a AtomicBool,
}

impl Worker<'_> {
    fn journal(&self, record: &Record) -> Result<()> {
        let mut guard = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(j) = guard.as_mut() {
            if let Err(e) = j.append(record) {
                self.journal_broken.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(())
    }

    fn record(&self, task: &Task, status: Status, reason: Option<String>) -> FileRecord {
        let size = fs::metadata(&task.input).map(|m| m.len()).unwrap_or(0);
        FileRecord {
            input: task.id(),
            output: task.output.to_string_lossy().into_owned(),
            kind: task.kind,
            status,
            reason,
            source_algorithm: String::new(),
            target_algorithm: String::new(),
            bytes_before: size,
            bytes_after: size,
            seconds: 0.0,
        }
    }

    /// One file, start to end; never panics out (see `run_guarded`).
    fn process(&self, task: &Task, start: Option<&StartRecord>) -> Result<FileRecord> {
        let in_place = task.in_place();
        if let Some(s) = start {
            if file_crc(&task.output) == Some((s.bytes_after, s.crc32)) {
                // Renamed into place (after verification) before the kill.
                if self.opts.delete_originals && !in_place && task.input.exists() {
                    fs::remove_file(&task.input).map_err(io_in(&task.input))?;
                }
                return Ok(FileRecord {
                    input: task.id(),
                    output: s.output.clone(),
                    kind: s.kind,
                    status: Status::Recompressed,
                    reason: None,
                    source_algorithm: s.source_algorithm.clone(),
                    target_algorithm: s.target_algorithm.clone(),
                    bytes_before: s.bytes_before,
                    bytes_after: s.bytes_after,
                    seconds: 0.0,
                });
            }
            if !task.input.exists() {
                return Err(Error::bad_parameter(format!(
                    "{}: the input is gone and {} is not the file this job wrote",
                    task.input.display(),
                    task.output.display()
                )));
            }
            if !in_place && task.output.exists() {
                return Err(Error::bad_parameter(format!(
                    "{}: exists but is not the file this job wrote; left alone",
                    task.output.display()
                )));
            }
        }
        if !in_place && task.output.exists() {
            let mut r = self.record(task, Status::OutputExists, None);
            r.reason = Some(format!("{} already exists", task.output.display()));
            return Ok(r);
        }
        let prepared = match prepare(task, self.opts)? {
            Preparation::AlreadyTarget { algorithm, bytes } => {
                let mut r = self.record(task, Status::AlreadyTarget, None);
                r.source_algorithm = algorithm.clone();
                r.target_algorithm = algorithm;
                r.bytes_before = bytes;
                r.bytes_after = bytes;
                return Ok(r);
            }
            Preparation::Ready(p) => p,
        };
        let after = prepared.encoded.len() as u64;
        let mut record = self.record(task, Status::Kept, None);
        record.source_algorithm = prepared.source_algorithm.clone();
        record.target_algorithm = prepared.target_algorithm.clone();
        record.bytes_before = prepared.bytes_before;
        record.bytes_after = prepared.bytes_before;
        if after >= prepared.bytes_before {
            record.reason = Some(format!(
                "{} would be {after} bytes, the input is {}",
                prepared.target_algorithm, prepared.bytes_before
            ));
            return Ok(record);
        }
        let mut crc = Crc::new();
        crc.update(&prepared.encoded);
        self.journal(&Record::Start(StartRecord {
            input: task.id(),
            output: record.output.clone(),
            kind: task.kind,
            bytes_before: prepared.bytes_before,
            bytes_after: after,
            crc32: crc.sum(),
            source_algorithm: prepared.source_algorithm.clone(),
            target_algorithm: prepared.target_algorithm.clone(),
        }))?;
        if let Some(dir) = task.output.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_in(dir))?;
        }
        let limits = self.opts.compress.limits;
        let mode = WriteMode {
            overwrite: in_place,
            durable: true,
            reread: true,
            limits,
        };
        write_atomically(
            &task.output,
            mode,
            |w| {
                w.write_all(&prepared.encoded)
                    .map_err(|e| Error::io(Context::default(), e).with_file(&task.output))
            },
            // The pixels and keywords as re-read from the disk.
            |temp, _| {
                verify_compressed(
                    prepared.source(task),
                    Input::Path(temp),
                    limits,
                    &self.opts.compress.context,
                )
                .map_err(|e| e.with_file(&task.input))
            },
        )?;
        if self.opts.delete_originals && !in_place {
            fs::remove_file(&task.input).map_err(io_in(&task.input))?;
        }
        record.status = Status::Recompressed;
        record.bytes_after = after;
        Ok(record)
    }

    fn run_guarded(&self, task: &Task, start: Option<&StartRecord>) -> FileRecord {
        let t0 = Instant::now();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process(task, start)));
        let mut record = match outcome {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => self.record(task, Status::Failed, Some(e.to_string())),
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                self.record(
                    task,
                    Status::Failed,
                    Some(format!("internal error ({what}); the input is unchanged")),
                )
            }
        };
        record.seconds = t0.elapsed().as_secs_f64();
        record
    }
}

/// Bytes reserved by files in flight.
struct Budget {
    limit: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

impl Budget {
    fn acquire(&self, want: u64) -> u64 {
        let want = want.min(self.limit).max(1);
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used > 0 && *used + want > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += want;
        want
    }
    fn release(&self, n: u64) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        *used -= n;
        self.freed.notify_all();
    }
}

/// What a file will hold in memory, roughly: the source, the decoded image
/// (compressed sources expand, typically 2-4x) and the encoded output.
fn memory_estimate(task: &Task) -> u64 {
    let size = fs::metadata(&task.input).map(|m| m.len()).unwrap_or(0);
    match task.kind {
        SourceKind::Fits => 2 * size,
        SourceKind::GzipFits | SourceKind::Compressed => 8 * size,
    }
}

/// Run `each` over `tasks` on `jobs` worker threads under the memory
/// budget, handing each result to `done` (in completion order).
fn run_workers<T: Send>(
    tasks: &[Task],
    jobs: usize,
    budget: u64,
    stop: &AtomicBool,
    each: &(dyn Fn(&Task) -> T + Sync),
    done: &(dyn Fn(T) + Sync),
) {
    let budget = Budget {
        limit: budget.max(1),
        used: Mutex::new(0),
        freed: Condvar::new(),
    };
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(tasks.len().max(1)) {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(task) = tasks.get(i) else { return };
                let held = budget.acquire(memory_estimate(task));
                let result = each(task);
                budget.release(held);
                done(result);
            });
        }
    });
}

/// The job's inputs as the journal records them: canonical paths (as given
/// when they cannot be resolved), file lists marked as such, sorted.
fn input_roots(sources: &[Source]) -> Vec<String> {
    let canonical = |p: &Path| {
        fs::canonicalize(p)
            .or_else(|_| std::env::current_dir().map(|d| d.join(p)))
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let mut roots: Vec<String> = sources
        .iter()
        .map(|s| match s {
            Source::Path(p) => canonical(p),
            Source::List(p) => format!("list:{}", canonical(p)),
        })
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// Run a recompression job over `sources` (this shard's part of them).
pub fn run(
    sources: &[Source],
    opts: &JobOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report> {
    opts.check()?;
    let started_at = Instant::now();
    let settings = opts.settings();
    let shard = opts.shard.to_string();
    let (journal, resumed) = match &opts.journal {
        Some(path) => {
            let (j, r) =
                Journal::open(path, &settings, &shard, &input_roots(sources), opts.restart)?;
            (Some(j), Some(r))
        }
        None => (None, None),
    };
    let plan = plan(sources, opts, resumed.as_ref())?;
    for t in &plan.temp_files {
        let _ = fs::remove_file(t);
    }
    let sizes: Vec<u64> = plan
        .tasks
        .iter()
        .map(|t| fs::metadata(&t.input).map(|m| m.len()).unwrap_or(0))
        .collect();
    progress(Progress::Planned {
        files: (plan.tasks.len() + plan.known.len()) as u64,
        bytes: sizes.iter().sum::<u64>() + plan.known.iter().map(|r| r.bytes_before).sum::<u64>(),
        files_done: plan.known.len() as u64,
        bytes_done: plan.known.iter().map(|r| r.bytes_before).sum(),
    });
    let journal = Mutex::new(journal);
    let broken = AtomicBool::new(false);
    let worker = Worker {
        opts,
        journal: &journal,
        journal_broken: &broken,
    };
    let records = Mutex::new(plan.known.clone());
    let processed = Mutex::new(0u64);
    run_workers(
        &plan.tasks,
        opts.jobs,
        opts.memory_budget,
        &broken,
        &|task| worker.run_guarded(task, plan.started.get(&task.id())),
        &|record: FileRecord| {
            // A journal that cannot be written stops the job: without it a
            // resume could not tell what was done.
            let _ = worker.journal(&Record::Done(record.clone()));
            progress(Progress::Finished(&record));
            if !matches!(record.status, Status::OutputExists | Status::AlreadyTarget) {
                *processed.lock().unwrap_or_else(|p| p.into_inner()) += record.bytes_before;
            }
            records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(record);
        },
    );
    if broken.load(Ordering::SeqCst) {
        return Err(Error::bad_parameter(format!(
            "the journal {} could not be written; the job stopped (files finished so far are safe; \
             run again to resume)",
            opts.journal.as_deref().unwrap_or(Path::new("?")).display()
        )));
    }
    let records = records.into_inner().unwrap_or_else(|p| p.into_inner());
    let processed = processed.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(Report::new(
        &opts.compress.algorithm,
        &shard,
        records,
        started_at.elapsed().as_secs_f64(),
        processed,
    ))
}

/// The outcome of `--dry-run`: savings estimated from a sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub target: String,
    pub shard: String,
    pub files: u64,
    pub bytes: u64,
    pub sampled_files: u64,
    pub sampled_bytes_before: u64,
    pub sampled_bytes_after: u64,
    pub estimated_bytes_after: u64,
    pub seconds: f64,
    /// One row per source kind: files, bytes, sample size and ratio.
    pub by_source: Vec<EstimateRow>,
    pub sample_failures: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EstimateRow {
    pub source: String,
    pub files: u64,
    pub bytes: u64,
    pub sampled_files: u64,
    pub sample_ratio: f64,
    pub estimated_bytes_after: u64,
}

/// The estimate as pretty JSON (for `--dry-run --report`).
pub fn estimate_json(estimate: &Estimate) -> String {
    serde_json::to_string_pretty(estimate).unwrap_or_default() + "\n"
}

/// Encode (in memory only) an evenly spread sample of `sample` files per
/// kind of source and extrapolate each kind's ratio to all its files.
/// Nothing is written; no journal is used.
pub fn dry_run(sources: &[Source], opts: &JobOptions, sample: usize) -> Result<Estimate> {
    opts.check()?;
    let started_at = Instant::now();
    let plan = plan(sources, opts, None)?;
    let kind_label = |k: SourceKind| match k {
        SourceKind::Fits => "FITS",
        SourceKind::GzipFits => "FITS.gz",
        SourceKind::Compressed => "tile-compressed (.fz)",
    };
    let mut groups: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for t in &plan.tasks {
        groups.entry(kind_label(t.kind)).or_default().push(t);
    }
    let mut chosen: Vec<Task> = Vec::new();
    for tasks in groups.values() {
        let n = sample.max(1).min(tasks.len());
        for i in 0..n {
            chosen.push(tasks[i * tasks.len() / n].clone());
        }
    }
    let results: Mutex<Vec<(Task, u64, Result<u64>)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    run_workers(
        &chosen,
        opts.jobs,
        opts.memory_budget,
        &stop,
        &|task| {
            let before = fs::metadata(&task.input).map(|m| m.len()).unwrap_or(0);
            let after =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prepare(task, opts)))
                    .unwrap_or_else(|_| Err(Error::bad_parameter("internal error")))
                    .map(|p| match p {
                        Preparation::Ready(p) => (p.encoded.len() as u64).min(before),
                        Preparation::AlreadyTarget { bytes, .. } => bytes,
                    });
            (task.clone(), before, after)
        },
        &|r| results.lock().unwrap_or_else(|p| p.into_inner()).push(r),
    );
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut by_source = Vec::new();
    let mut failures = Vec::new();
    let (mut sb, mut sa) = (0u64, 0u64);
    for (label, tasks) in &groups {
        let bytes: u64 = tasks
            .iter()
            .map(|t| fs::metadata(&t.input).map(|m| m.len()).unwrap_or(0))
            .sum();
        let (mut before, mut after, mut n) = (0u64, 0u64, 0u64);
        for (t, b, a) in &results {
            if kind_label(t.kind) != *label {
                continue;
            }
            n += 1;
            before += b;
            // A file that fails is left as it is.
            after += match a {
                Ok(a) => *a,
                Err(e) => {
                    failures.push((t.id(), e.to_string()));
                    *b
                }
            };
        }
        sb += before;
        sa += after;
        let ratio = if after > 0 {
            before as f64 / after as f64
        } else {
            1.0
        };
        by_source.push(EstimateRow {
            source: label.to_string(),
            files: tasks.len() as u64,
            bytes,
            sampled_files: n,
            sample_ratio: ratio,
            estimated_bytes_after: (bytes as f64 / ratio).round() as u64,
        });
    }
    Ok(Estimate {
        target: opts.compress.algorithm.clone(),
        shard: opts.shard.to_string(),
        files: plan.tasks.len() as u64,
        bytes: by_source.iter().map(|r| r.bytes).sum(),
        sampled_files: results.len() as u64,
        sampled_bytes_before: sb,
        sampled_bytes_after: sa,
        estimated_bytes_after: by_source.iter().map(|r| r.estimated_bytes_after).sum(),
        seconds: started_at.elapsed().as_secs_f64(),
        by_source,
        sample_failures: failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_resolve_through_the_registry() {
        assert_eq!(resolve_algorithm("rice").unwrap(), "RICE_1");
        assert_eq!(resolve_algorithm("RICE_1").unwrap(), "RICE_1");
        assert_eq!(resolve_algorithm("gzip").unwrap(), "GZIP_1");
        assert_eq!(resolve_algorithm("gzip2").unwrap(), "GZIP_2");
        assert_eq!(resolve_algorithm("jxl").unwrap(), "JXL_1");
        assert!(resolve_algorithm("nosuch").is_err());
    }
}
