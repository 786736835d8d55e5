//! Shared helpers for the CLI interoperability tests (tests/cli/interop.rs):
//! locating our binaries and the reference tools, the corpus and fixtures,
//! temporary directories, running commands with a time limit, a minimal FITS
//! HDU splitter, fitsverify's verdict, the python comparison server
//! (tests/cli/interop_check.py) and a failure collector.
//!
//! Environment:
//! - `FPACKNG_CORPUS`: corpus root (default `$CARGO_MANIFEST_DIR/../../shared/corpus`),
//!   holding `train/`, `test/`, `cubes/`.
//! - `FPACKNG_FPACK`, `FPACKNG_FUNPACK`, `FPACKNG_FITSVERIFY`, `FPACKNG_PYTHON`:
//!   reference tools (default: `fpack`, `funpack`, `fitsverify`, `python3` on PATH).
//! - `FPACKNG_INTEROP_ONLY`: comma-separated substrings; only files whose name
//!   contains one of them are tested (for reproducing one failure).
//! - `FPACKNG_KEEP_TMP`: keep the temporary directories (their paths are printed).
//! - `FPACKNG_BIN_FPACK_NG`, `FPACKNG_BIN_FUNPACK_NG`: replace the binaries under
//!   test (to check the harness itself, e.g. against cfitsio's tools).
//! - `FPACKNG_INTEROP_THREADS`: threads per test for the per-file loop (default 1).
//! - `CI`: when set, a missing tool, corpus or python module is a failure, not a skip.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- locations

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Our fpack-ng (`FPACKNG_BIN_FPACK_NG` overrides, e.g. to test the harness
/// itself against cfitsio's fpack).
pub fn fpack_ng() -> PathBuf {
    bin_override("FPACKNG_BIN_FPACK_NG")
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_fpack-ng")))
}

/// Our funpack-ng (`FPACKNG_BIN_FUNPACK_NG` overrides).
pub fn funpack_ng() -> PathBuf {
    bin_override("FPACKNG_BIN_FUNPACK_NG")
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_funpack-ng")))
}

fn bin_override(var: &str) -> Option<PathBuf> {
    let v = std::env::var_os(var).filter(|v| !v.is_empty())?;
    eprintln!(
        "NOTICE: {var}={} replaces the binary under test",
        PathBuf::from(&v).display()
    );
    Some(PathBuf::from(v))
}

pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A missing prerequisite: fails under CI, otherwise prints a notice.
/// Returns normally only outside CI (the caller then skips).
pub fn missing(what: &str) {
    if in_ci() {
        panic!(
            "interop prerequisite missing (CI is set, so this is a failure, not a skip): {what}"
        );
    }
    eprintln!("NOTICE: skipping: {what} (set CI=1 to make this a failure)");
}

fn which(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|c| c.is_file())
}

/// A reference tool, from `FPACKNG_<NAME>` or PATH.
pub fn tool(name: &str) -> Option<PathBuf> {
    let var = format!("FPACKNG_{}", name.to_ascii_uppercase());
    match std::env::var(&var) {
        Ok(v) if !v.is_empty() => which(&v),
        _ => which(name),
    }
}

/// Like [`tool`], but reports a missing tool through [`missing`].
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let t = tool(name);
    if t.is_none() {
        missing(&format!(
            "reference tool `{name}` not found (PATH or FPACKNG_{})",
            name.to_ascii_uppercase()
        ));
    }
    t
}

pub fn corpus_root() -> PathBuf {
    match std::env::var_os("FPACKNG_CORPUS") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => manifest_dir().join("../../shared/corpus"),
    }
}

pub fn fixtures_dir() -> PathBuf {
    manifest_dir().join("../fixtures")
}

fn fits_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension() == Some(OsStr::new("fits")) && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn selected(p: &Path) -> bool {
    match std::env::var("FPACKNG_INTEROP_ONLY") {
        Ok(s) if !s.trim().is_empty() => {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .any(|t| name.contains(t))
        }
        _ => true,
    }
}

/// A test input: a corpus frame or a fixture.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    /// "train/x.fits", "fixtures/x.fits"
    pub label: String,
    pub corpus: bool,
}

impl Input {
    pub fn stem(&self) -> String {
        self.path.file_stem().unwrap().to_string_lossy().to_string()
    }
}

