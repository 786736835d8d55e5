//! Whole files: compress, decompress, verify, and write without ever losing
//! data.
//!
//! The invariant this module keeps: an output file appears under its final
//! name only after it has been written to a temporary file in the same
//! directory and checked, and an input is deleted or replaced only after
//! that (with an fsync first). The checks form a chain: every tile was
//! decoded and compared with its source pixels as it was coded, and every
//! table and header re-read in memory (see `compress`); the file is then
//! read back once, must parse as FITS and must have the CRC of those checked
//! bytes. [`verify_compressed`] — a full decode of the file compared with the
//! source — is there for lossy Hcompress and for callers that want it. A
//! crash at any moment leaves the input intact and at most a temporary file
//! beside it (`.NAME.fpack-ng-tmp.PID.N`).
//!
//! Files are read with positional reads: large data units in parallel
//! chunks, so that reading scales with the codecs instead of bounding them.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::compress::{compress_image, CompressSummary};
use super::decompress::{decompress_pixels, CompressedImageInfo, TileDecoder};
use super::keywords::{non_structural, restore_image_header};
use super::options::{CompressOptions, DecompressOptions, HduSelector};
use crate::codec::{self, CodecContext};
use crate::error::{Context, Error, Result};
use crate::fits::checksum::Crc;
use crate::fits::hdu::set_checksums;
use crate::fits::{Card, FitsReader, FitsWriter, Hdu, HduKind, Header};
use crate::limits::Limits;
use crate::tile::PixelType;
use rayon::prelude::*;

/// Where bytes come from: a file (re-readable, length known) or memory
/// (standard input, read once into memory).
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
}

impl<'a> Input<'a> {
    fn name(&self) -> PathBuf {
        match self {
            Input::Path(p) => p.to_path_buf(),
            Input::Bytes(_) => PathBuf::from("<stdin>"),
        }
    }

    fn reader(&self, limits: Limits) -> Result<FitsReader<Box<dyn Read + 'a>>> {
        match *self {
            Input::Path(p) => {
                let file =
                    File::open(p).map_err(|e| Error::io(Context::default(), e).with_file(p))?;
                let len = file.metadata().map(|m| m.len()).ok();
                let file = std::sync::Arc::new(file);
                let position = std::sync::Arc::new(AtomicU64::new(0));
                let stream: Box<dyn Read + 'a> = Box::new(PositionalReader {
                    file: file.clone(),
                    position: position.clone(),
                });
                Ok(FitsReader::new(stream, limits, len)
                    .with_bulk_read(parallel_bulk_read(file, position)))
            }
            Input::Bytes(b) => {
                let boxed: Box<dyn Read + 'a> = Box::new(Cursor::new(b));
                Ok(FitsReader::new(boxed, limits, Some(b.len() as u64)))
            }
        }
    }
}

/// Reads a file at a shared position with positional reads, so that the
/// bulk reader below can take over large data units at the same position.
/// Headers are read a 2880-byte block at a time, which is one system call
/// per block: headers are a few blocks.
struct PositionalReader {
    file: std::sync::Arc<File>,
    position: std::sync::Arc<AtomicU64>,
}

impl Read for PositionalReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let at = self.position.load(Ordering::Relaxed);
        let n = self.file.read_at(buf, at)?;
        self.position.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Large data units are read in parallel chunks: the kernel's copy and the
/// first touch of every page are shared among the threads, which matters
/// once the codecs themselves run in parallel.
fn parallel_bulk_read(
    file: std::sync::Arc<File>,
    position: std::sync::Arc<AtomicU64>,
) -> crate::fits::hdu::BulkRead<'static> {
    const CHUNK: usize = 1 << 20;
    Box::new(move |buf: &mut [u8]| {
        use std::os::unix::fs::FileExt;
        let start = position.load(Ordering::Relaxed);
        let got: std::io::Result<Vec<usize>> = buf
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map(|(i, chunk)| {
                let mut filled = 0;
                while filled < chunk.len() {
                    match file.read_at(&mut chunk[filled..], start + (i * CHUNK + filled) as u64) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(filled)
            })
            .collect();
        // Bytes up to the first short chunk are what the file holds.
        let mut total = 0;
        for (i, n) in got?.into_iter().enumerate() {
            total += n;
            if n < CHUNK.min(buf.len() - i * CHUNK) {
                break;
            }
        }
        position.fetch_add(total as u64, Ordering::Relaxed);
        Ok(total)
    })
}

