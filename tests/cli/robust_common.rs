//! Helpers shared by the robustness tests (`damaged`, `kill`): running the
//! tools with a time limit, a seeded RNG, a tiny independent FITS parser
//! (so that the tests do not trust the library they are testing), header
//! surgery, and directory bookkeeping.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BLOCK: usize = 2880;
pub const CARD: usize = 80;

pub fn fpack_bin() -> &'static str {
    env!("CARGO_BIN_EXE_fpack-ng")
}

pub fn funpack_bin() -> &'static str {
    env!("CARGO_BIN_EXE_funpack-ng")
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
}

/// A fresh, empty scratch directory under cargo's per-target temp dir.
pub fn scratch_dir(label: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = base.join(format!(
        "robust-{label}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

// ---------------------------------------------------------------- RNG

/// xorshift64*: small, seeded, reproducible.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..hi` (hi > lo).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        assert!(hi > lo, "empty range {lo}..{hi}");
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }
    /// A non-zero byte (an XOR mask that really changes something).
    pub fn nonzero_byte(&mut self) -> u8 {
        (self.next_u64() % 255) as u8 + 1
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

// ---------------------------------------------------------------- hashing

/// A 128-bit non-cryptographic digest (two independent FNV-style lanes
/// over 8-byte words) plus the length: enough to detect any change a tool
/// could make to a file by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest(pub u64, pub u64, pub u64);

pub fn digest_bytes(bytes: &[u8]) -> Digest {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        a = (a ^ w).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b.rotate_left(29) ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    for &x in chunks.remainder() {
        a = (a ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b.rotate_left(29) ^ x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    Digest(a, b, bytes.len() as u64)
}

pub fn digest_file(path: &Path) -> Option<Digest> {
    let mut f = File::open(path).ok()?;
    let mut all = Vec::new();
    f.read_to_end(&mut all).ok()?;
    Some(digest_bytes(&all))
}

// ---------------------------------------------------------------- running

#[derive(Debug)]
pub struct RunOutcome {
    /// None when the process had to be killed.
    pub status: Option<ExitStatus>,
    pub killed_for_time: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
    pub command: String,
}

impl RunOutcome {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
    /// Panicked, aborted, or died of a signal.
    pub fn crashed(&self) -> Option<String> {
        if self.killed_for_time {
            return Some(format!("hung: killed after {:?}", self.elapsed));
        }
        if self.stderr.contains("panicked") {
            return Some("panicked".into());
        }
        // The CLI catches a panic per file and reports it as an internal
        // error (fpack-ng/src/lib.rs `guarded`): still a panic.
        if self.stderr.contains("internal error") {
            return Some("panicked (reported by the CLI as an internal error)".into());
        }
        match self.status {
            Some(s) if s.code() == Some(101) => Some("exit status 101 (Rust panic)".into()),
            Some(s) if s.code().is_none() => {
                Some(format!("killed by a signal ({s:?}): crash or abort"))
            }
            _ => None,
        }
    }
    pub fn describe(&self) -> String {
        let stderr: String = self
            .stderr
            .trim_end()
            .lines()
            .take(6)
            .collect::<Vec<_>>()
            .join(" | ");
        format!(
            "`{}` -> {} in {:?}; stderr: {}",
            self.command,
            match self.status {
                Some(s) => format!("{s}"),
                None => "KILLED (timeout)".into(),
            },
            self.elapsed,
            if stderr.is_empty() {
                "<empty>".into()
            } else {
                stderr
            }
        )
    }
}

/// Run `program args` in `dir` with stdin closed (or fed from `stdin_file`)
/// and stdout/stderr going to files (no pipe deadlocks), killing it after
/// `limit`.
pub fn run_limited(program: &str, args: &[&str], dir: &Path, limit: Duration) -> RunOutcome {
    run_limited_stdin(program, args, dir, limit, None)
}

pub fn run_limited_stdin(
    program: &str,
    args: &[&str],
    dir: &Path,
    limit: Duration,
    stdin_file: Option<&Path>,
) -> RunOutcome {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let io_dir = std::env::temp_dir();
    let out_path = io_dir.join(format!("robust-out-{}-{n}", std::process::id()));
    let err_path = io_dir.join(format!("robust-err-{}-{n}", std::process::id()));
    let out = File::create(&out_path).expect("stdout file");
    let err = File::create(&err_path).expect("stderr file");
    let name = Path::new(program)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let command = format!("{} {}", name, args.join(" "));
    let stdin = match stdin_file {
        Some(p) => Stdio::from(File::open(p).expect("stdin file")),
        None => Stdio::null(),
    };
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(stdin)
        .stdout(out)
        .stderr(err)
        .env("RUST_BACKTRACE", "0")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut killed = false;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(s) => break Some(s),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                killed = true;
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let elapsed = start.elapsed();
    let stdout = fs::read(&out_path).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned();
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    RunOutcome {
        status,
        killed_for_time: killed,
        stdout,
        stderr,
        elapsed,
        command,
    }
}

/// Names of the entries of `dir`, sorted.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn is_temp_name(name: &str) -> bool {
    name.contains(".fpack-ng-tmp.")
}

// ---------------------------------------------------------------- FITS

/// One header card as text.
pub fn card_text(bytes: &[u8], at: usize) -> String {
    String::from_utf8_lossy(&bytes[at..at + CARD]).into_owned()
}

/// An 80-byte card from text (padded with blanks, cut at 80).
pub fn make_card(text: &str) -> [u8; CARD] {
    let mut c = [b' '; CARD];
    for (i, b) in text.bytes().take(CARD).enumerate() {
        c[i] = b;
    }
    c
}

/// `KEYWORD = value` card with the value right-aligned in columns 11-30
/// (strings as given, e.g. `'RICE_1  '`).
pub fn value_card(key: &str, value: &str) -> [u8; CARD] {
    let v = if value.starts_with('\'') {
        format!("{value:<20}")
    } else {
        format!("{value:>20}")
    };
    make_card(&format!("{key:<8}= {v}"))
}

#[derive(Debug, Clone)]
pub struct RawHdu {
    /// 1-based position.
    pub number: usize,
    pub header_start: usize,
    /// Offsets of the header cards (END included).
    pub cards: Vec<(String, usize)>,
    pub end_card: usize,
    pub data_start: usize,
    /// Data length without padding.
    pub data_len: usize,
    /// Data length with padding to whole blocks.
    pub data_padded: usize,
}

impl RawHdu {
    pub fn header_len(&self) -> usize {
        self.data_start - self.header_start
    }
    pub fn end(&self) -> usize {
        self.data_start + self.data_padded
    }
    pub fn card(&self, key: &str) -> Option<usize> {
        self.cards.iter().find(|(k, _)| k == key).map(|&(_, at)| at)
    }
    pub fn value(&self, bytes: &[u8], key: &str) -> Option<String> {
        let at = self.card(key)?;
        let c = &bytes[at..at + CARD];
        if &c[8..10] != b"= " {
            return None;
        }
        let raw = String::from_utf8_lossy(&c[10..]).into_owned();
        let raw = raw.trim_start();
        if let Some(rest) = raw.strip_prefix('\'') {
            // String: up to the closing quote ('' is an escaped quote).
            let mut s = String::new();
            let mut chars = rest.chars().peekable();
            while let Some(ch) = chars.next() {
                if ch == '\'' {
                    if chars.peek() == Some(&'\'') {
                        s.push('\'');
                        chars.next();
                    } else {
                        break;
                    }
                } else {
                    s.push(ch);
                }
            }
            return Some(s.trim_end().to_string());
        }
        Some(raw.split('/').next().unwrap_or("").trim().to_string())
    }
    pub fn int(&self, bytes: &[u8], key: &str) -> Option<i64> {
        self.value(bytes, key)?.parse().ok()
    }
    pub fn is_compressed_image(&self, bytes: &[u8]) -> bool {
        self.number > 1 && self.value(bytes, "ZIMAGE").as_deref() == Some("T")
    }
}

/// Walk the HDUs of a FITS file strictly. Errors on anything a conforming
/// reader must reject (missing END, bad sizes, truncation of the data).
pub fn parse_hdus(bytes: &[u8]) -> Result<Vec<RawHdu>, String> {
    let mut hdus = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let number = hdus.len() + 1;
        let header_start = pos;
        let mut cards = Vec::new();
        let mut end_card = None;
        let mut p = pos;
        while end_card.is_none() {
            if p + BLOCK > bytes.len() {
                return Err(format!("HDU {number}: header truncated / no END"));
            }
            for i in 0..BLOCK / CARD {
                let at = p + i * CARD;
                let key = String::from_utf8_lossy(&bytes[at..at + 8])
                    .trim_end()
                    .to_string();
                if end_card.is_none() {
                    if key == "END" {
                        end_card = Some(at);
                    }
                    cards.push((key, at));
                }
            }
            p += BLOCK;
        }
        let mut h = RawHdu {
            number,
            header_start,
            cards,
            end_card: end_card.unwrap(),
            data_start: p,
            data_len: 0,
            data_padded: 0,
        };
        let first = &h.cards[0].0;
        if number == 1 && first != "SIMPLE" {
            return Err("first card is not SIMPLE".into());
        }
        if number > 1 && first != "XTENSION" {
            return Err(format!("HDU {number}: first card is not XTENSION"));
        }
        let bitpix = h
            .int(bytes, "BITPIX")
            .ok_or(format!("HDU {number}: no BITPIX"))?;
        if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
            return Err(format!("HDU {number}: BITPIX {bitpix}"));
        }
        let naxis = h
            .int(bytes, "NAXIS")
            .ok_or(format!("HDU {number}: no NAXIS"))?;
        if !(0..=999).contains(&naxis) {
            return Err(format!("HDU {number}: NAXIS {naxis}"));
        }
        let mut n: u128 = if naxis == 0 { 0 } else { 1 };
        for i in 1..=naxis {
            let a = h
                .int(bytes, &format!("NAXIS{i}"))
                .ok_or(format!("HDU {number}: no NAXIS{i}"))?;
            if a < 0 {
                return Err(format!("HDU {number}: NAXIS{i} {a}"));
            }
            n *= a as u128;
        }
        let groups = number == 1 && h.value(bytes, "GROUPS").as_deref() == Some("T");
        if groups && naxis >= 1 && h.int(bytes, "NAXIS1") == Some(0) {
            n = 1;
            for i in 2..=naxis {
                n *= h.int(bytes, &format!("NAXIS{i}")).unwrap_or(0) as u128;
            }
        }
        let pcount = if number > 1 || groups {
            h.int(bytes, "PCOUNT").unwrap_or(0)
        } else {
            0
        };
        let gcount = if number > 1 || groups {
            h.int(bytes, "GCOUNT").unwrap_or(1)
        } else {
            1
        };
        if pcount < 0 || gcount < 0 {
            return Err(format!("HDU {number}: PCOUNT/GCOUNT"));
        }
        if naxis > 0 || pcount > 0 {
            n = (n + pcount as u128) * gcount as u128;
        }
        let len = n * (bitpix.unsigned_abs() as u128 / 8);
        if len > bytes.len() as u128 {
            return Err(format!("HDU {number}: data of {len} bytes beyond the file"));
        }
        h.data_len = len as usize;
        h.data_padded = h.data_len.div_ceil(BLOCK) * BLOCK;
        if h.data_start + h.data_len > bytes.len() {
            return Err(format!("HDU {number}: data truncated"));
        }
        // A short last block (missing fill) is tolerated.
        pos = (h.data_start + h.data_padded).min(bytes.len());
        hdus.push(h);
    }
    if hdus.is_empty() {
        return Err("empty file".into());
    }
    Ok(hdus)
}

/// The content that must survive a round trip: every HDU with a non-empty
/// data unit, as (XTENSION or "PRIMARY", BITPIX, NAXISn, data bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct DataHdu {
    pub kind: String,
    pub bitpix: i64,
    pub axes: Vec<i64>,
    pub data: Vec<u8>,
}

pub fn data_hdus(bytes: &[u8]) -> Result<Vec<DataHdu>, String> {
    let hdus = parse_hdus(bytes)?;
    let mut out = Vec::new();
    for h in &hdus {
        if h.data_len == 0 {
            continue;
        }
        let kind = if h.number == 1 {
            "IMAGE".to_string()
        } else {
            h.value(bytes, "XTENSION").unwrap_or_default()
        };
        let naxis = h.int(bytes, "NAXIS").unwrap_or(0);
        out.push(DataHdu {
            kind,
            bitpix: h.int(bytes, "BITPIX").unwrap_or(0),
            axes: (1..=naxis)
                .map(|i| h.int(bytes, &format!("NAXIS{i}")).unwrap_or(-1))
                .collect(),
            data: bytes[h.data_start..h.data_start + h.data_len].to_vec(),
        });
    }
    Ok(out)
}

/// Short description of how two lists of data HDUs differ.
pub fn compare_data_hdus(got: &[DataHdu], want: &[DataHdu]) -> Option<String> {
    if got.len() != want.len() {
        return Some(format!("{} data HDUs, expected {}", got.len(), want.len()));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g.kind != w.kind || g.bitpix != w.bitpix || g.axes != w.axes {
            return Some(format!(
                "data HDU #{}: {} BITPIX={} {:?}, expected {} BITPIX={} {:?}",
                i + 1,
                g.kind,
                g.bitpix,
                g.axes,
                w.kind,
                w.bitpix,
                w.axes
            ));
        }
        if g.data != w.data {
            let first = g
                .data
                .iter()
                .zip(&w.data)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Some(format!(
                "data HDU #{}: data differ (first at byte {first})",
                i + 1
            ));
        }
    }
    None
}

/// Replace the card at `at` with `card`.
pub fn put_card(bytes: &mut [u8], at: usize, card: &[u8; CARD]) {
    bytes[at..at + CARD].copy_from_slice(card);
}

/// Replace CHECKSUM/DATASUM cards of every HDU with COMMENT cards, so that
/// a structural edit is seen by the parser rather than by the checksum test.
pub fn neutralise_checksums(bytes: &mut [u8]) {
    let mut pos = 0;
    while pos + CARD <= bytes.len() {
        let key = &bytes[pos..pos + 8];
        if key == b"CHECKSUM" || key == b"DATASUM " {
            put_card(
                bytes,
                pos,
                &make_card("COMMENT   checksum card removed by the robustness test"),
            );
        }
        pos += CARD;
    }
}

/// Column layout of a binary table: (TTYPE, TFORM, byte offset in the row).
pub fn bintable_columns(bytes: &[u8], h: &RawHdu) -> Vec<(String, String, usize)> {
    let n = h.int(bytes, "TFIELDS").unwrap_or(0);
    let mut off = 0usize;
    let mut cols = Vec::new();
    for i in 1..=n {
        let ttype = h.value(bytes, &format!("TTYPE{i}")).unwrap_or_default();
        let tform = h.value(bytes, &format!("TFORM{i}")).unwrap_or_default();
        let t = tform.trim();
        let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
        let repeat: usize = if digits.is_empty() {
            1
        } else {
            digits.parse().unwrap_or(1)
        };
        let code = t[digits.len()..].chars().next().unwrap_or('?');
        let width = match code {
            'L' | 'B' | 'A' => repeat,
            'X' => repeat.div_ceil(8),
            'I' => 2 * repeat,
            'J' | 'E' => 4 * repeat,
            'K' | 'D' | 'C' => 8 * repeat,
            'M' => 16 * repeat,
            'P' => 8 * repeat.min(1),
            'Q' => 16 * repeat.min(1),
            _ => 0,
        };
        cols.push((ttype, t.to_string(), off));
        off += width;
    }
    cols
}

/// Build a simple primary-image FITS file.
pub fn make_image_fits(bitpix: i64, axes: &[usize], data: &[u8]) -> Vec<u8> {
    let mut cards = vec![
        value_card("SIMPLE", "T"),
        value_card("BITPIX", &bitpix.to_string()),
        value_card("NAXIS", &axes.len().to_string()),
    ];
    for (i, a) in axes.iter().enumerate() {
        cards.push(value_card(&format!("NAXIS{}", i + 1), &a.to_string()));
    }
    cards.push(make_card("END"));
    let mut out = Vec::with_capacity(BLOCK + data.len() + BLOCK);
    for c in &cards {
        out.extend_from_slice(c);
    }
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, b' ');
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}