/// All corpus frames (train, test, cubes). Reports a missing corpus through [`missing`].
pub fn corpus_inputs() -> Vec<Input> {
    let root = corpus_root();
    let mut out = Vec::new();
    for sub in ["train", "test", "cubes"] {
        for p in fits_in(&root.join(sub)) {
            let label = format!("{sub}/{}", p.file_name().unwrap().to_string_lossy());
            out.push(Input {
                path: p,
                label,
                corpus: true,
            });
        }
    }
    if out.is_empty() {
        missing(&format!(
            "no corpus frames under {} (set FPACKNG_CORPUS)",
            root.display()
        ));
    }
    out.retain(|i| selected(&i.path));
    out
}

/// All fixtures. A missing fixture folder is always a failure (it is in the repository).
pub fn fixture_inputs() -> Vec<Input> {
    let dir = fixtures_dir();
    let v: Vec<Input> = fits_in(&dir)
        .into_iter()
        .map(|p| {
            let label = format!("fixtures/{}", p.file_name().unwrap().to_string_lossy());
            Input {
                path: p,
                label,
                corpus: false,
            }
        })
        .collect();
    assert!(!v.is_empty(), "no fixtures in {}", dir.display());
    v.into_iter().filter(|i| selected(&i.path)).collect()
}

pub fn all_inputs() -> Vec<Input> {
    let mut v = corpus_inputs();
    v.extend(fixture_inputs());
    v
}

// ---------------------------------------------------------------- temp dirs