/// What happened to one HDU.
#[derive(Debug, Clone, PartialEq)]
pub enum HduAction {
    Compressed(CompressSummary),
    Decompressed { algorithm: String },
    Copied,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HduReport {
    /// HDU number in the input, from 1.
    pub number: usize,
    pub action: HduAction,
}

/// The outcome of one file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileReport {
    pub hdus: Vec<HduReport>,
    pub input_bytes: u64,
    pub output_bytes: u64,
}

impl FileReport {
    /// True when every HDU decodes to exactly the input.
    pub fn lossless(&self) -> bool {
        self.hdus.iter().all(|h| match &h.action {
            HduAction::Compressed(s) => s.lossless,
            _ => true,
        })
    }

    /// True when some HDU was coded by a lossy codec (not only quantized):
    /// its tiles had no equality check, so the output must be decoded.
    pub fn has_lossy_codec(&self) -> bool {
        self.hdus
            .iter()
            .any(|h| matches!(&h.action, HduAction::Compressed(s) if s.lossy_codec))
    }
}

fn in_file(e: Error, name: &Path) -> Error {
    e.with_file(name)
}

fn empty_primary() -> Header {
    let mut h = Header::new();
    h.push(Card::new_logical(
        "SIMPLE",
        true,
        Some("file does conform to FITS standard"),
    ));
    h.push(Card::new_int(
        "BITPIX",
        8,
        Some("number of bits per data pixel"),
    ));
    h.push(Card::new_int("NAXIS", 0, Some("number of data axes")));
    h.push(Card::new_logical(
        "EXTEND",
        true,
        Some("FITS dataset may contain extensions"),
    ));
    h
}

fn write_header_and_data<W: Write>(
    writer: &mut FitsWriter<W>,
    mut header: Header,
    data: &[u8],
    checksums: bool,
    ctx: &Context,
) -> Result<()> {
    if checksums {
        set_checksums(&mut header, data);
    }
    writer
        .write(&header, data)
        .map_err(|e| Error::io(ctx.clone(), e))
}

/// Compress every image HDU of `input` into `output` (no verification:
/// [`compress_file`] adds that).
pub fn compress_stream<W: Write>(
    input: Input,
    output: W,
    opts: &CompressOptions,
) -> Result<FileReport> {
    let name = input.name();
    let mut reader = input.reader(opts.limits)?;
    let mut writer = FitsWriter::new(output);
    let mut report = FileReport::default();
    while let Some(hdu) = reader.next_hdu().map_err(|e| in_file(e, &name))? {
        let ctx = Context {
            file: Some(name.clone()),
            hdu: Some(hdu.number),
            tile: None,
        };
        report.input_bytes += (hdu.raw_header.len() + hdu.data.len()) as u64;
        let compressed = match hdu.kind() {
            HduKind::Image => compress_image(&hdu, opts).map_err(|e| in_file(e, &name))?,
            _ => None,
        };
        match compressed {
            Some(c) => {
                if hdu.is_primary() {
                    // The image moves to extension 1 behind an empty primary.
                    write_header_and_data(&mut writer, empty_primary(), &[], opts.checksums, &ctx)?;
                }
                write_header_and_data(&mut writer, c.header, &c.data, opts.checksums, &ctx)?;
                report.hdus.push(HduReport {
                    number: hdu.number,
                    action: HduAction::Compressed(c.summary),
                });
            }
            None => {
                writer
                    .write_raw(&hdu)
                    .map_err(|e| Error::io(ctx.clone(), e))?;
                report.hdus.push(HduReport {
                    number: hdu.number,
                    action: HduAction::Copied,
                });
            }
        }
    }
    writer.flush().map_err(|e| {
        Error::io(
            Context {
                file: Some(name),
                ..Default::default()
            },
            e,
        )
    })?;
    report.output_bytes = writer.bytes_written();
    Ok(report)
}

