//! Which files a job works on, what each becomes, and which shard owns it.
//!
//! Inputs are directories (walked recursively), single files, file lists
//! or manifests (one path per line, first tab-separated column, relative to
//! the list's own directory) and glob patterns that the shell did not
//! expand. Every file gets a *key*: its output path relative to the root it
//! was found under. Shards are chosen by a stable hash of that key (FNV-1a,
//! which, unlike std's hasher, is fixed forever), so N runs given the same
//! arguments on N machines split the files without talking to each other,
//! and two inputs that would write the same output (`x.fits` and
//! `x.fits.gz`) always land in the same shard, where the collision is
//! resolved deterministically.
//!
//! The walk is sorted, skips symbolic links (no loops, no replacing a link
//! by a file) and our own temporary files, and keeps only FITS-looking
//! names; explicitly named files are taken whatever their name.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Context, Error, Result};
use crate::pack::file::is_temp_file;

/// What a source file holds, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// Plain FITS (`.fits`, `.fit`, `.fts`, or any explicitly named file).
    Fits,
    /// A whole FITS file gzip-compressed (`.fits.gz`).
    GzipFits,
    /// Tile-compressed FITS (`.fz`), recompressed in place.
    Compressed,
}

impl SourceKind {
    /// Classify a file name (case-insensitive). `None`: not a FITS name.
    pub fn from_name(name: &str) -> Option<SourceKind> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".fz") {
            Some(SourceKind::Compressed)
        } else if [".fits.gz", ".fit.gz", ".fts.gz"]
            .iter()
            .any(|s| lower.ends_with(s))
        {
            Some(SourceKind::GzipFits)
        } else if [".fits", ".fit", ".fts"].iter().any(|s| lower.ends_with(s)) {
            Some(SourceKind::Fits)
        } else {
            None
        }
    }

    /// The output file name, as fpack names it: `x.fits` and `x.fits.gz`
    /// become `x.fits.fz`; `x.fz` stays `x.fz` (replaced in place).
    pub fn output_name(self, name: &str) -> String {
        match self {
            SourceKind::Fits => format!("{name}.fz"),
            SourceKind::GzipFits => format!("{}.fz", &name[..name.len() - 3]),
            SourceKind::Compressed => name.to_string(),
        }
    }
}

/// One file of the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The input as found (the root argument joined with the relative path).
    pub input: PathBuf,
    pub kind: SourceKind,
    /// Where the result goes (the input itself for `.fz` unless an output
    /// directory was given).
    pub output: PathBuf,
    /// The output path relative to its root, `/`-separated: the shard key.
    pub key: String,
}

impl Task {
    /// The input's name in journals and reports.
    pub fn id(&self) -> String {
        self.input.to_string_lossy().into_owned()
    }
    pub fn in_place(&self) -> bool {
        self.output == self.input
    }
}

/// `--shard i/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// Parse "i/N" with 0 <= i < N.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || Error::bad_parameter(format!("--shard {text}: expected i/N with 0 <= i < N"));
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn owns(&self, key: &str) -> bool {
        stable_hash(key) % u64::from(self.count) == u64::from(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// 64-bit FNV-1a: the same value on every machine, platform and version.
pub fn stable_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// An input argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, a directory or a glob pattern.
    Path(PathBuf),
    /// A file list or manifest.
    List(PathBuf),
}

/// A file that could not be taken, and why (reported, never fatal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub input: PathBuf,
    /// The shard key of its output when it has one (a name collision);
    /// `None` for a path that could not be read at all.
    pub output_key: Option<String>,
    pub reason: String,
}

/// The result of discovery: the tasks of every shard (sorted by input) and
/// the paths that could not be used.
#[derive(Debug, Default)]
pub struct Discovery {
    pub tasks: Vec<Task>,
    pub rejected: Vec<Rejected>,
    /// Our temporary files (`.NAME.fpack-ng-tmp.*`) met during the walk.
    pub temp_files: Vec<PathBuf>,
}

