//! Damaged-input robustness suite for `fpack-ng` and `funpack-ng`.
//!
//! Builds several hundred damaged variants of compressed (`.fz`) and plain
//! FITS files and runs the right tool on each (funpack-ng on `.fz`, fpack-ng
//! on `.fits`, and `-L` of both). For every run it checks:
//!
//! - no panic (exit status 101, "panicked" on stderr) and no crash (death by
//!   a signal), no hang (killed after [`TIME_LIMIT`]);
//! - the exit status the variant's class calls for (see [`Expect`]);
//! - on failure: stderr names the input file and, where the damage sits in
//!   a known HDU, that HDU ("HDU n"); the input is byte-identical to before
//!   (even with -D or -F); nothing else is left in the directory (no output,
//!   no `.fpack-ng-tmp.` file);
//! - on success (only allowed for the classes that say so): the output is
//!   where it belongs, no temporary file is left, and it decodes to the
//!   pixels the class requires.
//!
//! # Classes and what they expect
//!
//! Compressed inputs (funpack-ng). Every source is made by fpack-ng and by
//! Debian's /usr/bin/fpack, both with checksums (the default) and some with
//! `-C` (no CHECKSUM/DATASUM). funpack-ng verifies CHECKSUM/DATASUM of
//! compressed HDUs, so:
//! - `truncate`: the file cut inside a header or a data unit: must fail,
//!   naming the HDU (for cuts past the first block).
//! - `truncate-hdu-boundary`: cut exactly between two HDUs. The result is a
//!   valid FITS file with fewer HDUs, which no reader can tell from an
//!   intended one: exit 0 is allowed, but the output must then hold a prefix
//!   of the reference HDUs.
//! - `truncate-padding`: cut inside the fill of an HDU's data. For the last
//!   HDU all data are present: exit 0 allowed if the output equals the
//!   reference; for a middle HDU the file looks like one that ends after
//!   that HDU (missing fill is tolerated, as by cfitsio): exit 0 allowed
//!   with a prefix of the reference.
//! - `flip-header`, `flip-table`, `flip-heap`, `flip-header-padding`,
//!   `flip-data-padding` in a compressed HDU (random XOR, seeded): with
//!   checksums these must fail (the checksum covers every byte of the HDU,
//!   fill included). Without checksums (`-C` sources): flips in header fill
//!   or data fill are provably harmless (exit 0 allowed, output must equal
//!   the reference); other flips cannot always be detected (a Rice stream
//!   has no check), so exit 0 is allowed with any pixels (`undetectable`):
//!   only no crash, no hang, no leftovers, and a readable output.
//! - `flip-primary`: a flip in the (empty) primary header of a .fz. funpack
//!   carries primary keywords into the output; exit 0 is allowed if the
//!   pixels equal the reference (cfitsio's funpack does not check the
//!   primary's checksum either).
//! - `checksum-mismatch`: a comment character of a compressed HDU's header
//!   changed, DATASUM changed, or ZIMAGE = T turned into F (the HDU then
//!   looks like a plain table; a reader that only verifies the checksums of
//!   compressed HDUs would copy it and drop the image): must fail.
//! - `absurd-znaxis`, `absurd-ztile`, `absurd-table` (NAXISn/PCOUNT of the
//!   table), `zcmptype`, `zbitpix`, `tform`, `missing-end`, `descriptor`
//!   (heap descriptors with count/offset beyond the heap, negative, zero):
//!   CHECKSUM/DATASUM cards are replaced by COMMENTs first so the parser,
//!   not the checksum, has to catch it. All must fail naming the HDU, with
//!   one exception: ZTILEn = 99999999999 where ZTILEn already spanned the
//!   whole axis describes the same tiles (tiles are clipped at the image
//!   edge), so exit 0 is allowed with the reference pixels.
//!   `missing-end` may name the damaged HDU or the next one (a reader only
//!   notices where the next HDU should have started).
//!
//! Plain inputs (fpack-ng), from the fixtures:
//! - `truncate`, `truncate-hdu-boundary`, `truncate-padding`: as above.
//! - `flip-image-data`: pixel bytes changed. Not detectable and not an
//!   error: fpack-ng must succeed and the output must decode to the damaged
//!   pixels exactly (it compresses losslessly by default).
//! - `flip-table-data`: bytes of a BINTABLE/TABLE data unit changed: exit 0
//!   allowed (tables are copied) with the damaged bytes carried exactly.
//! - `flip-header`: random header flips: exit 0 is allowed only if the
//!   damaged file is still valid FITS for an independent strict parser
//!   (robust_common::parse_hdus), and then the output must hold exactly the
//!   data units that parser sees; otherwise it must fail.
//! - `flip-header-padding`: a flip after END: harmless; exit 0 allowed with
//!   the original data.
//! - `checksum-mismatch` (headers.fits, which has CHECKSUM/DATASUM, with a
//!   pixel changed): cfitsio's fpack does not verify input checksums, so
//!   exit 0 is allowed, but the output must then carry the damaged pixels
//!   faithfully (noted in the summary).
//! - `absurd-naxis` (NAXISn 99999999999, negative, NAXIS 1000/-1),
//!   `bitpix` (12, 0), `absurd-table` (PCOUNT/NAXIS2 of the BINTABLE),
//!   `missing-end`, `trailing-blocks` (NAXIS2 = 0 so that whole blocks of
//!   pixels follow the last HDU: they are not an HDU and silently dropping
//!   them would lose data with -D; the message must name HDU k+1, where
//!   they sit): must fail.
//! - `trailing-bytes`: < 2880 junk bytes appended: exit 0 allowed with the
//!   original data (cfitsio ignores a short tail).
//! - `nonfits` (both tools): empty file, text, random bytes, zero and blank
//!   blocks, a lone SIMPLE card: must fail naming the file.
//!
//! `-L` of both tools runs on every variant: no crash/hang, input unchanged,
//! nothing written. `-L` reads headers and data sizes without decoding, so
//! it must fail exactly for the must-fail variants whose HDU structure is
//! broken as an independent strict parser (robust_common::parse_hdus) sees
//! it (non-FITS, truncations, missing END, absurd NAXISn/PCOUNT, ...).
//!
//! Runs alternate between the plain command, `-D` (`-Y -D` for fpack-ng)
//! and, for fpack-ng, `-Y -F`, so the input-preservation guarantee is tested
//! with input deletion and replacement too.

