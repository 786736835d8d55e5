//! What a job did: one record per file, and the summary built from them
//! (totals, a table per source and target algorithm, failures with their
//! reasons), as a human table or JSON. Shard reports merge into one by
//! concatenating their records; a file that appears in two shards is an
//! error, since shards must be disjoint.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::discover::SourceKind;
use crate::error::{Error, Result};

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Written to the target, verified, renamed into place.
    Recompressed,
    /// Left as it is: the result would not be smaller.
    Kept,
    /// Every compressed HDU already uses the target algorithm.
    AlreadyTarget,
    /// Its output name is taken (by a file that was there before the job,
    /// or by another input of the job).
    OutputExists,
    /// Decoding, encoding, verifying or writing failed; the input is as it
    /// was and no output was left.
    Failed,
}

impl Status {
    /// Whether a resumed job may trust this outcome instead of redoing it.
    pub fn is_final(self) -> bool {
        self != Status::Failed
    }
    pub fn label(self) -> &'static str {
        match self {
            Status::Recompressed => "recompressed",
            Status::Kept => "kept",
            Status::AlreadyTarget => "already-target",
            Status::OutputExists => "output-exists",
            Status::Failed => "failed",
        }
    }
}

/// One file's outcome (also the journal's `done` record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub input: String,
    pub output: String,
    pub kind: SourceKind,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// "FITS", "FITS.gz", or the ZCMPTYPEs of a `.fz` joined by `+`.
    pub source_algorithm: String,
    /// ZCMPTYPEs written (a codec may fall back for some pixel types).
    pub target_algorithm: String,
    /// The input's size.
    pub bytes_before: u64,
    /// The output's size when recompressed, else the input's.
    pub bytes_after: u64,
    pub seconds: f64,
}

/// One row of the per-algorithm table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlgorithmRow {
    pub source: String,
    pub target: String,
    pub files: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub file: String,
    pub reason: String,
}

/// The job report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub target: String,
    /// "i/N", or "merged" for merged shard reports.
    pub shard: String,
    pub files: u64,
    /// Files per status label.
    pub by_status: BTreeMap<String, u64>,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub bytes_saved: i64,
    pub ratio: f64,
    /// Wall time of the run(s) that produced this report; merged reports
    /// take the longest shard, as shards run side by side.
    pub wall_seconds: f64,
    /// Input bytes decoded and re-encoded by this run (resumed files whose
    /// outcome came from the journal are not counted).
    pub processed_bytes: u64,
    /// processed_bytes / wall_seconds, in 10^6 bytes per second.
    pub throughput_mb_s: f64,
    pub by_algorithm: Vec<AlgorithmRow>,
    pub failures: Vec<Failure>,
    pub records: Vec<FileRecord>,
}

fn ratio(before: u64, after: u64) -> f64 {
    if after == 0 {
        0.0
    } else {
        before as f64 / after as f64
    }
}

impl Report {
    /// Build a report from per-file records.
    pub fn new(
        target: &str,
        shard: &str,
        mut records: Vec<FileRecord>,
        wall_seconds: f64,
        processed_bytes: u64,
    ) -> Report {
        records.sort_by(|a, b| a.input.cmp(&b.input));
        let mut by_status = BTreeMap::new();
        let mut rows: BTreeMap<(String, String), AlgorithmRow> = BTreeMap::new();
        let (mut before, mut after) = (0u64, 0u64);
        let mut failures = Vec::new();
        for r in &records {
            *by_status.entry(r.status.label().to_string()).or_insert(0) += 1;
            before += r.bytes_before;
            after += r.bytes_after;
            if r.status == Status::Failed {
                failures.push(Failure {
                    file: r.input.clone(),
                    reason: r.reason.clone().unwrap_or_default(),
                });
            }
            // The table describes what recompression did; files left as
            // they were would only blur the ratios.
            if r.status == Status::Recompressed {
                let row = rows
                    .entry((r.source_algorithm.clone(), r.target_algorithm.clone()))
                    .or_insert_with(|| AlgorithmRow {
                        source: r.source_algorithm.clone(),
                        target: r.target_algorithm.clone(),
                        files: 0,
                        bytes_before: 0,
                        bytes_after: 0,
                        ratio: 0.0,
                    });
                row.files += 1;
                row.bytes_before += r.bytes_before;
                row.bytes_after += r.bytes_after;
            }
        }
        let by_algorithm = rows
            .into_values()
            .map(|mut r| {
                r.ratio = ratio(r.bytes_before, r.bytes_after);
                r
            })
            .collect();
        Report {
            target: target.to_string(),
            shard: shard.to_string(),
            files: records.len() as u64,
            by_status,
            bytes_before: before,
            bytes_after: after,
            bytes_saved: before as i64 - after as i64,
            ratio: ratio(before, after),
            wall_seconds,
            processed_bytes,
            throughput_mb_s: if wall_seconds > 0.0 {
                processed_bytes as f64 / wall_seconds / 1e6
            } else {
                0.0
            },
            by_algorithm,
            failures,
            records,
        }
    }