/// Find every file named by `sources`. `output_dir`: write results there
/// (same relative paths) instead of beside the inputs.
pub fn discover(sources: &[Source], output_dir: Option<&Path>) -> Result<Discovery> {
    let mut found: Vec<(PathBuf, PathBuf, String)> = Vec::new(); // (root, input, relative)
    let mut out = Discovery::default();
    for source in sources {
        match source {
            Source::Path(p) => add_path(p, &mut found, &mut out)?,
            Source::List(list) => add_list(list, &mut found, &mut out)?,
        }
    }
    // The same file named twice (a directory and a file inside it) is one task.
    let mut seen = HashSet::new();
    let mut tasks = Vec::new();
    for (root, input, relative) in found {
        let identity = fs::canonicalize(&input).unwrap_or_else(|_| input.clone());
        if !seen.insert(identity) {
            continue;
        }
        let name = input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kind = SourceKind::from_name(&name).unwrap_or(SourceKind::Fits);
        let out_name = kind.output_name(&name);
        let relative_out = match relative.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{out_name}"),
            None => out_name.clone(),
        };
        let output = match output_dir {
            Some(dir) => dir.join(&relative_out),
            None => input.with_file_name(&out_name),
        };
        let _ = root;
        tasks.push(Task {
            input,
            kind,
            output,
            key: relative_out,
        });
    }
    tasks.sort_by(|a, b| a.input.cmp(&b.input));
    out.tasks = tasks;
    Ok(out)
}

/// Two inputs that would write one output (`x.fits` beside `x.fits.fz`,
/// or `x.fits` beside `x.fits.gz`): an existing `.fz`, rewritten in place,
/// keeps its name; otherwise the first input in sorted order does. The
/// others are returned as rejected. Deterministic, and local to a shard
/// (colliding tasks share their key).
pub fn resolve_collisions(tasks: Vec<Task>) -> (Vec<Task>, Vec<Rejected>) {
    let mut owners: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for (i, t) in tasks.iter().enumerate() {
        let identity = output_identity(&t.output);
        match owners.get(&identity) {
            Some(&first) if !t.in_place() || tasks[first].in_place() => {}
            _ => {
                owners.insert(identity, i);
            }
        }
    }
    let winners: HashSet<usize> = owners.values().copied().collect();
    let mut kept = Vec::new();
    let mut rejected = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        if winners.contains(&i) {
            kept.push(t.clone());
            continue;
        }
        let owner = &tasks[owners[&output_identity(&t.output)]];
        let reason = if owner.in_place() {
            format!("{} already exists", t.output.display())
        } else {
            format!(
                "its output {} is written from {}",
                t.output.display(),
                owner.input.display()
            )
        };
        rejected.push(Rejected {
            input: t.input.clone(),
            output_key: Some(t.key.clone()),
            reason,
        });
    }
    (kept, rejected)
}

/// A path's identity for collision checks: its directory canonicalized
/// (the file itself may not exist yet).
fn output_identity(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    canonical.join(path.file_name().unwrap_or_default())
}

fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

fn add_path(
    path: &Path,
    found: &mut Vec<(PathBuf, PathBuf, String)>,
    out: &mut Discovery,
) -> Result<()> {
    let text = path.to_string_lossy();
    if !path.exists() && is_glob(&text) {
        let pattern = glob::glob(&text)
            .map_err(|e| Error::bad_parameter(format!("bad pattern {text}: {e}")))?;
        let root = glob_root(&text);
        let mut matched = false;
        for entry in pattern {
            match entry {
                Ok(p) => {
                    matched = true;
                    if p.is_dir() {
                        walk(&p, &p, found, out)?;
                    } else if !is_temp_file(&p) {
                        let relative = relative_key(&p, &root);
                        found.push((root.clone(), p, relative));
                    }
                }
                Err(e) => out.rejected.push(Rejected {
                    input: e.path().to_path_buf(),
                    output_key: None,
                    reason: e.error().to_string(),
                }),
            }
        }
        if !matched {
            out.rejected.push(Rejected {
                input: path.to_path_buf(),
                output_key: None,
                reason: "the pattern matches no file".into(),
            });
        }
        return Ok(());
    }
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => walk(path, path, found, out),
        Ok(_) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let root = path.parent().unwrap_or(Path::new("")).to_path_buf();
            found.push((root, path.to_path_buf(), name));
            Ok(())
        }
        Err(e) => {
            out.rejected.push(Rejected {
                input: path.to_path_buf(),
                output_key: None,
                reason: e.to_string(),
            });
            Ok(())
        }
    }
}