/// Call `each` for every HDU of a file as stored (no decoding).
pub fn for_each_raw_hdu(
    input: Input,
    limits: Limits,
    mut each: impl FnMut(Hdu) -> Result<()>,
) -> Result<()> {
    let name = input.name();
    let mut reader = input.reader(limits)?;
    while let Some(hdu) = reader.next_hdu().map_err(|e| in_file(e, &name))? {
        each(hdu)?;
    }
    Ok(())
}

/// One HDU of the decompressed view of a file.
#[derive(Debug)]
pub struct LogicalHdu {
    /// HDU number in the compressed file (the table's number for images).
    pub source_number: usize,
    pub content: LogicalContent,
}

#[derive(Debug)]
pub enum LogicalContent {
    /// A compressed image, with the header it restores to; its pixels are
    /// decoded by whoever needs them (all at once to write a file, tile by
    /// tile to verify one).
    Image {
        header: Header,
        info: CompressedImageInfo,
        /// The compressed HDU as stored.
        table: Hdu,
    },
    /// An HDU carried unchanged.
    Raw(Hdu),
}

impl LogicalHdu {
    pub fn header(&self) -> &Header {
        match &self.content {
            LogicalContent::Image { header, .. } => header,
            LogicalContent::Raw(h) => &h.header,
        }
    }
}

/// Primary-array keywords of a compressed file that are carried into the
/// restored primary image (as cfitsio's imcomp_copy_prime2img).
fn extra_primary_cards(primary: &Header) -> Vec<Card> {
    primary
        .cards()
        .iter()
        .filter(|c| {
            let k = c.keyword();
            !(super::keywords::is_image_structural(k)
                || matches!(k, "EXTNAME" | "HISTORY" | "COMMENT" | "")
                || k.starts_with("NAXIS"))
        })
        .cloned()
        .collect()
}

/// Which CHECKSUM/DATASUM keywords to verify while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumPolicy {
    Ignore,
    /// Only compressed images (for our own fresh output, whose other HDUs
    /// are compared byte for byte with the source anyway).
    CompressedOnly,
    /// Every HDU that has them, before deciding what it is: a damaged
    /// ZIMAGE card must not turn a compressed image into a "table" that is
    /// silently copied.
    All,
}

fn next_checked<R: Read>(
    reader: &mut FitsReader<R>,
    name: &Path,
    policy: ChecksumPolicy,
) -> Result<Option<Hdu>> {
    let Some(hdu) = reader.next_hdu().map_err(|e| in_file(e, name))? else {
        return Ok(None);
    };
    let check = match policy {
        ChecksumPolicy::Ignore => false,
        ChecksumPolicy::CompressedOnly => hdu.kind() == HduKind::CompressedImage,
        ChecksumPolicy::All => true,
    };
    if check {
        if let Some(problem) = hdu.checksum_mismatch() {
            let context = Context {
                file: Some(name.to_path_buf()),
                hdu: Some(hdu.number),
                tile: None,
            };
            return Err(Error::Checksum {
                context,
                message: format!(
                    "{problem}: the HDU is damaged (use --no-verify-checksums to read it anyway)"
                ),
            });
        }
    }
    Ok(Some(hdu))
}

