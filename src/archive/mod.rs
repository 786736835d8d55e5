//! Archive jobs: whole trees of FITS files recompressed to another
//! algorithm, safely, resumably, in parallel and sharded across machines.
//!
//! This layer sits above [`crate::pack`] and only calls it: decoding,
//! encoding, verification and the write-to-temporary-then-rename rule are
//! the pack layer's; what this layer adds is which files (discovery and
//! sharding), in what order and how many at once (the job), what has been
//! done (the journal) and what it came to (the report). See
//! docs/recompress.md for the journal format and the sharding contract.

pub mod discover;
pub mod job;
pub mod journal;
pub mod report;

pub use discover::{discover, Shard, Source, SourceKind, Task};
pub use job::{dry_run, resolve_algorithm, run, Estimate, JobOptions, Progress};
pub use report::{FileRecord, Report, Status};