mod robust_common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use robust_common::*;

const TIME_LIMIT: Duration = Duration::from_secs(20);
const SEED: u64 = 0x5eed_f1a5_2024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    Fpack,
    Funpack,
}

impl Tool {
    fn bin(self) -> &'static str {
        match self {
            Tool::Fpack => fpack_bin(),
            Tool::Funpack => funpack_bin(),
        }
    }
    fn input_name(self) -> &'static str {
        match self {
            Tool::Fpack => "x.fits",
            Tool::Funpack => "x.fits.fz",
        }
    }
}

#[derive(Clone, Debug)]
enum Expect {
    /// Must exit non-zero.
    Fail,
    /// Exit 0 allowed if the output's data HDUs equal these.
    FailOr(Vec<DataHdu>),
    /// Exit 0 allowed if the output's data HDUs are a prefix of these.
    FailOrPrefix(Vec<DataHdu>),
    /// Exit 0 allowed with any (readable) output.
    Undetectable,
    /// Must exit 0 and the output must equal these.
    Succeed(Vec<DataHdu>),
}

impl Expect {
    fn short(&self) -> &'static str {
        match self {
            Expect::Fail => "must-fail",
            Expect::FailOr(_) => "fail-or-exact",
            Expect::FailOrPrefix(_) => "fail-or-prefix",
            Expect::Undetectable => "undetectable",
            Expect::Succeed(_) => "must-succeed",
        }
    }
}

struct Variant {
    class: &'static str,
    name: String,
    tool: Tool,
    bytes: Vec<u8>,
    expect: Expect,
    /// The HDU that a failure message must name.
    hdu: Option<usize>,
    /// Also accepted in the message: the HDU after it (for damage that a
    /// reader can only notice where the next HDU should start).
    hdu_or_next: bool,
    /// Whether `-L` must fail too.
    list_must_fail: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Plain,
    Delete,
    Replace,
}

struct Source {
    label: String,
    bytes: Vec<u8>,
    /// What decompressing the undamaged source gives.
    reference: Vec<DataHdu>,
    checksums: bool,
}

// ------------------------------------------------------------------ sources