/// Read a file as its decompressed HDUs, calling `each` for every one.
pub fn for_each_logical_hdu(
    input: Input,
    limits: Limits,
    checksums: ChecksumPolicy,
    mut each: impl FnMut(LogicalHdu) -> Result<()>,
) -> Result<()> {
    let name = input.name();
    let mut reader = input.reader(limits)?;
    let mut pending: Option<Hdu> = None;
    loop {
        let hdu = match pending.take() {
            Some(h) => h,
            None => match next_checked(&mut reader, &name, checksums)? {
                Some(h) => h,
                None => return Ok(()),
            },
        };
        let mut as_primary = false;
        let mut primary_extras = Vec::new();
        let hdu = if hdu.is_primary() && hdu.image_axes().is_empty() {
            // An empty primary followed by a compressed primary image
            // (ZSIMPLE) is restored as one primary image, as funpack does.
            match next_checked(&mut reader, &name, checksums)? {
                Some(next)
                    if next.kind() == HduKind::CompressedImage
                        && next.header.contains("ZSIMPLE") =>
                {
                    as_primary = true;
                    primary_extras = extra_primary_cards(&hdu.header);
                    next
                }
                next => {
                    pending = next;
                    each(LogicalHdu {
                        source_number: hdu.number,
                        content: LogicalContent::Raw(hdu),
                    })?;
                    continue;
                }
            }
        } else {
            hdu
        };
        if hdu.kind() != HduKind::CompressedImage {
            each(LogicalHdu {
                source_number: hdu.number,
                content: LogicalContent::Raw(hdu),
            })?;
            continue;
        }
        let ctx = Context {
            file: Some(name.clone()),
            hdu: Some(hdu.number),
            tile: None,
        };
        let info = CompressedImageInfo::parse(&hdu.header, &ctx).map_err(|e| in_file(e, &name))?;
        let mut header = restore_image_header(
            &hdu.header,
            info.pixel_type.bitpix(),
            &info.axes,
            as_primary,
        );
        if !primary_extras.is_empty() {
            let at = 3 + info.axes.len() + usize::from(header.contains("EXTEND"));
            for (i, c) in primary_extras.into_iter().enumerate() {
                if !header.contains(c.keyword()) {
                    header.insert(at + i, c);
                }
            }
        }
        each(LogicalHdu {
            source_number: hdu.number,
            content: LogicalContent::Image {
                header,
                info,
                table: hdu,
            },
        })?;
    }
}

fn matches_selector(sel: &HduSelector, logical: &LogicalHdu, index: usize) -> bool {
    match sel {
        HduSelector::Extension(n) => *n == index,
        HduSelector::Name(name) => logical
            .header()
            .get_string("EXTNAME")
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(name.trim())),
    }
}

/// Turn an IMAGE extension header into a primary header.
fn extension_to_primary(header: &Header) -> Header {
    let mut out = Header::new();
    for c in header.cards() {
        match c.keyword() {
            "XTENSION" => out.push(Card::new_logical(
                "SIMPLE",
                true,
                Some("file does conform to FITS standard"),
            )),
            "PCOUNT" | "GCOUNT" => {}
            _ => out.push(c.clone()),
        }
    }
    out
}

/// Decompress every compressed image of `input` into `output`.
pub fn decompress_stream<W: Write>(
    input: Input,
    output: W,
    opts: &DecompressOptions,
) -> Result<FileReport> {
    let name = input.name();
    let mut writer = FitsWriter::new(output);
    let mut report = FileReport::default();
    if let Input::Path(p) = input {
        report.input_bytes = fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    } else if let Input::Bytes(b) = input {
        report.input_bytes = b.len() as u64;
    }
    let single = opts.hdus.as_ref().is_some_and(|s| s.len() == 1);
    let mut index = 0usize; // logical position, funpack's extension number
    let mut written = 0usize;
    let policy = if opts.verify_checksums {
        ChecksumPolicy::All
    } else {
        ChecksumPolicy::Ignore
    };
    for_each_logical_hdu(input, opts.limits, policy, |logical| {
        let this = index;
        index += 1;
        if let Some(sel) = &opts.hdus {
            if !sel.iter().any(|s| matches_selector(s, &logical, this)) {
                return Ok(());
            }
        }
        let ctx = Context {
            file: Some(name.clone()),
            hdu: Some(logical.source_number),
            tile: None,
        };
        let first = written == 0;
        written += 1;
        match logical.content {
            LogicalContent::Image {
                header,
                info,
                table,
            } => {
                let (_, data) = decompress_pixels(&table, &opts.limits, &opts.context)
                    .map_err(|e| in_file(e, &name))?;
                let restore = |as_primary| {
                    restore_image_header(
                        &table.header,
                        info.pixel_type.bitpix(),
                        &info.axes,
                        as_primary,
                    )
                };
                let becomes_primary = first && (single || this == 0);
                if first && !becomes_primary {
                    write_header_and_data(&mut writer, empty_primary(), &[], opts.checksums, &ctx)?;
                }
                // `header` was restored as a primary only when the file's
                // empty primary was merged into it.
                let header = match (becomes_primary, header.contains("SIMPLE")) {
                    (true, true) | (false, false) => header,
                    (true, false) => restore(true),
                    (false, true) => restore(false),
                };
                write_header_and_data(&mut writer, header, &data, opts.checksums, &ctx)?;
                report.hdus.push(HduReport {
                    number: logical.source_number,
                    action: HduAction::Decompressed {
                        algorithm: info.algorithm,
                    },
                });
            }
            LogicalContent::Raw(hdu) => {
                let selected_single_image = opts.hdus.is_some() && first && !hdu.is_primary();
                if selected_single_image && hdu.kind() == HduKind::Image && single {
                    let header = extension_to_primary(&hdu.header);
                    write_header_and_data(
                        &mut writer,
                        header,
                        hdu.data_bytes(),
                        opts.checksums,
                        &ctx,
                    )?;
                } else {
                    if selected_single_image {
                        write_header_and_data(
                            &mut writer,
                            empty_primary(),
                            &[],
                            opts.checksums,
                            &ctx,
                        )?;
                    }
                    writer
                        .write_raw(&hdu)
                        .map_err(|e| Error::io(ctx.clone(), e))?;
                }
                report.hdus.push(HduReport {
                    number: logical.source_number,
                    action: HduAction::Copied,
                });
            }
        }
        Ok(())
    })?;
    if let Some(sel) = &opts.hdus {
        if written == 0 {
            return Err(Error::bad_parameter(format!(
                "{}: none of the HDUs {:?} was found",
                name.display(),
                sel
            )));
        }
    }
    writer.flush().map_err(|e| {
        Error::io(
            Context {
                file: Some(name),
                ..Default::default()
            },
            e,
        )
    })?;
    report.output_bytes = writer.bytes_written();
    Ok(report)
}

