//! The job journal: an append-only file of JSON lines that lets a job
//! killed at any moment resume without redoing verified work.
//!
//! Three kinds of record (see docs/recompress.md):
//! - `job`: the first line; the target and options, the shard and the
//!   canonical input roots. A journal is never reused for a different
//!   target, shard or set of inputs (a job over another tree from the same
//!   directory refuses with a message naming the journal, instead of
//!   resuming and reporting the other tree's files).
//! - `start`: written (and fsynced) after a file was encoded in memory and
//!   before its temporary file is created; it holds the size and CRC-32 of
//!   the bytes about to be written. On resume, an output whose size and CRC
//!   match can only be the verified file this job renamed into place, so a
//!   kill between the rename and the `done` record costs nothing.
//! - `done`: the file's outcome, as it appears in the report.
//!
//! Each record is one `write` of a whole line followed by fsync; a kill can
//! tear only the last line, which is ignored when the journal is read back
//! (and a newline is written before the next record).
//!
//! A job holds an exclusive lock on its journal (`flock`) for its whole
//! run: a second process on the same journal refuses at once and changes
//! nothing.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::discover::SourceKind;
use super::report::{FileRecord, Status};
use crate::error::{Context, Error, Result};

/// Journal format version, in every `job` record (2: inputs recorded).
pub const JOURNAL_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Record {
    Job {
        version: u32,
        /// The job's settings (target algorithm and every option that
        /// changes output bytes), compared on resume.
        settings: String,
        shard: String,
        /// Canonical input roots (directories, files, file lists), sorted.
        #[serde(default)]
        inputs: Vec<String>,
    },
    Start(StartRecord),
    Done(FileRecord),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRecord {
    pub input: String,
    pub output: String,
    pub kind: SourceKind,
    pub bytes_before: u64,
    /// Size and CRC-32 of the output about to be written.
    pub bytes_after: u64,
    pub crc32: u32,
    pub source_algorithm: String,
    pub target_algorithm: String,
}

/// What a journal said when it was opened.
#[derive(Debug, Default)]
pub struct Resumed {
    /// The last `done` record of each input.
    pub done: HashMap<String, FileRecord>,
    /// `start` records with no later `done`.
    pub started: HashMap<String, StartRecord>,
    /// Every output this job has started or finished writing: they are not
    /// inputs of the job when it resumes.
    pub outputs: Vec<String>,
    /// Lines that could not be read (a torn last line after a kill).
    pub torn_lines: usize,
}

/// An open journal, appended to by the job's workers (behind a mutex).
pub struct Journal {
    file: File,
    path: PathBuf,
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::io(Context::default(), e).with_file(path)
}

impl Journal {
    /// Open (or create) the journal at `path` for a job with `settings`;
    /// `restart` discards an existing journal's contents.
    pub fn open(
        path: &Path,
        settings: &str,
        shard: &str,
        inputs: &[String],
        restart: bool,
    ) -> Result<(Journal, Resumed)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        // Lock before reading or truncating anything: a second job on this
        // journal must change nothing.
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::bad_parameter(format!(
                    "{}: another fpack-ng recompress is running with this journal; \
                     wait for it to finish, or give this job another --journal",
                    path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(path, e)),
        }
        let mut text = Vec::new();
        if restart {
            file.set_len(0).map_err(|e| io_error(path, e))?;
        } else {
            file.read_to_end(&mut text).map_err(|e| io_error(path, e))?;
        }
        let mut resumed = Resumed::default();
        let mut has_job = false;
        for line in text.split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record: Record = match serde_json::from_slice(line) {
                Ok(r) => r,
                Err(_) => {
                    resumed.torn_lines += 1;
                    continue;
                }
            };
            match record {
                Record::Job {
                    version,
                    settings: s,
                    shard: sh,
                    inputs: their_inputs,
                } => {
                    if version != JOURNAL_VERSION || s != settings || sh != shard {
                        return Err(Error::bad_parameter(format!(
                            "{}: this journal belongs to another job (settings \"{s}\", shard {sh}; \
                             this job: \"{settings}\", shard {shard}): give another --journal, or \
                             --restart to start over",
                            path.display()
                        )));
                    }
                    if their_inputs != inputs {
                        return Err(Error::bad_parameter(format!(
                            "{}: this journal belongs to a job over other inputs ({}; this job: {}): \
                             give this job another --journal (or run it from another directory), or \
                             --restart to start over",
                            path.display(),
                            their_inputs.join(", "),
                            inputs.join(", ")
                        )));
                    }
                    has_job = true;
                }
                Record::Start(s) => {
                    resumed.outputs.push(s.output.clone());
                    resumed.started.insert(s.input.clone(), s);
                }
                Record::Done(d) => {
                    resumed.started.remove(&d.input);
                    if d.status == Status::Recompressed {
                        resumed.outputs.push(d.output.clone());
                    }
                    resumed.done.insert(d.input.clone(), d);
                }
            }
        }
        let mut journal = Journal {
            file,
            path: path.to_path_buf(),
        };
        if !text.is_empty() && !text.ends_with(b"\n") {
            // A torn last line: end it so the next record starts clean.
            journal.write_line(b"\n".to_vec())?;
        }
        if !has_job {
            journal.append(&Record::Job {
                version: JOURNAL_VERSION,
                settings: settings.to_string(),
                shard: shard.to_string(),
                inputs: inputs.to_vec(),
            })?;
        }
        Ok((journal, resumed))
    }

    /// Append one record as one write, then make it durable.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::bad_parameter(format!("journal record: {e}")))?;
        line.push(b'\n');
        self.write_line(line)
    }

    fn write_line(&mut self, line: Vec<u8>) -> Result<()> {
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| io_error(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(input: &str, status: Status) -> FileRecord {
        FileRecord {
            input: input.into(),
            output: format!("{input}.fz"),
            kind: SourceKind::Fits,
            status,
            reason: None,
            source_algorithm: "none".into(),
            target_algorithm: "RICE_1".into(),
            bytes_before: 100,
            bytes_after: 50,
            seconds: 0.1,
        }
    }

    fn tree(name: &str) -> Vec<String> {
        vec![format!("/archive/{name}")]
    }

    #[test]
    fn other_inputs_and_a_second_process_are_refused_and_change_nothing() {
        let dir = std::env::temp_dir().join(format!("fpackng-journal-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("j.jsonl");
        let (mut j, _) = Journal::open(&path, "RICE_1", "0/1", &tree("a"), false).unwrap();
        j.append(&Record::Done(record("a.fits", Status::Recompressed)))
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        // The journal is in use: refused at once, even with --restart.
        for restart in [false, true] {
            let e = Journal::open(&path, "RICE_1", "0/1", &tree("a"), restart)
                .err()
                .expect("a second open of a journal in use must fail");
            assert!(e.to_string().contains("another fpack-ng recompress"), "{e}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), before);
        drop(j);
        // Another tree with the same settings: refused, naming the journal.
        let e = Journal::open(&path, "RICE_1", "0/1", &tree("b"), false)
            .err()
            .expect("another tree must be refused");
        assert!(
            e.to_string().contains("other inputs") && e.to_string().contains("j.jsonl"),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let (_, r) = Journal::open(&path, "RICE_1", "0/1", &tree("a"), false).unwrap();
        assert_eq!(r.done.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resumes_and_tolerates_a_torn_line() {
        let dir = std::env::temp_dir().join(format!("fpackng-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("j.jsonl");
        {
            let (mut j, r) = Journal::open(&path, "RICE_1", "0/1", &tree("a"), false).unwrap();
            assert!(r.done.is_empty());
            j.append(&Record::Done(record("a.fits", Status::Recompressed)))
                .unwrap();
            j.append(&Record::Start(StartRecord {
                input: "b.fits".into(),
                output: "b.fits.fz".into(),
                kind: SourceKind::Fits,
                bytes_before: 10,
                bytes_after: 5,
                crc32: 7,
                source_algorithm: "none".into(),
                target_algorithm: "RICE_1".into(),
            }))
            .unwrap();
        }
        // A kill in the middle of a record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"event":"done","inp"#).unwrap();
        drop(f);
        let (mut j, r) = Journal::open(&path, "RICE_1", "0/1", &tree("a"), false).unwrap();
        assert_eq!(r.torn_lines, 1);
        assert_eq!(r.done["a.fits"].status, Status::Recompressed);
        assert!(r.started.contains_key("b.fits"));
        assert_eq!(
            r.outputs,
            vec!["a.fits.fz".to_string(), "b.fits.fz".to_string()]
        );
        j.append(&Record::Done(record("b.fits", Status::Kept)))
            .unwrap();
        drop(j);
        let (_, r) = Journal::open(&path, "RICE_1", "0/1", &tree("a"), false).unwrap();
        assert!(r.started.is_empty());
        assert_eq!(r.done.len(), 2);
        // Another target refuses the journal; --restart empties it.
        assert!(Journal::open(&path, "JXL_1", "0/1", &tree("a"), false).is_err());
        let (_, r) = Journal::open(&path, "JXL_1", "0/1", &tree("a"), true).unwrap();
        assert!(r.done.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