static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory, removed on drop unless `FPACKNG_KEEP_TMP` is set.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::var_os("FPACKNG_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        loop {
            let n = TMP_COUNTER.fetch_add(1, Ordering::SeqCst);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = base.join(format!("fpackng-{tag}-{}-{n}-{nanos}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    if std::env::var_os("FPACKNG_KEEP_TMP").is_some() {
                        eprintln!("keeping temporary directory {}", path.display());
                    }
                    return TempDir { path };
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Remove everything inside (between files, to keep disk use small).
    pub fn clear(&self) {
        if std::env::var_os("FPACKNG_KEEP_TMP").is_some() {
            return;
        }
        if let Ok(rd) = std::fs::read_dir(&self.path) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    let _ = std::fs::remove_dir_all(&p);
                } else {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("FPACKNG_KEEP_TMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------- running

/// What a finished (or killed) command did.
#[derive(Debug)]
pub struct Run {
    pub cmdline: String,
    pub status: Option<i32>,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Run {
    pub fn ok(&self) -> bool {
        !self.timed_out && self.status == Some(0)
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_string()
    }

    /// One line describing a failure: command, status, first lines of stderr.
    pub fn describe(&self) -> String {
        let status = if self.timed_out {
            "timed out".to_string()
        } else {
            match self.status {
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".to_string(),
            }
        };
        let mut err = self.stderr_text();
        if err.is_empty() {
            err = self.stdout_text();
        }
        let err: String = err.lines().take(4).collect::<Vec<_>>().join(" | ");
        let err = truncate(&err, 400);
        format!("`{}` -> {status}: {err}", self.cmdline)
    }
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./,=+:".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Run `prog args...` with a time limit, capturing stdout and stderr.
/// `stdin_file`: feed this file on stdin.
pub fn run_cmd_full(
    prog: &Path,
    args: &[String],
    stdin_file: Option<&Path>,
    limit: Duration,
) -> Run {
    let prog_name = prog
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut cmdline = std::iter::once(prog_name)
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(f) = stdin_file {
        cmdline.push_str(&format!(" < {}", f.display()));
    }
    let start = Instant::now();
    let mut cmd = Command::new(prog);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    match stdin_file {
        Some(f) => {
            cmd.stdin(std::fs::File::open(f).expect("open stdin file"));
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Run {
                cmdline,
                status: Some(-1),
                timed_out: false,
                stdout: Vec::new(),
                stderr: format!("cannot start {}: {e}", prog.display()).into_bytes(),
                elapsed: start.elapsed(),
            }
        }
    };
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code(),
            Ok(None) => {
                if start.elapsed() > limit {
                    let _ = child.kill();
                    timed_out = true;
                    break child.wait().ok().and_then(|s| s.code());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break None,
        }
    };
    Run {
        cmdline,
        status,
        timed_out,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        elapsed: start.elapsed(),
    }
}

/// Default limit for one tool invocation.
pub const TOOL_LIMIT: Duration = Duration::from_secs(120);

pub fn run_cmd<S: AsRef<OsStr>>(prog: &Path, args: &[S]) -> Run {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().to_string())
        .collect();
    run_cmd_full(prog, &args, None, TOOL_LIMIT)
}

/// Split an fpack-style flag string ("-q 4 -g2") into arguments.
pub fn flags(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub fn p2s(p: &Path) -> String {
    p.to_string_lossy().to_string()
}

// ---------------------------------------------------------------- FITS splitter

/// One HDU of a FITS file, as byte ranges into the file.
#[derive(Debug, Clone)]
pub struct RawHdu {
    /// The header's 80-character cards, END excluded.
    pub cards: Vec<String>,
    pub header: std::ops::Range<usize>,
    pub data: std::ops::Range<usize>,
    /// Padding after the data up to the next 2880-byte block.
    pub fill: std::ops::Range<usize>,
}

impl RawHdu {
    pub fn keyword(card: &str) -> &str {
        card.get(..8).unwrap_or(card).trim_end()
    }

    /// The value text of `kw` (first occurrence): a string without its quotes
    /// and trailing blanks, anything else without its comment.
    pub fn value(&self, kw: &str) -> Option<String> {
        self.cards
            .iter()
            .find(|c| Self::keyword(c) == kw && c.get(8..10) == Some("= "))
            .map(|c| {
                let v = &c[10..];
                let t = v.trim_start();
                if let Some(rest) = t.strip_prefix('\'') {
                    let mut out = String::new();
                    let mut it = rest.chars().peekable();
                    while let Some(ch) = it.next() {
                        if ch == '\'' {
                            if it.peek() == Some(&'\'') {
                                it.next();
                                out.push('\'');
                                continue;
                            }
                            break;
                        }
                        out.push(ch);
                    }
                    out.trim_end().to_string()
                } else {
                    v.split('/').next().unwrap().trim().to_string()
                }
            })
    }

    pub fn int(&self, kw: &str) -> Option<i64> {
        self.value(kw)?.parse().ok()
    }

    pub fn is_compressed_image(&self) -> bool {
        self.value("ZIMAGE").as_deref() == Some("T")
    }

    pub fn data_len(&self) -> usize {
        self.data.end - self.data.start
    }
}

/// Split a FITS file into HDUs. Errors on a malformed file.
pub fn split_fits(bytes: &[u8]) -> Result<Vec<RawHdu>, String> {
    const B: usize = 2880;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        if !out.is_empty()
            && bytes[pos..(pos + B).min(bytes.len())]
                .iter()
                .all(|&b| b == 0 || b == b' ')
        {
            break;
        }
        let mut cards = Vec::new();
        let mut p = pos;
        let mut end = None;
        while p + 80 <= bytes.len() {
            let c = String::from_utf8_lossy(&bytes[p..p + 80]).to_string();
            p += 80;
            if c.starts_with("END") && c[3..].trim().is_empty() {
                end = Some(p);
                break;
            }
            cards.push(c);
        }
        let end = end.ok_or_else(|| format!("HDU {}: no END card", out.len()))?;
        let hdr_end = end.div_ceil(B) * B;
        let mut h = RawHdu {
            cards,
            header: pos..hdr_end,
            data: 0..0,
            fill: 0..0,
        };
        let naxis = h
            .int("NAXIS")
            .ok_or_else(|| format!("HDU {}: no NAXIS", out.len()))?;
        let bitpix = h
            .int("BITPIX")
            .ok_or_else(|| format!("HDU {}: no BITPIX", out.len()))?;
        let mut n: i64 = if naxis > 0 { 1 } else { 0 };
        for i in 1..=naxis {
            n *= h
                .int(&format!("NAXIS{i}"))
                .ok_or_else(|| format!("HDU {}: no NAXIS{i}", out.len()))?;
        }
        let size = (bitpix.unsigned_abs() as i64 / 8)
            * h.int("GCOUNT").unwrap_or(1)
            * (h.int("PCOUNT").unwrap_or(0) + n);
        let size = size as usize;
        if hdr_end + size > bytes.len() {
            return Err(format!("HDU {}: data unit truncated", out.len()));
        }
        let dend = ((hdr_end + size).div_ceil(B) * B).min(bytes.len());
        h.data = hdr_end..hdr_end + size;
        h.fill = hdr_end + size..dend;
        out.push(h);
        pos = dend;
    }
    Ok(out)
}

pub fn split_file(p: &Path) -> Result<(Vec<u8>, Vec<RawHdu>), String> {
    let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let hdus = split_fits(&bytes).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok((bytes, hdus))
}

/// Cards that describe the data layout or are recomputed on write.
pub fn is_structural_or_checksum(kw: &str) -> bool {
    matches!(
        kw,
        "SIMPLE"
            | "XTENSION"
            | "BITPIX"
            | "NAXIS"
            | "EXTEND"
            | "PCOUNT"
            | "GCOUNT"
            | "CHECKSUM"
            | "DATASUM"
    ) || (kw.starts_with("NAXIS") && kw[5..].bytes().all(|b| b.is_ascii_digit()))
}

/// Cards other than structural and checksum ones, without trailing blank
/// cards (cfitsio treats those as free space).
pub fn nonstructural_cards(cards: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = cards
        .iter()
        .filter(|c| !is_structural_or_checksum(RawHdu::keyword(c)))
        .collect();
    while v.last().is_some_and(|c| c.trim().is_empty()) {
        v.pop();
    }
    v
}

/// How a restored file compares with its original, byte for byte.
#[derive(Debug, PartialEq, Eq)]
pub enum ByteCompare {
    /// The files are identical.
    Identical,
    /// Headers and data units identical; only fill bytes after data differ,
    /// and only where the original's fill was not the standard zeros, or
    /// only the blank cards of a header's free space (same size, same cards).
    OnlyNonstandardFill,
    /// Data units identical, non-structural cards (CHECKSUM/DATASUM ignored)
    /// identical; some structural card or checksum text differs.
    SameDataAndCards(String),
    /// Something that matters differs.
    Differs(String),
}

/// Compare an original with a restored file HDU by HDU.
pub fn compare_bytes(orig: &Path, back: &Path) -> ByteCompare {
    let (a, ha) = match split_file(orig) {
        Ok(x) => x,
        Err(e) => return ByteCompare::Differs(format!("original unreadable: {e}")),
    };
    let (b, hb) = match split_file(back) {
        Ok(x) => x,
        Err(e) => return ByteCompare::Differs(format!("restored file unreadable: {e}")),
    };
    if a == b {
        return ByteCompare::Identical;
    }
    if ha.len() != hb.len() {
        return ByteCompare::Differs(format!("{} HDUs vs {}", ha.len(), hb.len()));
    }
    let mut struct_notes = Vec::new();
    let mut fill_only = true;
    for (i, (x, y)) in ha.iter().zip(&hb).enumerate() {
        if a[x.data.clone()] != b[y.data.clone()] {
            let da = &a[x.data.clone()];
            let db = &b[y.data.clone()];
            let first = da
                .iter()
                .zip(db)
                .position(|(p, q)| p != q)
                .unwrap_or(da.len().min(db.len()));
            return ByteCompare::Differs(format!(
                "HDU {i}: data unit differs ({} vs {} bytes, first differing byte {first})",
                da.len(),
                db.len()
            ));
        }
        let ca = nonstructural_cards(&x.cards);
        let cb = nonstructural_cards(&y.cards);
        if ca != cb {
            let missing: Vec<&str> = ca
                .iter()
                .filter(|c| !cb.contains(c))
                .map(|c| c.trim_end())
                .take(3)
                .collect();
            let extra: Vec<&str> = cb
                .iter()
                .filter(|c| !ca.contains(c))
                .map(|c| c.trim_end())
                .take(3)
                .collect();
            return ByteCompare::Differs(format!(
                "HDU {i}: non-structural cards differ: missing {missing:?}, extra {extra:?}{}",
                if missing.is_empty() && extra.is_empty() {
                    " (order or duplicates)"
                } else {
                    ""
                }
            ));
        }
        // Free header space: cfitsio (and so fpack and funpack) keeps the
        // number of spare blocks, not where END sat in them, so a header
        // whose cards and size are the same but whose trailing blank cards
        // before END differ counts as identical.
        let content = |cards: &[String]| {
            let mut n = cards.len();
            while n > 0 && cards[n - 1].trim().is_empty() {
                n -= 1;
            }
            cards[..n].to_vec()
        };
        let same_but_free_space =
            x.header.len() == y.header.len() && content(&x.cards) == content(&y.cards);
        if a[x.header.clone()] != b[y.header.clone()] && !same_but_free_space {
            fill_only = false;
            let diff: Vec<String> = x
                .cards
                .iter()
                .zip(&y.cards)
                .filter(|(p, q)| p != q)
                .map(|(p, q)| format!("{:?} -> {:?}", p.trim_end(), q.trim_end()))
                .take(3)
                .collect();
            struct_notes.push(format!(
                "HDU {i}: header bytes differ ({} vs {} cards){}",
                x.cards.len(),
                y.cards.len(),
                if diff.is_empty() {
                    String::new()
                } else {
                    format!(": {}", diff.join("; "))
                }
            ));
        }
        let fa = &a[x.fill.clone()];
        let fb = &b[y.fill.clone()];
        if fa != fb {
            let standard_a = fa.iter().all(|&c| c == 0);
            if standard_a {
                fill_only = false;
                struct_notes.push(format!(
                    "HDU {i}: data fill bytes differ (original's fill is standard)"
                ));
            }
        }
    }
    if fill_only && struct_notes.is_empty() {
        if a.len() != b.len() {
            return ByteCompare::Differs(format!(
                "file sizes {} vs {} (trailing bytes)",
                a.len(),
                b.len()
            ));
        }
        return ByteCompare::OnlyNonstandardFill;
    }
    ByteCompare::SameDataAndCards(struct_notes.join("; "))
}

// ---------------------------------------------------------------- fitsverify

/// fitsverify's verdict on a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub errors: u32,
    pub warnings: u32,
}

/// Run `fitsverify -q FILE` and read its one-line summary.
pub fn fitsverify(fv: &Path, file: &Path) -> Result<Verdict, String> {
    let r = run_cmd(fv, &[OsStr::new("-q"), file.as_os_str()]);
    let text = format!("{}\n{}", r.stdout_text(), r.stderr_text());
    let line = text
        .lines()
        .find(|l| l.contains("verification OK") || l.contains("verification FAILED"))
        .ok_or_else(|| format!("cannot read fitsverify's summary: {}", r.describe()))?;
    if line.contains("verification OK") {
        return Ok(Verdict {
            errors: 0,
            warnings: 0,
        });
    }
    // "verification FAILED: name, 1 warnings and 0 errors"
    let tail = line.rsplit(',').next().unwrap_or("");
    let words: Vec<&str> = tail.split_whitespace().collect();
    let mut v = Verdict {
        errors: u32::MAX,
        warnings: u32::MAX,
    };
    for (i, w) in words.iter().enumerate() {
        if i > 0 && w.starts_with("warning") {
            v.warnings = words[i - 1].parse().unwrap_or(u32::MAX);
        }
        if i > 0 && w.starts_with("error") {
            v.errors = words[i - 1].parse().unwrap_or(u32::MAX);
        }
    }
    if v.errors == u32::MAX || v.warnings == u32::MAX {
        return Err(format!("cannot parse fitsverify's summary {line:?}"));
    }
    Ok(v)
}

/// fitsverify with a baseline: outputs must be clean, except that problems the
/// original already had (e.g. a duplicated keyword, copied verbatim) may remain,
/// never more of them. Caches the originals' verdicts.
pub struct Verifier {
    fv: PathBuf,
    baseline: Mutex<BTreeMap<PathBuf, Verdict>>,
}

impl Verifier {
    pub fn new(fv: PathBuf) -> Verifier {
        Verifier {
            fv,
            baseline: Mutex::new(BTreeMap::new()),
        }
    }

    fn baseline(&self, orig: &Path) -> Verdict {
        if let Some(v) = self.baseline.lock().unwrap().get(orig) {
            return *v;
        }
        let v = fitsverify(&self.fv, orig).unwrap_or(Verdict {
            errors: 0,
            warnings: 0,
        });
        self.baseline.lock().unwrap().insert(orig.to_path_buf(), v);
        v
    }

    /// Ok(None): clean. Ok(Some(note)): only the original's own problems. Err: failure.
    pub fn check(&self, file: &Path, orig: &Path) -> Result<Option<String>, String> {
        let v = fitsverify(&self.fv, file)?;
        if v.errors == 0 && v.warnings == 0 {
            return Ok(None);
        }
        let b = self.baseline(orig);
        let detail = || {
            let r = run_cmd(&self.fv, &[file.as_os_str()]);
            r.stdout_text()
                .lines()
                .filter(|l| l.contains("*** Error") || l.contains("*** Warning"))
                .take(4)
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" | ")
        };
        if v.errors <= b.errors && v.warnings <= b.warnings && v.warnings + v.errors > 0 {
            return Ok(Some(format!(
                "fitsverify: {} errors, {} warnings, as in the original ({} errors, {} warnings): {}",
                v.errors,
                v.warnings,
                b.errors,
                b.warnings,
                detail()
            )));
        }
        Err(format!(
            "fitsverify: {} errors, {} warnings (original: {} errors, {} warnings): {} [reproduce: fitsverify {}]",
            v.errors,
            v.warnings,
            b.errors,
            b.warnings,
            detail(),
            file.display()
        ))
    }
}

// ---------------------------------------------------------------- python

pub fn check_script() -> PathBuf {
    manifest_dir().join("../tests/cli/interop_check.py")
}

/// A running `interop_check.py serve`.
pub struct Py {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: usize,
}

/// One comparison's answer.
#[derive(Debug, Clone)]
pub struct PyAnswer {
    pub ok: bool,
    /// The comparison could not be made (known limitation of a reference tool).
    pub skip: bool,
    pub failure: String,
    pub notes: String,
}

impl Py {
    /// Start the server; reports a missing python/numpy/astropy via [`missing`].
    pub fn start() -> Option<Py> {
        let python = require_tool("python3")?;
        let child = Command::new(&python)
            .arg(check_script())
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                missing(&format!("cannot start {}: {e}", python.display()));
                return None;
            }
        };
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut py = Py {
            child,
            stdin,
            stdout,
            next: 0,
        };
        match py.ask("ping", &[]) {
            Ok(_) => Some(py),
            Err(e) => {
                let mut err = String::new();
                if let Some(mut s) = py.child.stderr.take() {
                    let _ = py.child.kill();
                    let _ = s.read_to_string(&mut err);
                }
                missing(&format!(
                    "python3 with numpy and astropy is needed for {} ({e}): {}",
                    check_script().display(),
                    truncate(err.trim(), 600)
                ));
                None
            }
        }
    }

    pub fn ask(&mut self, kind: &str, args: &[&Path]) -> Result<PyAnswer, String> {
        self.next += 1;
        let id = self.next.to_string();
        let mut line = format!("{id}\t{kind}");
        for a in args {
            let s = a.to_string_lossy();
            assert!(!s.contains('\t') && !s.contains('\n'), "odd path {s:?}");
            write!(line, "\t{s}").unwrap();
        }
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("python helper gone: {e}"))?;
        let mut resp = String::new();
        let n = self
            .stdout
            .read_line(&mut resp)
            .map_err(|e| format!("python helper: {e}"))?;
        if n == 0 {
            return Err("python helper exited".into());
        }
        let parts: Vec<&str> = resp.trim_end_matches('\n').split('\t').collect();
        if parts.len() < 2 || parts[0] != id {
            return Err(format!("python helper: unexpected answer {resp:?}"));
        }
        Ok(PyAnswer {
            ok: parts[1] == "OK",
            skip: parts[1] == "SKIP",
            failure: parts.get(2).unwrap_or(&"").to_string(),
            notes: parts.get(3).unwrap_or(&"").to_string(),
        })
    }

    /// Command line to reproduce a comparison by hand.
    pub fn repro(kind: &str, args: &[&Path]) -> String {
        let mut s = format!("python3 {} {kind}", check_script().display());
        for a in args {
            write!(s, " {}", a.display()).unwrap();
        }
        s
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- results

/// Result of one (file, mode, check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Pass,
    Skip,
    Fail,
}

/// One result: input label, mode, check, outcome, detail.
type Row = (String, String, String, Outcome, String);

/// Collects results of one test so that one failing file does not hide others.
pub struct Report {
    name: String,
    rows: Mutex<Vec<Row>>,
    start: Instant,
}

impl Report {
    pub fn new(name: &str) -> Report {
        Report {
            name: name.into(),
            rows: Mutex::new(Vec::new()),
            start: Instant::now(),
        }
    }

    /// Record one result. `check` is a short label like "(a) funpack".
    pub fn add(
        &self,
        file: &str,
        mode: &str,
        check: &str,
        outcome: Outcome,
        detail: impl Into<String>,
    ) {
        self.rows.lock().unwrap().push((
            file.into(),
            mode.into(),
            check.into(),
            outcome,
            detail.into(),
        ));
    }

    pub fn pass(&self, file: &str, mode: &str, check: &str, note: impl Into<String>) {
        self.add(file, mode, check, Outcome::Pass, note)
    }

    pub fn skip(&self, file: &str, mode: &str, check: &str, why: impl Into<String>) {
        self.add(file, mode, check, Outcome::Skip, why)
    }

    pub fn fail(&self, file: &str, mode: &str, check: &str, why: impl Into<String>) {
        self.add(file, mode, check, Outcome::Fail, why)
    }

    pub fn failures(&self) -> usize {
        self.rows
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.3 == Outcome::Fail)
            .count()
    }

    /// Print a summary (counts per check, skips and notes, then failures) and
    /// panic if anything failed.
    pub fn finish(self) {
        let rows = self.rows.into_inner().unwrap();
        let mut per_check: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
        for r in &rows {
            let e = per_check.entry(r.2.as_str()).or_default();
            e[r.3 as usize] += 1;
        }
        let mut s = String::new();
        writeln!(
            s,
            "\n==== {} ({:.1} s) ====",
            self.name,
            self.start.elapsed().as_secs_f64()
        )
        .unwrap();
        writeln!(
            s,
            "{:<34} {:>6} {:>6} {:>6}",
            "check", "pass", "skip", "FAIL"
        )
        .unwrap();
        for (k, v) in &per_check {
            writeln!(s, "{:<34} {:>6} {:>6} {:>6}", k, v[0], v[1], v[2]).unwrap();
        }
        let notes: Vec<_> = rows
            .iter()
            .filter(|r| r.3 == Outcome::Pass && !r.4.is_empty())
            .collect();
        if !notes.is_empty() {
            writeln!(s, "-- notes ({}):", notes.len()).unwrap();
            for r in &notes {
                writeln!(
                    s,
                    "  note {} [{}] {}: {}",
                    r.0,
                    r.1,
                    r.2,
                    truncate(&r.4, 600)
                )
                .unwrap();
            }
        }
        let skips: Vec<_> = rows.iter().filter(|r| r.3 == Outcome::Skip).collect();
        if !skips.is_empty() {
            writeln!(s, "-- skipped ({}):", skips.len()).unwrap();
            for r in &skips {
                writeln!(
                    s,
                    "  skip {} [{}] {}: {}",
                    r.0,
                    r.1,
                    r.2,
                    truncate(&r.4, 400)
                )
                .unwrap();
            }
        }
        let fails: Vec<_> = rows.iter().filter(|r| r.3 == Outcome::Fail).collect();
        if !fails.is_empty() {
            writeln!(s, "-- FAILURES ({}):", fails.len()).unwrap();
            for r in &fails {
                writeln!(
                    s,
                    "  FAIL {} [{}] {}: {}",
                    r.0,
                    r.1,
                    r.2,
                    truncate(&r.4, 1500)
                )
                .unwrap();
            }
        }
        // Captured stdout is shown by the harness when the test fails.
        println!("{s}");
        if !fails.is_empty() {
            panic!(
                "{}: {} of {} checks failed (list above)",
                self.name,
                fails.len(),
                rows.len()
            );
        }
    }
}

/// Run `f` over `items` on `threads` threads (light parallelism; cargo already
/// runs the tests themselves in parallel).
pub fn par_each<T: Sync, F: Fn(&T) + Sync>(items: &[T], threads: usize, f: F) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() {
                    break;
                }
                f(&items[i]);
            });
        }
    });
}

/// Does any image HDU of this file hold floating-point pixels?
pub fn has_float_image(p: &Path) -> bool {
    split_file(p)
        .map(|(_, h)| {
            h.iter().enumerate().any(|(i, x)| {
                let image = i == 0 || x.value("XTENSION").is_some_and(|v| v.contains("IMAGE"));
                image && x.int("BITPIX").is_some_and(|b| b < 0) && x.int("NAXIS").unwrap_or(0) > 0
            })
        })
        .unwrap_or(false)
}

/// Largest |BITPIX| of an image HDU with data.
pub fn has_bitpix64(p: &Path) -> bool {
    split_file(p)
        .map(|(_, h)| {
            h.iter()
                .any(|x| x.int("BITPIX") == Some(64) && x.int("NAXIS").unwrap_or(0) > 0)
        })
        .unwrap_or(false)
}