/// Check that `packed` decodes to `source`: same HDUs in the same order,
/// identical non-structural header cards, identical pixels for lossless
/// HDUs (and within the quantization step for quantized ones), identical
/// bytes for HDUs that were copied.
pub fn verify_compressed(
    source: Input,
    packed: Input,
    limits: Limits,
    context: &CodecContext,
) -> Result<()> {
    let packed_name = packed.name();
    let source_name = source.name();
    let mut src = source.reader(limits)?;
    let fail = |n: usize, m: String| Error::Verification {
        context: Context {
            file: Some(packed_name.clone()),
            hdu: Some(n),
            tile: None,
        },
        message: m,
    };
    for_each_logical_hdu(packed, limits, ChecksumPolicy::CompressedOnly, |logical| {
        let Some(orig) = src.next_hdu().map_err(|e| in_file(e, &source_name))? else {
            return Err(fail(
                logical.source_number,
                "more HDUs than the source".into(),
            ));
        };
        match &logical.content {
            LogicalContent::Raw(hdu) => {
                if hdu.raw_header != orig.raw_header || hdu.data_bytes() != orig.data_bytes() {
                    return Err(fail(
                        hdu.number,
                        format!("HDU {} was not copied unchanged", orig.number),
                    ));
                }
            }
            LogicalContent::Image {
                header,
                info,
                table,
            } => {
                if non_structural(header) != non_structural(&orig.header) {
                    return Err(fail(
                        logical.source_number,
                        format!("header cards of HDU {} differ", orig.number),
                    ));
                }
                let lossy = info.quantize.is_some()
                    || codec::find(&info.algorithm).is_some_and(|c| !c.is_lossless(&info.params));
                compare_tiles(table, orig.data_bytes(), lossy, limits, context)
                    .map_err(|e| in_file(e, &packed_name))?;
            }
        }
        Ok(())
    })?;
    if src
        .next_hdu()
        .map_err(|e| in_file(e, &source_name))?
        .is_some()
    {
        return Err(fail(0, "fewer HDUs than the source".into()));
    }
    Ok(())
}