/// The directory part of a pattern before its first wildcard.
fn glob_root(pattern: &str) -> PathBuf {
    let mut root = PathBuf::new();
    for c in Path::new(pattern).components() {
        if is_glob(&c.as_os_str().to_string_lossy()) {
            break;
        }
        root.push(c);
    }
    root
}

/// `path` relative to `root`, `/`-separated, without `.`/`..`/root parts.
fn relative_key(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn walk(
    root: &Path,
    dir: &Path,
    found: &mut Vec<(PathBuf, PathBuf, String)>,
    out: &mut Discovery,
) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.rejected.push(Rejected {
                input: dir.to_path_buf(),
                output_key: None,
                reason: e.to_string(),
            });
            return Ok(());
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            walk(root, &p, found, out)?;
            continue;
        }
        if is_temp_file(&p) {
            out.temp_files.push(p);
            continue;
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if meta.is_file() && SourceKind::from_name(&name).is_some() {
            let relative = relative_key(&p, root);
            found.push((root.to_path_buf(), p, relative));
        }
    }
    Ok(())
}

fn add_list(
    list: &Path,
    found: &mut Vec<(PathBuf, PathBuf, String)>,
    out: &mut Discovery,
) -> Result<()> {
    let text =
        fs::read_to_string(list).map_err(|e| Error::io(Context::default(), e).with_file(list))?;
    let base = list.parent().unwrap_or(Path::new("")).to_path_buf();
    for line in text.lines() {
        let entry = line.split('\t').next().unwrap_or("").trim();
        // Blank lines, comments and a manifest's header row.
        if entry.is_empty() || entry.starts_with('#') || entry.eq_ignore_ascii_case("file") {
            continue;
        }
        let path = if Path::new(entry).is_absolute() {
            PathBuf::from(entry)
        } else {
            base.join(entry)
        };
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, &path, found, out)?,
            Ok(_) => {
                let relative = relative_key(&path, &base);
                found.push((base.clone(), path, relative));
            }
            Err(e) => out.rejected.push(Rejected {
                input: path,
                output_key: None,
                reason: format!("listed in {}: {e}", list.display()),
            }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_fpack() {
        assert_eq!(SourceKind::from_name("a.FITS"), Some(SourceKind::Fits));
        assert_eq!(
            SourceKind::from_name("a.fits.gz"),
            Some(SourceKind::GzipFits)
        );
        assert_eq!(
            SourceKind::from_name("a.fits.fz"),
            Some(SourceKind::Compressed)
        );
        assert_eq!(SourceKind::from_name("a.txt"), None);
        assert_eq!(SourceKind::Fits.output_name("a.fits"), "a.fits.fz");
        assert_eq!(SourceKind::GzipFits.output_name("a.fits.gz"), "a.fits.fz");
        assert_eq!(SourceKind::Compressed.output_name("a.fz"), "a.fz");
    }

    #[test]
    fn shards_partition_keys() {
        let keys: Vec<String> = (0..500)
            .map(|i| format!("d{}/f{i}.fits.fz", i % 7))
            .collect();
        for n in [1u32, 3, 7] {
            let mut counts = vec![0usize; n as usize];
            for k in &keys {
                let owners: Vec<u32> = (0..n)
                    .filter(|&i| Shard { index: i, count: n }.owns(k))
                    .collect();
                assert_eq!(owners.len(), 1, "{k} owned by {owners:?}");
                counts[owners[0] as usize] += 1;
            }
            // Balanced enough to be useful: no shard more than twice its share.
            assert!(
                counts.iter().all(|&c| c <= 2 * keys.len() / n as usize),
                "{counts:?}"
            );
        }
        // Fixed forever (published FNV-1a 64 test vectors): a change would
        // reshuffle the shards of running jobs.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash("foobar"), 0x8594_4171_f739_67e8);
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert_eq!(Shard::parse("2/7").unwrap(), Shard { index: 2, count: 7 });
    }
}