fn fixture(name: &str) -> Vec<u8> {
    fs::read(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Compress `fixture` with `program flags`, returning the .fz bytes.
fn make_fz(
    work: &Path,
    program: &str,
    flags: &[&str],
    fixture_name: &str,
) -> Result<Vec<u8>, String> {
    let dir = work.join(format!(
        "src-{}-{}-{}",
        Path::new(program).file_name().unwrap().to_string_lossy(),
        flags.join("").replace('-', ""),
        fixture_name
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(fixture_name), fixture(fixture_name)).unwrap();
    let mut args: Vec<&str> = flags.to_vec();
    args.push(fixture_name);
    let out = run_limited(program, &args, &dir, TIME_LIMIT);
    let fz = dir.join(format!("{fixture_name}.fz"));
    if !out.success() {
        return Err(out.describe());
    }
    fs::read(&fz).map_err(|e| format!("{}: exit 0 but no {}: {e}", out.describe(), fz.display()))
}

/// funpack-ng -S on undamaged bytes: the reference decoding.
fn decode_with_funpack(work: &Path, bytes: &[u8], label: &str) -> Result<Vec<DataHdu>, String> {
    let dir = work.join(format!("ref-{label}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("x.fits.fz"), bytes).unwrap();
    let out = run_limited(funpack_bin(), &["-S", "x.fits.fz"], &dir, TIME_LIMIT);
    if !out.success() {
        return Err(out.describe());
    }
    data_hdus(&out.stdout).map_err(|e| format!("funpack-ng -S output is not FITS: {e}"))
}

// ------------------------------------------------------------------ variant builders

fn set_value(bytes: &mut [u8], h: &RawHdu, key: &str, value: &str) -> bool {
    match h.card(key) {
        Some(at) => {
            put_card(bytes, at, &value_card(key, value));
            true
        }
        None => false,
    }
}

fn push(
    out: &mut Vec<Variant>,
    class: &'static str,
    name: String,
    tool: Tool,
    bytes: Vec<u8>,
    expect: Expect,
    hdu: Option<usize>,
) {
    // -L reads headers and data sizes only: it must fail exactly when the
    // HDU structure itself is broken, as an independent strict parser sees it.
    let list_must_fail = matches!(expect, Expect::Fail) && parse_hdus(&bytes).is_err();
    let hdu_or_next = class == "missing-end";
    out.push(Variant {
        class,
        name,
        tool,
        bytes,
        expect,
        hdu,
        hdu_or_next,
        list_must_fail,
    });
}

/// Truncations shared by plain and compressed sources.
fn truncations(
    out: &mut Vec<Variant>,
    tool: Tool,
    label: &str,
    src: &[u8],
    hdus: &[RawHdu],
    reference: &[DataHdu],
) {
    let len = src.len();
    let last = hdus.last().unwrap();
    let mut cuts: BTreeMap<usize, (&'static str, Expect, Option<usize>)> = BTreeMap::new();
    for h in hdus {
        let k = h.number;
        if k > 1 {
            cuts.insert(
                h.header_start,
                (
                    "truncate-hdu-boundary",
                    Expect::FailOrPrefix(reference.to_vec()),
                    None,
                ),
            );
            cuts.insert(h.header_start + 1, ("truncate", Expect::Fail, Some(k)));
        }
        // Inside the header, before END, at the end of the header.
        cuts.insert(
            h.header_start + 80,
            ("truncate", Expect::Fail, (k > 1).then_some(k)),
        );
        cuts.insert(h.end_card, ("truncate", Expect::Fail, (k > 1).then_some(k)));
        cuts.insert(
            h.data_start - 1,
            ("truncate", Expect::Fail, (k > 1).then_some(k)),
        );
        if h.data_len > 0 {
            cuts.insert(h.data_start, ("truncate", Expect::Fail, Some(k)));
            cuts.insert(h.data_start + 7, ("truncate", Expect::Fail, Some(k)));
            cuts.insert(
                h.data_start + h.data_len / 2,
                ("truncate", Expect::Fail, Some(k)),
            );
            cuts.insert(
                h.data_start + h.data_len - 1,
                ("truncate", Expect::Fail, Some(k)),
            );
            // Block boundaries inside the data.
            for b in [1usize, 2] {
                let at = h.data_start + b * BLOCK;
                if at < h.data_start + h.data_len {
                    cuts.insert(at, ("truncate", Expect::Fail, Some(k)));
                }
            }
            // Table/heap boundary and the middle of the heap.
            if let (Some(n1), Some(n2)) = (h.int(src, "NAXIS1"), h.int(src, "NAXIS2")) {
                if h.is_compressed_image(src) {
                    let table = (n1 * n2) as usize;
                    let theap = h.int(src, "THEAP").map(|t| t as usize).unwrap_or(table);
                    if table > 0 && table < h.data_len {
                        cuts.insert(
                            h.data_start + table / 2,
                            ("truncate", Expect::Fail, Some(k)),
                        );
                        cuts.insert(h.data_start + theap, ("truncate", Expect::Fail, Some(k)));
                        cuts.insert(
                            h.data_start + (theap + h.data_len) / 2,
                            ("truncate", Expect::Fail, Some(k)),
                        );
                    }
                }
            }
            if h.data_len < h.data_padded {
                let at = h.data_start + h.data_len + (h.data_padded - h.data_len) / 2;
                // All data are there, only fill is missing: for the last
                // HDU nothing is lost; for a middle HDU the file looks like
                // one that ends after this HDU (as a cut at an HDU boundary).
                if h.number == last.number {
                    cuts.insert(
                        at,
                        ("truncate-padding", Expect::FailOr(reference.to_vec()), None),
                    );
                } else {
                    cuts.insert(
                        at,
                        (
                            "truncate-padding",
                            Expect::FailOrPrefix(reference.to_vec()),
                            None,
                        ),
                    );
                }
            }
        }
    }
    for (at, (class, expect, hdu)) in cuts {
        if at == 0 || at >= len {
            continue;
        }
        push(
            out,
            class,
            format!("{label} cut@{at}"),
            tool,
            src[..at].to_vec(),
            expect,
            hdu,
        );
    }
}

fn flip(bytes: &mut [u8], at: usize, rng: &mut Rng) {
    bytes[at] ^= rng.nonzero_byte();
}

fn compressed_variants(out: &mut Vec<Variant>, src: &Source, rng: &mut Rng) {
    let bytes = &src.bytes;
    let label = &src.label;
    let hdus = parse_hdus(bytes).expect("sources parse");
    let reference = &src.reference;
    truncations(out, Tool::Funpack, label, bytes, &hdus, reference);

    let comp: Vec<&RawHdu> = hdus
        .iter()
        .filter(|h| h.is_compressed_image(bytes))
        .collect();
    assert!(!comp.is_empty(), "{label}: no compressed HDU");
    let c = comp[0];
    let k = c.number;
    let tool = Tool::Funpack;
    let guarded = src.checksums;
    let detect = |harmless: bool| -> Expect {
        if guarded {
            Expect::Fail
        } else if harmless {
            Expect::FailOr(reference.clone())
        } else {
            Expect::Undetectable
        }
    };
    let table_len = (c.int(bytes, "NAXIS1").unwrap() * c.int(bytes, "NAXIS2").unwrap()) as usize;
    let theap = c
        .int(bytes, "THEAP")
        .map(|t| t as usize)
        .unwrap_or(table_len);
    let heap_len = c.data_len - theap;

    // Flips.
    for i in 0..3 {
        let at = rng.range(c.header_start, c.end_card);
        let mut v = bytes.clone();
        flip(&mut v, at, rng);
        push(
            out,
            "flip-header",
            format!("{label} flip-header#{i}@{at}"),
            tool,
            v,
            detect(false),
            guarded.then_some(k),
        );
    }
    {
        let at = rng.range(c.end_card + CARD, c.data_start);
        let mut v = bytes.clone();
        flip(&mut v, at, rng);
        if at < c.data_start && c.end_card + CARD < c.data_start {
            push(
                out,
                "flip-header-padding",
                format!("{label} flip-hpad@{at}"),
                tool,
                v,
                detect(true),
                guarded.then_some(k),
            );
        }
    }
    for i in 0..2 {
        let at = c.data_start + rng.range(0, table_len);
        let mut v = bytes.clone();
        flip(&mut v, at, rng);
        push(
            out,
            "flip-table",
            format!("{label} flip-table#{i}@{at}"),
            tool,
            v,
            detect(false),
            guarded.then_some(k),
        );
    }
    for i in 0..4 {
        if heap_len == 0 {
            break;
        }
        let at = c.data_start + theap + rng.range(0, heap_len);
        let mut v = bytes.clone();
        flip(&mut v, at, rng);
        push(
            out,
            "flip-heap",
            format!("{label} flip-heap#{i}@{at}"),
            tool,
            v,
            detect(false),
            guarded.then_some(k),
        );
    }
    if c.data_len < c.data_padded {
        let at = c.data_start + rng.range(c.data_len, c.data_padded);
        let mut v = bytes.clone();
        flip(&mut v, at, rng);
        push(
            out,
            "flip-data-padding",
            format!("{label} flip-dpad@{at}"),
            tool,
            v,
            detect(true),
            guarded.then_some(k),
        );
    }
    {
        let p = &hdus[0];
        let at = rng.range(p.cards.get(1).map(|c| c.1).unwrap_or(0) + 10, p.end_card);
        let mut v = bytes.clone();
        flip(&mut v, at, rng);
        push(
            out,
            "flip-primary",
            format!("{label} flip-primary@{at}"),
            tool,
            v,
            Expect::FailOr(reference.clone()),
            None,
        );
    }

    // Checksum mismatch with the structure intact.
    if guarded {
        if let Some(at) = c.card("ZCMPTYPE") {
            let mut v = bytes.clone();
            // The comment field (or trailing blanks) of the card.
            let col = at + 79;
            v[col] = if v[col] == b'x' { b'y' } else { b'x' };
            push(
                out,
                "checksum-mismatch",
                format!("{label} zcmptype-comment"),
                tool,
                v,
                Expect::Fail,
                Some(k),
            );
        }
        if c.card("ZIMAGE").is_some() {
            // The HDU no longer says it is a compressed image: a reader that
            // only checks the checksums of compressed HDUs copies it as a
            // plain table and silently drops the image.
            let mut v = bytes.clone();
            set_value(&mut v, c, "ZIMAGE", "F");
            push(
                out,
                "checksum-mismatch",
                format!("{label} ZIMAGE=F"),
                tool,
                v,
                Expect::Fail,
                Some(k),
            );
        }
        if c.card("DATASUM").is_some() {
            let mut v = bytes.clone();
            set_value(&mut v, c, "DATASUM", "'12345'");
            push(
                out,
                "checksum-mismatch",
                format!("{label} datasum"),
                tool,
                v,
                Expect::Fail,
                Some(k),
            );
        }
    }

    // Structural edits, with checksums neutralised.
    let edit = |out: &mut Vec<Variant>, class: &'static str, key: &str, value: &str| {
        let mut v = bytes.clone();
        if set_value(&mut v, c, key, value) {
            neutralise_checksums(&mut v);
            push(
                out,
                class,
                format!("{label} {key}={value}"),
                tool,
                v,
                Expect::Fail,
                Some(k),
            );
        }
    };
    for key in ["ZNAXIS1", "ZNAXIS2"] {
        for val in ["0", "-5", "99999999999"] {
            edit(out, "absurd-znaxis", key, val);
        }
    }
    for val in ["0", "-1", "1000"] {
        edit(out, "absurd-znaxis", "ZNAXIS", val);
    }
    for (i, key) in ["ZTILE1", "ZTILE2"].into_iter().enumerate() {
        for val in ["0", "-1"] {
            edit(out, "absurd-ztile", key, val);
        }
        // A tile longer than its axis is clipped at the image edge: when
        // the tile already spans the whole axis, a huge ZTILEn describes
        // the same tiles and the file must decode as before.
        let axis = c.int(bytes, &format!("ZNAXIS{}", i + 1));
        let tile = c.int(bytes, key).or(if i == 0 { axis } else { Some(1) });
        let mut v = bytes.clone();
        if set_value(&mut v, c, key, "99999999999") {
            neutralise_checksums(&mut v);
            let expect = if axis.is_some() && tile == axis {
                Expect::FailOr(reference.clone())
            } else {
                Expect::Fail
            };
            push(
                out,
                "absurd-ztile",
                format!("{label} {key}=99999999999"),
                tool,
                v,
                expect,
                Some(k),
            );
        }
    }
    edit(out, "absurd-table", "NAXIS1", "99999999999");
    edit(out, "absurd-table", "NAXIS2", "99999999999");
    edit(out, "absurd-table", "NAXIS2", "0");
    edit(out, "absurd-table", "PCOUNT", "99999999999");
    edit(out, "absurd-table", "PCOUNT", "0");
    edit(out, "zcmptype", "ZCMPTYPE", "'FOO_9   '");
    edit(out, "zcmptype", "ZCMPTYPE", "''");
    edit(out, "zbitpix", "ZBITPIX", "12");
    edit(out, "zbitpix", "ZBITPIX", "0");
    edit(out, "zbitpix", "ZBITPIX", "'abc'");
    let cols = bintable_columns(bytes, c);
    if let Some(pos) = cols.iter().position(|(t, _, _)| t == "COMPRESSED_DATA") {
        edit(out, "tform", &format!("TFORM{}", pos + 1), "'XYZ'");
    }
    {
        let mut v = bytes.clone();
        put_card(&mut v, c.end_card, &make_card(""));
        neutralise_checksums(&mut v);
        push(
            out,
            "missing-end",
            format!("{label} no-END in HDU {k}"),
            tool,
            v,
            Expect::Fail,
            Some(k),
        );
        let mut v = bytes.clone();
        put_card(&mut v, hdus[0].end_card, &make_card(""));
        neutralise_checksums(&mut v);
        push(
            out,
            "missing-end",
            format!("{label} no-END in HDU 1"),
            tool,
            v,
            Expect::Fail,
            Some(1),
        );
    }
    {
        // The .fz's empty primary claims an absurd image.
        let p = &hdus[0];
        if let (Some(at_naxis), Some(&(_, next))) = (
            p.card("NAXIS"),
            p.cards.iter().find(|(kk, _)| kk == "EXTEND"),
        ) {
            let mut v = bytes.clone();
            put_card(&mut v, at_naxis, &value_card("NAXIS", "1"));
            put_card(&mut v, next, &value_card("NAXIS1", "99999999999"));
            neutralise_checksums(&mut v);
            push(
                out,
                "absurd-naxis",
                format!("{label} primary NAXIS1=99999999999"),
                tool,
                v,
                Expect::Fail,
                Some(1),
            );
        }
    }

    // Heap descriptors of the COMPRESSED_DATA column.
    if let Some((_, tform, col_off)) = cols.iter().find(|(t, _, _)| t == "COMPRESSED_DATA") {
        let q = tform.contains('Q');
        let row_len = c.int(bytes, "NAXIS1").unwrap() as usize;
        let rows = c.int(bytes, "NAXIS2").unwrap() as usize;
        let desc = |r: usize| c.data_start + r * row_len + col_off;
        let put = |v: &mut Vec<u8>, r: usize, count: Option<i64>, offset: Option<i64>| {
            let at = desc(r);
            if q {
                if let Some(n) = count {
                    v[at..at + 8].copy_from_slice(&n.to_be_bytes());
                }
                if let Some(o) = offset {
                    v[at + 8..at + 16].copy_from_slice(&o.to_be_bytes());
                }
            } else {
                if let Some(n) = count {
                    v[at..at + 4].copy_from_slice(&(n as i32).to_be_bytes());
                }
                if let Some(o) = offset {
                    v[at + 4..at + 8].copy_from_slice(&(o as i32).to_be_bytes());
                }
            }
        };
        // Does any other P/Q column hold data for row r (then count 0 may
        // legitimately mean "see the other column")?
        let other_has_data = |r: usize| {
            cols.iter().any(|(t, f, off)| {
                t != "COMPRESSED_DATA" && (f.contains('P') || f.contains('Q')) && {
                    let at = c.data_start + r * row_len + off;
                    bytes[at..at + 4].iter().any(|&b| b != 0)
                        || (f.contains('Q') && bytes[at..at + 8].iter().any(|&b| b != 0))
                }
            })
        };
        let last = rows - 1;
        let cases: Vec<(String, usize, Option<i64>, Option<i64>)> = vec![
            ("tile1 count=2^31-1".into(), 0, Some(i32::MAX as i64), None),
            ("tile1 offset=2^31-1".into(), 0, None, Some(i32::MAX as i64)),
            ("tile1 count=-16".into(), 0, Some(-16), None),
            ("tile1 offset=-1".into(), 0, None, Some(-1)),
            (
                format!("tile{} offset=heap_end-1 count=100", rows),
                last,
                Some(100),
                Some(heap_len as i64 - 1),
            ),
            (
                "tile1 offset=heap_end".into(),
                0,
                None,
                Some(heap_len as i64),
            ),
        ];
        for (name, r, count, offset) in cases {
            let mut v = bytes.clone();
            put(&mut v, r, count, offset);
            neutralise_checksums(&mut v);
            push(
                out,
                "descriptor",
                format!("{label} {name}"),
                tool,
                v,
                Expect::Fail,
                Some(k),
            );
        }
        if rows > 1 && !other_has_data(1) {
            let mut v = bytes.clone();
            put(&mut v, 1, Some(0), None);
            neutralise_checksums(&mut v);
            push(
                out,
                "descriptor",
                format!("{label} tile2 count=0"),
                tool,
                v,
                Expect::Fail,
                Some(k),
            );
        }
    }
}

fn plain_variants(out: &mut Vec<Variant>, name: &str, rng: &mut Rng) {
    let bytes = fixture(name);
    let label = format!("plain:{name}");
    let hdus = parse_hdus(&bytes).expect("fixture parses");
    let reference = data_hdus(&bytes).unwrap();
    let tool = Tool::Fpack;
    truncations(out, tool, &label, &bytes, &hdus, &reference);

    let damaged_ref = |v: &[u8]| -> Expect {
        match data_hdus(v) {
            Ok(d) => Expect::FailOr(d),
            Err(_) => Expect::Fail,
        }
    };
    let has_checksum = hdus
        .iter()
        .any(|h| h.card("CHECKSUM").is_some() || h.card("DATASUM").is_some());
    // Data flips.
    for h in hdus.iter().filter(|h| h.data_len > 0) {
        let at = h.data_start + rng.range(0, h.data_len);
        let mut v = bytes.clone();
        flip(&mut v, at, rng);
        let image = h.number == 1 || h.value(&bytes, "XTENSION").as_deref() == Some("IMAGE");
        let d = data_hdus(&v).unwrap();
        if has_checksum {
            push(
                out,
                "checksum-mismatch",
                format!("{label} flip-data@{at}"),
                tool,
                v,
                Expect::FailOr(d),
                Some(h.number),
            );
        } else if image {
            push(
                out,
                "flip-image-data",
                format!("{label} flip-data@{at}"),
                tool,
                v,
                Expect::Succeed(d),
                None,
            );
        } else {
            push(
                out,
                "flip-table-data",
                format!("{label} flip-data@{at}"),
                tool,
                v,
                Expect::FailOr(d),
                Some(h.number),
            );
        }
    }
    // Header flips.
    for i in 0..3 {
        let h = &hdus[rng.range(0, hdus.len())];
        let at = rng.range(h.header_start, h.end_card);
        let mut v = bytes.clone();
        flip(&mut v, at, rng);
        let e = damaged_ref(&v);
        push(
            out,
            "flip-header",
            format!("{label} flip-header#{i}@{at}"),
            tool,
            v,
            e,
            None,
        );
    }
    {
        let h = &hdus[0];
        if h.end_card + CARD < h.data_start {
            let at = rng.range(h.end_card + CARD, h.data_start);
            let mut v = bytes.clone();
            flip(&mut v, at, rng);
            push(
                out,
                "flip-header-padding",
                format!("{label} flip-hpad@{at}"),
                tool,
                v,
                Expect::FailOr(reference.clone()),
                Some(1),
            );
        }
    }
    // Structure.
    let img = hdus
        .iter()
        .find(|h| {
            h.data_len > 0
                && (h.number == 1 || h.value(&bytes, "XTENSION").as_deref() == Some("IMAGE"))
        })
        .unwrap();
    let k = img.number;
    let edit = |out: &mut Vec<Variant>, class: &'static str, h: &RawHdu, key: &str, value: &str| {
        let mut v = bytes.clone();
        if set_value(&mut v, h, key, value) {
            neutralise_checksums(&mut v);
            push(
                out,
                class,
                format!("{label} HDU{} {key}={value}", h.number),
                tool,
                v,
                Expect::Fail,
                Some(h.number),
            );
        }
    };
    edit(out, "absurd-naxis", img, "NAXIS1", "99999999999");
    edit(out, "absurd-naxis", img, "NAXIS2", "99999999999");
    edit(out, "absurd-naxis", img, "NAXIS1", "-5");
    edit(out, "absurd-naxis", img, "NAXIS", "1000");
    edit(out, "absurd-naxis", img, "NAXIS", "-1");
    edit(out, "bitpix", img, "BITPIX", "12");
    edit(out, "bitpix", img, "BITPIX", "0");
    if img.number == hdus.len() && img.data_padded >= 2 * BLOCK {
        // Whole blocks of pixels now sit where HDU k+1 would start.
        let mut v = bytes.clone();
        set_value(&mut v, img, "NAXIS2", "0");
        neutralise_checksums(&mut v);
        push(
            out,
            "trailing-blocks",
            format!("{label} HDU{k} NAXIS2=0"),
            tool,
            v,
            Expect::Fail,
            Some(k + 1),
        );
    }
    for h in hdus
        .iter()
        .filter(|h| h.value(&bytes, "XTENSION").as_deref() == Some("BINTABLE"))
    {
        edit(out, "absurd-table", h, "PCOUNT", "99999999999");
        edit(out, "absurd-table", h, "NAXIS2", "99999999999");
        edit(out, "absurd-table", h, "NAXIS1", "-3");
    }
    {
        let mut v = bytes.clone();
        put_card(&mut v, hdus[k - 1].end_card, &make_card(""));
        neutralise_checksums(&mut v);
        push(
            out,
            "missing-end",
            format!("{label} no-END in HDU {k}"),
            tool,
            v,
            Expect::Fail,
            Some(k),
        );
    }
    {
        let mut v = bytes.clone();
        v[..8].copy_from_slice(b"SIMPLX  ");
        push(
            out,
            "nonfits",
            format!("{label} SIMPLX"),
            tool,
            v,
            Expect::Fail,
            None,
        );
    }
    {
        let mut v = bytes.clone();
        let mut junk = vec![0u8; 100];
        rng.fill(&mut junk);
        v.extend_from_slice(&junk);
        push(
            out,
            "trailing-bytes",
            format!("{label} +100 junk bytes"),
            tool,
            v,
            Expect::FailOr(reference.clone()),
            None,
        );
    }
}

fn nonfits_variants(out: &mut Vec<Variant>, rng: &mut Rng) {
    let mut random = vec![0u8; 5000];
    rng.fill(&mut random);
    let text = "This is not a FITS file, just some text.\n"
        .repeat(100)
        .into_bytes();
    let simple_only = make_card("SIMPLE  =                    T").to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("one-byte", vec![b'S']),
        ("text", text),
        ("random", random),
        ("zero-block", vec![0u8; BLOCK]),
        ("blank-block", vec![b' '; BLOCK]),
        ("lone-SIMPLE-card", simple_only),
        ("gzip-magic", {
            let mut v = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
            v.resize(3000, 0x55);
            v
        }),
    ];
    for tool in [Tool::Fpack, Tool::Funpack] {
        for (name, bytes) in &cases {
            push(
                out,
                "nonfits",
                format!("{tool:?} {name}"),
                tool,
                bytes.clone(),
                Expect::Fail,
                None,
            );
        }
    }
}

// ------------------------------------------------------------------ running

fn names_hdu(stderr: &str, n: usize) -> bool {
    let pat = format!("HDU {n}");
    stderr.match_indices(&pat).any(|(i, _)| {
        !stderr[i + pat.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

fn decoded_output(tool: Tool, out_path: &Path, work: &Path) -> Result<Vec<DataHdu>, String> {
    let bytes = fs::read(out_path).map_err(|e| format!("cannot read output: {e}"))?;
    match tool {
        Tool::Funpack => data_hdus(&bytes).map_err(|e| format!("output is not valid FITS: {e}")),
        Tool::Fpack => {
            fs::create_dir_all(work).unwrap();
            fs::write(work.join("check.fits.fz"), &bytes).unwrap();
            let r = run_limited(funpack_bin(), &["-S", "check.fits.fz"], work, TIME_LIMIT);
            let _ = fs::remove_dir_all(work);
            if !r.success() {
                return Err(format!("the output does not decompress: {}", r.describe()));
            }
            data_hdus(&r.stdout).map_err(|e| format!("decompressed output is not valid FITS: {e}"))
        }
    }
}

/// Run one variant; returns its failures.
fn check_variant(idx: usize, v: &Variant, root: &Path, notes: &Mutex<Vec<String>>) -> Vec<String> {
    let mut fails = Vec::new();
    let tag = format!("[{}] {} ({})", v.class, v.name, v.expect.short());
    let dir = root.join(format!("v{idx:04}"));
    fs::create_dir_all(&dir).unwrap();
    let input = v.tool.input_name();
    let input_path = dir.join(input);
    fs::write(&input_path, &v.bytes).unwrap();
    let before = digest_bytes(&v.bytes);

    let mode = match (idx % 3, v.tool) {
        (1, _) => Mode::Delete,
        (2, Tool::Fpack) => Mode::Replace,
        _ => Mode::Plain,
    };
    let mut args: Vec<&str> = Vec::new();
    match (mode, v.tool) {
        (Mode::Delete, Tool::Fpack) => args.extend(["-Y", "-D"]),
        (Mode::Delete, Tool::Funpack) => args.push("-D"),
        (Mode::Replace, _) => args.extend(["-Y", "-F"]),
        _ => {}
    }
    args.push(input);
    let r = run_limited(v.tool.bin(), &args, &dir, TIME_LIMIT);
    let what = format!("{tag}: {}", r.describe());
    if let Some(c) = r.crashed() {
        fails.push(format!("{what}: {c}"));
    }
    let entries = dir_entries(&dir);
    let temps: Vec<&String> = entries.iter().filter(|e| is_temp_name(e)).collect();
    if !temps.is_empty() {
        fails.push(format!("{what}: temporary files left: {temps:?}"));
    }
    let output_name = match (v.tool, mode) {
        (Tool::Fpack, Mode::Replace) => "x.fits",
        (Tool::Fpack, _) => "x.fits.fz",
        (Tool::Funpack, _) => "x.fits",
    };
    if r.success() {
        let mut expected: Vec<&str> = match mode {
            Mode::Plain => vec![input, output_name],
            Mode::Delete => vec![output_name],
            Mode::Replace => vec![output_name],
        };
        expected.sort();
        expected.dedup();
        let others: Vec<&String> = entries.iter().filter(|e| !is_temp_name(e)).collect();
        if others.iter().map(|s| s.as_str()).collect::<Vec<_>>() != expected {
            fails.push(format!(
                "{what}: exit 0 but the directory holds {entries:?}, expected {expected:?}"
            ));
        }
        if mode == Mode::Plain && digest_file(&input_path) != Some(before) {
            fails.push(format!("{what}: the input was modified"));
        }
        let decoded = decoded_output(
            v.tool,
            &dir.join(output_name),
            &root.join(format!("v{idx:04}-check")),
        );
        let verdict: Option<String> = match (&v.expect, &decoded) {
            (Expect::Fail, d) => Some(format!(
                "accepted a damaged input (exit 0), expected a failure; the output {}",
                match d {
                    Ok(got) => format!(
                        "holds {} data HDU(s): {:?}",
                        got.len(),
                        got.iter()
                            .map(|h| format!("{} BITPIX={} {:?}", h.kind, h.bitpix, h.axes))
                            .collect::<Vec<_>>()
                    ),
                    Err(e) => e.clone(),
                }
            )),
            (_, Err(e)) => Some(format!("exit 0 but {e}")),
            (Expect::Undetectable, Ok(_)) => None,
            (Expect::FailOr(want) | Expect::Succeed(want), Ok(got)) => compare_data_hdus(got, want)
                .map(|d| format!("exit 0 but the output differs from what it must hold: {d}")),
            (Expect::FailOrPrefix(want), Ok(got)) => {
                if got.len() <= want.len() {
                    compare_data_hdus(got, &want[..got.len()]).map(|d| {
                        format!("exit 0 but the output is not a prefix of the reference: {d}")
                    })
                } else {
                    Some(format!(
                        "exit 0 but the output has {} data HDUs, more than the {} of the reference",
                        got.len(),
                        want.len()
                    ))
                }
            }
        };
        if let Some(m) = verdict {
            fails.push(format!("{what}: {m}"));
        } else if v.class == "checksum-mismatch" || v.class == "flip-primary" {
            notes
                .lock()
                .unwrap()
                .push(format!("{tag}: accepted (exit 0) with the right pixels"));
        }
    } else if r.status.is_some() {
        if let Expect::Succeed(_) = v.expect {
            fails.push(format!(
                "{what}: failed, but this damage is undetectable and must be compressed faithfully"
            ));
        }
        if digest_file(&input_path) != Some(before) {
            fails.push(format!(
                "{what}: the input was modified or removed on failure"
            ));
        }
        if entries != vec![input.to_string()] {
            fails.push(format!(
                "{what}: after the failure the directory holds {entries:?}, expected only {input}"
            ));
        }
        if !r.stderr.contains(input) {
            fails.push(format!("{what}: stderr does not name the file {input}"));
        }
        if let Some(k) = v.hdu {
            if !names_hdu(&r.stderr, k) && (!v.hdu_or_next || !names_hdu(&r.stderr, k + 1)) {
                let or = if v.hdu_or_next {
                    format!(" (or HDU {})", k + 1)
                } else {
                    String::new()
                };
                fails.push(format!("{what}: stderr does not name HDU {k}{or}"));
            }
        }
    }

    // -L on an untouched copy.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(&input_path, &v.bytes).unwrap();
    let l = run_limited(v.tool.bin(), &["-L", input], &dir, TIME_LIMIT);
    let lwhat = format!("{tag} -L: {}", l.describe());
    if let Some(c) = l.crashed() {
        fails.push(format!("{lwhat}: {c}"));
    }
    if digest_file(&input_path) != Some(before) {
        fails.push(format!("{lwhat}: the input was modified"));
    }
    let entries = dir_entries(&dir);
    if entries != vec![input.to_string()] {
        fails.push(format!("{lwhat}: -L left {entries:?}"));
    }
    if l.success() && v.list_must_fail {
        fails.push(format!(
            "{lwhat}: -L exit 0 on a file whose HDU structure is broken"
        ));
    }
    if !l.success() && l.status.is_some() && !l.stderr.contains(input) {
        fails.push(format!("{lwhat}: stderr does not name the file {input}"));
    }
    if fails.is_empty() {
        let _ = fs::remove_dir_all(&dir);
    }
    fails
}

#[test]
fn damaged_inputs_fail_cleanly() {
    let work = scratch_dir("damaged");
    let mut rng = Rng::new(SEED);
    let mut failures: Vec<String> = Vec::new();
    let mut variants: Vec<Variant> = Vec::new();
    let mut source_notes: Vec<String> = Vec::new();

    // Compressed sources: (program, flags, fixture, lossless).
    let debian = Path::new("/usr/bin/fpack");
    let mut specs: Vec<(&str, Vec<&str>, &str, bool)> = vec![
        (fpack_bin(), vec!["-r"], "uint16.fits", true),
        (fpack_bin(), vec!["-g2"], "bitpix16.fits", true),
        (fpack_bin(), vec!["-h"], "cube3d.fits", true),
        (fpack_bin(), vec!["-p"], "plio_mask.fits", true),
        (fpack_bin(), vec!["-p"], "uint16.fits", true),
        (fpack_bin(), vec!["-r"], "mef_tables.fits", true),
        (fpack_bin(), vec![], "float32.fits", true),
        (fpack_bin(), vec!["-C", "-r"], "uint16.fits", true),
        (fpack_bin(), vec!["-C", "-g2"], "bitpix32.fits", true),
        (fpack_bin(), vec!["-C", "-h"], "bitpix16.fits", true),
        (fpack_bin(), vec!["--jxl"], "uint16.fits", true),
        (
            fpack_bin(),
            vec!["--jxl", "-t", "64,32"],
            "bitpix8.fits",
            true,
        ),
        // No checksums: flipped JXL_1 heap bytes reach the decoder itself.
        (fpack_bin(), vec!["-C", "--jxl"], "bitpix16.fits", true),
        (fpack_bin(), vec!["--mix"], "uint16.fits", true),
        // No checksums: flipped MIXPRED_1 heap bytes reach the decoder and
        // the tile's CRC; 8- and 32-bit pixels, small tiles.
        (fpack_bin(), vec!["-C", "--mix"], "bitpix32.fits", true),
        (
            fpack_bin(),
            vec!["-C", "--mix", "-t", "64,32"],
            "bitpix8.fits",
            true,
        ),
        (fpack_bin(), vec!["-n", "idf"], "uint16.fits", true),
        // No checksums: flipped IDF_1 heap bytes reach the decoder and its
        // per-tile CRC.
        (fpack_bin(), vec!["-C", "-n", "idf"], "bitpix16.fits", true),
        (fpack_bin(), vec!["-n", "pixelcnn"], "uint16.fits", true),
        // No checksums: flipped PCNN_1 heap bytes reach the range decoder and
        // the tile's CRC.
        (
            fpack_bin(),
            vec!["-C", "-n", "pixelcnn"],
            "bitpix16.fits",
            true,
        ),
    ];
    if debian.exists() {
        specs.extend([
            ("/usr/bin/fpack", vec!["-r"], "uint16.fits", true),
            // Quantizes the float32 ERR extension: lossy.
            ("/usr/bin/fpack", vec!["-r"], "mef_tables.fits", false),
            ("/usr/bin/fpack", vec![], "float32.fits", false),
            ("/usr/bin/fpack", vec!["-h"], "bitpix16.fits", true),
            ("/usr/bin/fpack", vec!["-p"], "cube3d.fits", true),
            ("/usr/bin/fpack", vec!["-g2"], "uint16.fits", true),
            ("/usr/bin/fpack", vec!["-C", "-r"], "bitpix16.fits", true),
            ("/usr/bin/fpack", vec!["-C", "-g"], "cube3d.fits", true),
        ]);
    } else {
        source_notes.push("/usr/bin/fpack not found: no cfitsio-made sources".into());
    }
    for (program, flags, fx, lossless) in &specs {
        let prog_name = Path::new(program)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let label = format!(
            "{prog_name}{}:{fx}",
            flags.iter().map(|f| format!(" {f}")).collect::<String>()
        );
        let bytes = match make_fz(&work, program, flags, fx) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("[source] {label}: could not make the source: {e}"));
                continue;
            }
        };
        if let Err(e) = parse_hdus(&bytes) {
            failures.push(format!(
                "[source] {label}: the compressed file is not valid FITS: {e}"
            ));
            continue;
        }
        let reference =
            match decode_with_funpack(&work, &bytes, &label.replace([' ', ':', '/'], "_")) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!(
                        "[source] {label}: funpack-ng cannot decode the undamaged file: {e}"
                    ));
                    continue;
                }
            };
        if *lossless {
            let orig = data_hdus(&fixture(fx)).unwrap();
            if let Some(d) = compare_data_hdus(&reference, &orig) {
                failures.push(format!(
                    "[source] {label}: funpack-ng decodes the undamaged file wrongly: {d}"
                ));
                continue;
            }
        }
        let checksums = !flags.contains(&"-C");
        let before = variants.len();
        compressed_variants(
            &mut variants,
            &Source {
                label: label.clone(),
                bytes,
                reference,
                checksums,
            },
            &mut rng,
        );
        source_notes.push(format!("{label}: {} variants", variants.len() - before));
    }
    for fx in [
        "uint16.fits",
        "bitpix16.fits",
        "float32.fits",
        "mef_tables.fits",
        "cube3d.fits",
        "headers.fits",
        "primary_plus_ext.fits",
    ] {
        plain_variants(&mut variants, fx, &mut rng);
    }
    nonfits_variants(&mut variants, &mut rng);

    // Run on two threads (the machine has two cores).
    let root = work.join("runs");
    fs::create_dir_all(&root).unwrap();
    let notes = Mutex::new(Vec::new());
    let results: Mutex<Vec<(usize, Vec<String>)>> = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= variants.len() {
                    break;
                }
                let f = check_variant(i, &variants[i], &root, &notes);
                results.lock().unwrap().push((i, f));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);

    // Per-class counts.
    let mut per_class: BTreeMap<(&str, String), (usize, usize)> = BTreeMap::new();
    for (i, f) in &results {
        let v = &variants[*i];
        let e = per_class
            .entry((v.class, format!("{:?}", v.tool)))
            .or_default();
        e.0 += 1;
        if !f.is_empty() {
            e.1 += 1;
        }
    }
    eprintln!(
        "damaged-input suite: {} variants ({} runs incl. -L)",
        variants.len(),
        2 * variants.len()
    );
    for n in &source_notes {
        eprintln!("  source {n}");
    }
    for ((class, tool), (n, bad)) in &per_class {
        eprintln!("  {tool:<8} {class:<22} {n:>4} variants, {bad:>4} with failures");
    }
    for n in notes.into_inner().unwrap() {
        eprintln!("  note: {n}");
    }
    for (_, f) in results {
        failures.extend(f);
    }
    if failures.is_empty() {
        let _ = fs::remove_dir_all(&work);
    }
    assert!(variants.len() >= 200, "only {} variants", variants.len());
    assert!(
        failures.is_empty(),
        "{} failures (work dir {}):\n{}",
        failures.len(),
        work.display(),
        failures.join("\n")
    );
}