/// Decode every tile of `table` and compare it with the same pixels of
/// `source` (the original image's bytes), in parallel and without building
/// a second copy of the image. Lossless HDUs must match bit for bit; lossy
/// ones must keep every NaN and stay within the source's value range.
fn compare_tiles(
    table: &Hdu,
    source: &[u8],
    lossy: bool,
    limits: Limits,
    context: &CodecContext,
) -> Result<()> {
    let decoder = TileDecoder::new(table, &limits, context)?;
    let elem = decoder.info.pixel_type.size();
    let pixel_type = decoder.info.pixel_type;
    if source.len() < decoder.grid.n_pixels() * elem {
        return Err(Error::Verification {
            context: Context::hdu(table.number),
            message: "the source image is smaller than the compressed one".into(),
        });
    }
    let range = if lossy {
        value_range(source, pixel_type)
    } else {
        (0.0, 0.0)
    };
    (0..decoder.n_tiles())
        .into_par_iter()
        .try_for_each(|index| {
            let tile = decoder.decode_tile(index)?;
            let mut problem = None;
            decoder.grid.for_each_run(index, |img, t, len| {
                if problem.is_some() {
                    return;
                }
                let want = &source[img * elem..(img + len) * elem];
                let got = &tile[t * elem..(t + len) * elem];
                if !lossy {
                    if want != got {
                        problem = Some("decoded pixels differ from the source".to_string());
                    }
                } else if let Some(m) = lossy_mismatch(want, got, pixel_type, range) {
                    problem = Some(m);
                }
            });
            match problem {
                None => Ok(()),
                Some(message) => Err(Error::Verification {
                    context: Context::hdu(table.number).tile(index + 1),
                    message,
                }),
            }
        })
}

fn values(bytes: &[u8], pixel_type: PixelType) -> impl Iterator<Item = f64> + '_ {
    let size = pixel_type.size();
    bytes.chunks_exact(size).map(move |c| match pixel_type {
        PixelType::F32 => f32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
        PixelType::F64 => f64::from_be_bytes(c.try_into().unwrap_or([0; 8])),
        PixelType::I16 => i16::from_be_bytes([c[0], c[1]]) as f64,
        PixelType::I32 => i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
        PixelType::U8 => c[0] as f64,
        PixelType::I64 => i64::from_be_bytes(c.try_into().unwrap_or([0; 8])) as f64,
    })
}

fn value_range(bytes: &[u8], pixel_type: PixelType) -> (f64, f64) {
    values(bytes, pixel_type)
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// A lossy pixel is wrong if a NaN moved, or if it left the source's value
/// range widened by its own span: any correct quantization or lossy
/// Hcompress stays inside, a decoding error almost never does.
fn lossy_mismatch(
    want: &[u8],
    got: &[u8],
    pixel_type: PixelType,
    (lo, hi): (f64, f64),
) -> Option<String> {
    let span = (hi - lo).abs().max(1.0);
    for (x, y) in values(want, pixel_type).zip(values(got, pixel_type)) {
        if x.is_nan() != y.is_nan() {
            return Some("a NaN pixel was not preserved".into());
        }
        if x.is_finite() && (!y.is_finite() || y < lo - span || y > hi + span) {
            return Some(format!("decoded value {y} is far outside the source range"));
        }
    }
    None
}

/// Writes a CRC of everything that passes through, to check the file on
/// disk afterwards.
struct CrcWriter<W> {
    inner: W,
    crc: Crc,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary path beside `target`, in the same directory so the final
/// rename is atomic.
fn temp_path_for(target: &Path) -> PathBuf {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.fpack-ng-tmp.{}.{n}", std::process::id()))
}

/// Whether `path` is one of our temporary files (left by a killed run).
pub fn is_temp_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.contains(".fpack-ng-tmp."))
}

/// How carefully [`write_atomically`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteMode {
    /// Replace an existing `target`.
    pub overwrite: bool,
    /// fsync the file and its directory before returning: needed when the
    /// caller will then delete or replace the input, so that a power cut
    /// cannot lose both.
    pub durable: bool,
    /// Re-read the file once: its CRC must equal that of the bytes written,
    /// and it must parse as FITS from end to end (every header, every data
    /// unit of the announced size).
    pub reread: bool,
    pub limits: Limits,
}