    /// Merge shard reports into one; refuses overlapping shards.
    pub fn merge(reports: &[Report]) -> Result<Report> {
        let Some(first) = reports.first() else {
            return Err(Error::bad_parameter("no reports to merge"));
        };
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        for r in reports {
            if r.target != first.target {
                return Err(Error::bad_parameter(format!(
                    "reports of different targets ({} and {}) cannot be merged",
                    first.target, r.target
                )));
            }
            for rec in &r.records {
                if !seen.insert(rec.input.clone()) {
                    return Err(Error::bad_parameter(format!(
                        "{} appears in more than one report: the shards overlap",
                        rec.input
                    )));
                }
                records.push(rec.clone());
            }
        }
        let wall = reports.iter().map(|r| r.wall_seconds).fold(0.0, f64::max);
        let processed = reports.iter().map(|r| r.processed_bytes).sum();
        let shards: Vec<&str> = reports.iter().map(|r| r.shard.as_str()).collect();
        let label = if shards.len() == 1 {
            shards[0].to_string()
        } else {
            format!("merged({})", shards.join(","))
        };
        Ok(Report::new(&first.target, &label, records, wall, processed))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Report> {
        serde_json::from_str(text)
            .map_err(|e| Error::bad_parameter(format!("not a recompress report: {e}")))
    }

    /// The human summary: totals, the per-algorithm table, failures.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let mb = |b: u64| b as f64 / 1e6;
        let _ = writeln!(s, "recompress to {} (shard {})", self.target, self.shard);
        let statuses: Vec<String> = self
            .by_status
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let _ = writeln!(s, "files: {} ({})", self.files, statuses.join(", "));
        let _ = writeln!(
            s,
            "bytes: {:.3} MB -> {:.3} MB, saved {:.3} MB, ratio {:.3}",
            mb(self.bytes_before),
            mb(self.bytes_after),
            self.bytes_saved as f64 / 1e6,
            self.ratio
        );
        let _ = writeln!(
            s,
            "this run: {:.3} MB processed in {:.2} s, {:.2} MB/s",
            mb(self.processed_bytes),
            self.wall_seconds,
            self.throughput_mb_s
        );
        if !self.by_algorithm.is_empty() {
            let _ = writeln!(
                s,
                "\n{:<24} {:<16} {:>7} {:>14} {:>14} {:>7}",
                "source", "target", "files", "MB before", "MB after", "ratio"
            );
            for r in &self.by_algorithm {
                let _ = writeln!(
                    s,
                    "{:<24} {:<16} {:>7} {:>14.3} {:>14.3} {:>7.3}",
                    r.source,
                    r.target,
                    r.files,
                    mb(r.bytes_before),
                    mb(r.bytes_after),
                    r.ratio
                );
            }
        }
        let kept: Vec<&FileRecord> = self
            .records
            .iter()
            .filter(|r| r.status == Status::Kept)
            .collect();
        if !kept.is_empty() {
            let _ = writeln!(s, "\nkept as they were (the result would not be smaller):");
            for r in kept {
                let _ = writeln!(s, "  {}: {}", r.input, r.reason.as_deref().unwrap_or(""));
            }
        }
        if !self.failures.is_empty() {
            let _ = writeln!(s, "\nfailures ({}):", self.failures.len());
            for f in &self.failures {
                if f.reason.starts_with(&f.file) {
                    let _ = writeln!(s, "  {}", f.reason);
                } else {
                    let _ = writeln!(s, "  {}: {}", f.file, f.reason);
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(input: &str, status: Status, before: u64, after: u64) -> FileRecord {
        FileRecord {
            input: input.into(),
            output: input.into(),
            kind: SourceKind::Compressed,
            status,
            reason: (status == Status::Failed).then(|| "bad".to_string()),
            source_algorithm: "GZIP_1".into(),
            target_algorithm: "RICE_1".into(),
            bytes_before: before,
            bytes_after: after,
            seconds: 1.0,
        }
    }

    #[test]
    fn totals_and_merge() {
        let a = Report::new(
            "RICE_1",
            "0/2",
            vec![
                rec("a", Status::Recompressed, 100, 40),
                rec("b", Status::Failed, 10, 10),
            ],
            2.0,
            110,
        );
        let b = Report::new(
            "RICE_1",
            "1/2",
            vec![rec("c", Status::Recompressed, 50, 10)],
            4.0,
            50,
        );
        assert_eq!(
            (a.bytes_before, a.bytes_after, a.bytes_saved),
            (110, 50, 60)
        );
        assert_eq!(a.failures.len(), 1);
        assert_eq!(a.by_algorithm[0].files, 1);
        let m = Report::merge(&[a.clone(), b]).unwrap();
        assert_eq!((m.files, m.bytes_before, m.bytes_after), (3, 160, 60));
        assert_eq!(m.by_algorithm[0].files, 2);
        assert_eq!(m.wall_seconds, 4.0);
        assert_eq!(m.processed_bytes, 160);
        let back = Report::from_json(&m.to_json()).unwrap();
        assert_eq!(
            (back.files, back.bytes_after, &back.records),
            (m.files, m.bytes_after, &m.records)
        );
        assert!(
            Report::merge(&[a.clone(), a]).is_err(),
            "overlapping shards accepted"
        );
    }
}