/// Write `target` through a temporary file: `produce` writes the content,
/// `check` reads the temporary file back, and only then is it renamed into
/// place. On any error the temporary file is removed and `target` untouched.
pub fn write_atomically<T>(
    target: &Path,
    mode: WriteMode,
    produce: impl FnOnce(&mut dyn Write) -> Result<T>,
    check: impl FnOnce(&Path, &T) -> Result<()>,
) -> Result<T> {
    let ctx = || Context {
        file: Some(target.to_path_buf()),
        ..Default::default()
    };
    if !mode.overwrite && target.exists() {
        return Err(Error::bad_parameter(format!(
            "{}: output file already exists (remove it, or use -F to replace the input)",
            target.display()
        )));
    }
    let temp = temp_path_for(target);
    // Removes the temporary file on every way out but success, a panic
    // unwinding through here included.
    struct RemoveOnDrop<'p>(&'p Path, bool);
    impl Drop for RemoveOnDrop<'_> {
        fn drop(&mut self) {
            if !self.1 {
                let _ = fs::remove_file(self.0);
            }
        }
    }
    let mut guard = RemoveOnDrop(&temp, false);
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| Error::io(ctx(), e))?;
        let mut out = CrcWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            crc: Crc::new(),
        };
        let value = produce(&mut out)?;
        out.flush().map_err(|e| Error::io(ctx(), e))?;
        let (crc, len) = (out.crc.sum(), out.crc.amount());
        let file = out
            .inner
            .into_inner()
            .map_err(|e| Error::io(ctx(), e.into_error()))?;
        if mode.durable {
            file.sync_all().map_err(|e| Error::io(ctx(), e))?;
        }
        drop(file);
        if mode.reread {
            reread_matches(&temp, crc, len, mode.limits).map_err(|e| e.with_file(target))?;
        }
        check(&temp, &value)?;
        fs::rename(&temp, target).map_err(|e| Error::io(ctx(), e))?;
        if mode.durable {
            if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
                // Make the rename itself durable; not all systems allow this.
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
        }
        Ok(value)
    })();
    // After a successful rename there is nothing left to remove.
    guard.1 = result.is_ok();
    drop(guard);
    result
}

/// One pass over the written file: it must parse as FITS from end to end
/// (headers read, data units stepped over) and hold exactly the bytes that
/// were written (same length, and the same CRC, computed over 256 KiB chunks
/// in parallel and combined in order).
fn reread_matches(temp: &Path, crc: u32, len: u32, limits: Limits) -> Result<()> {
    use std::os::unix::fs::FileExt;
    const CHUNK: u64 = 1 << 18;
    let ctx = || Context {
        file: Some(temp.to_path_buf()),
        ..Default::default()
    };
    let file = std::sync::Arc::new(File::open(temp).map_err(|e| Error::io(ctx(), e))?);
    let size = file.metadata().map_err(|e| Error::io(ctx(), e))?.len();
    let position = std::sync::Arc::new(AtomicU64::new(0));
    {
        let stream = PositionalReader {
            file: file.clone(),
            position: position.clone(),
        };
        let at = position.clone();
        let skip: crate::fits::hdu::Skip<'static> = Box::new(move |n| {
            let from = at.load(Ordering::Relaxed);
            let stepped = n.min(size.saturating_sub(from));
            at.fetch_add(stepped, Ordering::Relaxed);
            Ok(stepped)
        });
        let mut reader = FitsReader::new(stream, limits, Some(size)).with_skip(skip);
        while reader.skip_hdu()?.is_some() {}
    }
    // One buffer per worker, reused for its chunks: fresh zeroed buffers
    // for every chunk cost page faults and a memset each.
    let chunks: std::io::Result<Vec<Crc>> = (0..size.div_ceil(CHUNK))
        .into_par_iter()
        .map_init(
            || vec![0u8; CHUNK.min(size) as usize],
            |buf, i| {
                let buf = &mut buf[..CHUNK.min(size - i * CHUNK) as usize];
                file.read_exact_at(buf, i * CHUNK)?;
                let mut c = Crc::new();
                c.update(buf);
                Ok(c)
            },
        )
        .collect();
    let mut whole = Crc::new();
    for c in chunks.map_err(|e| Error::io(ctx(), e))? {
        whole.combine(&c);
    }
    if u64::from(len) != size % (1u64 << 32) || whole.sum() != crc {
        return Err(Error::Verification {
            context: ctx(),
            message: "the file on disk differs from what was written".into(),
        });
    }
    Ok(())
}

/// What to do with the input once the output is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputAfter {
    Keep,
    /// fpack/funpack `-D`.
    Delete,
}

/// Compress `input` into `output` safely (temporary file, checks, rename).
/// `output == input` replaces the input (fpack `-F`).
pub fn compress_file(
    input: &Path,
    output: &Path,
    opts: &CompressOptions,
    overwrite: bool,
    after: InputAfter,
) -> Result<FileReport> {
    // What reaches the disk was verified in memory tile by tile (decoded and
    // compared), table by table (descriptors re-read) and header by header;
    // the re-read in write_atomically proves the disk holds those bytes.
    // A lossy codec (Hcompress with a scale), which has no tile-level
    // equality, is decoded from the file and bounded against the source.
    transform_file(
        input,
        output,
        opts.limits,
        overwrite,
        after,
        |w| compress_stream(Input::Path(input), w, opts),
        |temp, report| {
            if report.has_lossy_codec() {
                verify_compressed(
                    Input::Path(input),
                    Input::Path(temp),
                    opts.limits,
                    &opts.context,
                )
            } else {
                Ok(())
            }
        },
    )
}

/// Decompress `input` into `output` safely. The output is re-read and
/// checked against what was written before it is renamed into place.
pub fn decompress_file(
    input: &Path,
    output: &Path,
    opts: &DecompressOptions,
    overwrite: bool,
    after: InputAfter,
) -> Result<FileReport> {
    transform_file(
        input,
        output,
        opts.limits,
        overwrite,
        after,
        |w| decompress_stream(Input::Path(input), w, opts),
        |_, _| Ok(()),
    )
}

/// Write `output` from `input` through [`write_atomically`], then dispose of
/// the input as asked. Writing over the input itself (`-F`) and deleting it
/// (`-D`) both make the write durable first.
fn transform_file(
    input: &Path,
    output: &Path,
    limits: Limits,
    overwrite: bool,
    after: InputAfter,
    produce: impl FnOnce(&mut dyn Write) -> Result<FileReport>,
    check: impl FnOnce(&Path, &FileReport) -> Result<()>,
) -> Result<FileReport> {
    let same = output == input;
    let mode = WriteMode {
        overwrite: overwrite || same,
        durable: same || after == InputAfter::Delete,
        reread: true,
        limits,
    };
    let report = write_atomically(output, mode, produce, check)?;
    if after == InputAfter::Delete && !same {
        fs::remove_file(input).map_err(|e| Error::io(Context::default(), e).with_file(input))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fpackng-file-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn tiny_fits() -> Vec<u8> {
        let mut h = Header::new();
        h.push(Card::new_logical("SIMPLE", true, None));
        h.push(Card::new_int("BITPIX", 16, None));
        h.push(Card::new_int("NAXIS", 0, None));
        h.to_bytes()
    }

    #[test]
    fn failed_check_leaves_nothing_behind() {
        let dir = temp_dir("check");
        let target = dir.join("out.fits");
        let mode = WriteMode {
            overwrite: false,
            durable: false,
            reread: true,
            limits: Limits::default(),
        };
        let err = write_atomically(
            &target,
            mode,
            |w| {
                w.write_all(&tiny_fits())
                    .map_err(|e| Error::io(Context::default(), e))
            },
            |_, _| Err(Error::bad_parameter("refused")),
        )
        .unwrap_err();
        assert!(err.to_string().contains("refused"));
        assert!(!target.exists());
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "temporary file left behind"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reread_detects_changed_bytes_and_bad_structure() {
        let dir = temp_dir("crc");
        let path = dir.join("f.fits");
        let bytes = tiny_fits();
        fs::write(&path, &bytes).unwrap();
        let mut crc = Crc::new();
        crc.update(&bytes);
        assert!(reread_matches(&path, crc.sum(), crc.amount(), Limits::default()).is_ok());
        assert!(reread_matches(&path, crc.sum() ^ 1, crc.amount(), Limits::default()).is_err());
        // Not FITS at all: the structural pass refuses it whatever the CRC.
        fs::write(&path, b"not a FITS file").unwrap();
        let mut crc = Crc::new();
        crc.update(b"not a FITS file");
        assert!(reread_matches(&path, crc.sum(), crc.amount(), Limits::default()).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
