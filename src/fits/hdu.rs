//! HDUs: reading them one at a time from a byte stream, and writing them.
//!
//! The reader holds one HDU in memory at a time, so memory stays bounded by
//! the largest HDU whatever the file size. Every size computed from a header
//! is checked against [`Limits`] and, when the input length is known, against
//! what is left of the file, before a byte is allocated: a damaged NAXISn
//! gives an error, not an out-of-memory abort.
//!
//! An HDU keeps its raw header bytes and its data unit with the padding as
//! read, so an HDU we do not compress is copied byte for byte.

use std::io::{Read, Write};

use super::card::{Card, Value, CARD_LEN};
use super::checksum;
use super::header::Header;
use super::BLOCK_LEN;
use crate::error::{Context, Error, Result};
use crate::limits::Limits;

/// What an HDU holds, as far as compression is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HduKind {
    /// The primary HDU or an IMAGE extension (possibly empty: NAXIS=0).
    Image,
    /// A BINTABLE with ZIMAGE = T: a tile-compressed image.
    CompressedImage,
    BinTable,
    AsciiTable,
    /// Primary random groups (GROUPS = T): copied, never compressed.
    RandomGroups,
    /// Any other XTENSION: copied.
    Other,
}

/// One header-data unit.
#[derive(Debug, Clone)]
pub struct Hdu {
    /// Position in the file, counted from 1 (the primary HDU is 1).
    pub number: usize,
    pub header: Header,
    /// The header exactly as read: all blocks, END card and padding.
    pub raw_header: Vec<u8>,
    /// The data unit including its padding as read (a multiple of 2880
    /// bytes, except possibly for the last HDU of a short file).
    pub data: Vec<u8>,
    /// The length of the data unit without padding.
    pub data_len: usize,
}

impl Hdu {
    pub fn is_primary(&self) -> bool {
        self.number == 1
    }

    pub fn kind(&self) -> HduKind {
        let h = &self.header;
        if self.is_primary() {
            if h.get_bool("GROUPS") == Some(true) && h.get_int("NAXIS1") == Some(0) {
                return HduKind::RandomGroups;
            }
            return HduKind::Image;
        }
        match h.get_string("XTENSION").as_deref().map(str::trim) {
            Some("IMAGE") | Some("IUEIMAGE") => HduKind::Image,
            Some("BINTABLE") | Some("A3DTABLE") => {
                if h.get_bool("ZIMAGE") == Some(true) {
                    HduKind::CompressedImage
                } else {
                    HduKind::BinTable
                }
            }
            Some("TABLE") => HduKind::AsciiTable,
            _ => HduKind::Other,
        }
    }

    /// The data unit without padding.
    pub fn data_bytes(&self) -> &[u8] {
        &self.data[..self.data_len.min(self.data.len())]
    }

    /// Image axes (NAXIS1 first) of an image HDU; empty for NAXIS = 0.
    pub fn image_axes(&self) -> Vec<usize> {
        axes(&self.header, "NAXIS").unwrap_or_default()
    }

    /// Check CHECKSUM and DATASUM if present. Returns a description of the
    /// first mismatch, or `None` when they agree or are absent.
    pub fn checksum_mismatch(&self) -> Option<String> {
        // One pass over the data unit serves both keywords; a short tail
        // sums as if zero-padded, so nothing is copied.
        let mut data_sum = None;
        let mut dsum =
            || *data_sum.get_or_insert_with(|| checksum::ones_complement_sum(&self.data, 0));
        if let Some(Value::Text(datasum)) = self.header.value("DATASUM") {
            if let Ok(expected) = datasum.trim().parse::<u64>() {
                let actual = dsum();
                if u64::from(actual) != expected {
                    return Some(format!(
                        "DATASUM is {expected} but the data unit sums to {actual}"
                    ));
                }
            }
        }
        if self.header.contains("CHECKSUM") {
            let hsum = checksum::ones_complement_sum(&self.raw_header, 0);
            let total = add_ones_complement(hsum, dsum());
            if total != u32::MAX && total != 0 {
                return Some("CHECKSUM does not match the header and data".to_string());
            }
        }
        None
    }
}

fn add_ones_complement(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s.wrapping_add(carry as u32)
}

/// Read `prefix` + "1", "2", ... axes (e.g. NAXIS/NAXISn, ZNAXIS/ZNAXISn).
pub fn axes(header: &Header, prefix: &str) -> Option<Vec<usize>> {
    let n = header.get_int(prefix)?;
    if !(0..=999).contains(&n) {
        return None;
    }
    (1..=n)
        .map(|i| {
            header
                .get_int(&format!("{prefix}{i}"))
                .and_then(|v| usize::try_from(v).ok())
        })
        .collect()
}

/// Reads `buf.len()` bytes at the reader's current position and advances
/// it; returns how many bytes there were (fewer only at the end of input).
/// Supplied by callers who can read a file faster than sequentially (in
/// parallel positional reads); the reader stays free of threads itself.
pub type BulkRead<'a> = Box<dyn FnMut(&mut [u8]) -> std::io::Result<usize> + Send + 'a>;

/// Steps over `n` bytes at the reader's current position without reading
/// them; returns how many there were (fewer only at the end of input).
pub type Skip<'a> = Box<dyn FnMut(u64) -> std::io::Result<u64> + Send + 'a>;

/// Data units at least this large go through the bulk reader, if any.
const BULK_MIN: u64 = 4 << 20;

/// Reads HDUs one at a time.
pub struct FitsReader<R> {
    inner: R,
    limits: Limits,
    /// Bytes left in the input, when known (files): sizes are checked
    /// against it before allocating.
    remaining: Option<u64>,
    next_number: usize,
    finished: bool,
    /// Set by `skip_hdu`: consume data units without storing them.
    skip_data: bool,
    bulk: Option<BulkRead<'static>>,
    skip: Option<Skip<'static>>,
}

impl<R: Read> FitsReader<R> {
    pub fn new(inner: R, limits: Limits, input_len: Option<u64>) -> Self {
        FitsReader {
            inner,
            limits,
            remaining: input_len,
            next_number: 1,
            finished: false,
            skip_data: false,
            bulk: None,
            skip: None,
        }
    }

    /// Let `skip_hdu` step over data units with `skip` instead of reading
    /// them. `skip` must advance the same position `inner` reads from.
    pub fn with_skip(mut self, skip: Skip<'static>) -> Self {
        self.skip = Some(skip);
        self
    }

    /// Read large data units through `bulk` instead of `inner`. Both must
    /// share one position: `bulk` advances it past what it reads.
    pub fn with_bulk_read(mut self, bulk: BulkRead<'static>) -> Self {
        self.bulk = Some(bulk);
        self
    }

    fn context(&self) -> Context {
        Context::hdu(self.next_number)
    }

    /// Read up to `buf.len()` bytes; returns how many (fewer only at EOF).
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(self.context(), e)),
            }
        }
        if let Some(r) = self.remaining.as_mut() {
            *r = r.saturating_sub(filled as u64);
        }
        Ok(filled)
    }

    /// The next HDU, or `None` at the end of the file.
    pub fn next_hdu(&mut self) -> Result<Option<Hdu>> {
        if self.finished {
            return Ok(None);
        }
        let number = self.next_number;
        let ctx = self.context();
        let mut raw_header = Vec::with_capacity(BLOCK_LEN);
        let mut cards = Vec::new();
        let mut block = vec![0u8; BLOCK_LEN];
        loop {
            let got = self.read_full(&mut block)?;
            if raw_header.is_empty() {
                if got == 0 {
                    if number == 1 {
                        return Err(Error::malformed(ctx, "empty input: not a FITS file"));
                    }
                    self.finished = true;
                    return Ok(None);
                }
                let first = &block[..got];
                let starts = |key: &[u8]| first.len() >= 10 && first.starts_with(key);
                if number == 1 && !starts(b"SIMPLE  = ") {
                    return Err(Error::malformed(
                        ctx,
                        "not a FITS file (does not start with SIMPLE =)",
                    ));
                }
                if number > 1 && !starts(b"XTENSION= ") {
                    if first.iter().all(|&b| b == 0 || b == b' ') {
                        // Zero or blank fill after the last HDU carries nothing.
                        self.drain_fill()?;
                        self.finished = true;
                        return Ok(None);
                    }
                    return Err(Error::malformed(
                        ctx,
                        "bytes after the previous HDU are not a FITS extension (no XTENSION card)",
                    ));
                }
            }
            if got < BLOCK_LEN {
                return Err(Error::malformed(
                    ctx,
                    "file ends inside the header (truncated)",
                ));
            }
            raw_header.extend_from_slice(&block);
            let mut ended = false;
            for raw_card in block.chunks_exact(CARD_LEN) {
                let card = Card::from_bytes(raw_card);
                if card.keyword() == "END" && !card.text().starts_with("END=") {
                    ended = true;
                    break;
                }
                cards.push(card);
            }
            if ended {
                break;
            }
            if cards.len() > self.limits.max_header_cards {
                return Err(Error::LimitExceeded {
                    context: ctx,
                    what: "the number of header cards".into(),
                    value: cards.len() as u128,
                    limit: self.limits.max_header_cards as u128,
                });
            }
        }
        let header = Header::from_cards(cards);
        let data_len = data_unit_len(&header, number == 1, &ctx)?;
        if data_len > u128::from(self.limits.max_hdu_bytes) {
            return Err(Error::LimitExceeded {
                context: ctx,
                what: "the data unit size in bytes".into(),
                value: data_len,
                limit: self.limits.max_hdu_bytes.into(),
            });
        }
        let data_len = data_len as u64;
        if let Some(left) = self.remaining {
            if data_len > left {
                return Err(Error::malformed(
                    ctx,
                    format!(
                        "truncated: the header announces a data unit of {data_len} bytes but only {left} remain"
                    ),
                ));
            }
        }
        let padded_len = data_len.div_ceil(BLOCK_LEN as u64) * BLOCK_LEN as u64;
        let io_err = |e| Error::io(ctx.clone(), e);
        // Three ways to consume the data unit; each gives the bytes kept (if
        // any) and how many bytes the input really had.
        let (mut data, got): (Vec<u8>, u64) = if self.skip_data {
            let got = match self.skip.as_mut() {
                Some(skip) => skip(padded_len),
                None => std::io::copy(
                    &mut (&mut self.inner).take(padded_len),
                    &mut std::io::sink(),
                ),
            }
            .map_err(io_err)?;
            (Vec::new(), got)
        } else if let (Some(bulk), Some(left), true) =
            (self.bulk.as_mut(), self.remaining, data_len >= BULK_MIN)
        {
            // Zeroed pages are mapped lazily: the bulk reader's threads touch
            // them, so the page faults are shared out too.
            let mut data = vec![0u8; padded_len as usize];
            let want = padded_len.min(left) as usize;
            let got = bulk(&mut data[..want]).map_err(io_err)? as u64;
            (data, got)
        } else {
            let mut data = Vec::new();
            // Known input length: allocate once. Unknown (a pipe): grow as
            // bytes actually arrive, so an absurd header cannot make us
            // allocate.
            if self.remaining.is_some() {
                data.reserve_exact(padded_len as usize);
            }
            let got = (&mut self.inner)
                .take(padded_len)
                .read_to_end(&mut data)
                .map_err(io_err)?;
            (data, got as u64)
        };
        if let Some(r) = self.remaining.as_mut() {
            *r = r.saturating_sub(got);
        }
        if got < data_len {
            return Err(Error::malformed(
                ctx,
                format!(
                    "truncated: the data unit needs {data_len} bytes but the file ends after {got}"
                ),
            ));
        }
        if got < padded_len {
            // The last HDU lacks its final padding: tolerated, as cfitsio does.
            if !self.skip_data {
                data.resize(padded_len as usize, 0);
            }
            self.finished = true;
        }
        self.next_number += 1;
        Ok(Some(Hdu {
            number,
            header,
            raw_header,
            data,
            data_len: data_len as usize,
        }))
    }

    /// Read the next header and step over its data unit without keeping it
    /// (a structural check that allocates nothing per HDU). Returns the
    /// header and its data length, or `None` at the end.
    pub fn skip_hdu(&mut self) -> Result<Option<(Header, u64)>> {
        // Reuse next_hdu's header logic on a reader that reads no data: the
        // data unit is consumed here in fixed-size pieces instead.
        self.skip_data = true;
        let result = self.next_hdu();
        self.skip_data = false;
        Ok(result?.map(|h| (h.header, h.data_len as u64)))
    }

    fn drain_fill(&mut self) -> Result<()> {
        let mut buf = vec![0u8; BLOCK_LEN];
        loop {
            let got = self.read_full(&mut buf)?;
            if got == 0 {
                return Ok(());
            }
            if !buf[..got].iter().all(|&b| b == 0 || b == b' ') {
                return Err(Error::malformed(
                    self.context(),
                    "bytes after the last HDU are neither an extension nor fill",
                ));
            }
        }
    }
}

/// Size in bytes of the data unit (without padding) a header announces.
pub fn data_unit_len(header: &Header, primary: bool, ctx: &Context) -> Result<u128> {
    let bitpix = header
        .get_int("BITPIX")
        .ok_or_else(|| Error::malformed(ctx.clone(), "missing or invalid BITPIX"))?;
    if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
        return Err(Error::malformed(
            ctx.clone(),
            format!("invalid BITPIX = {bitpix}"),
        ));
    }
    let naxis = header
        .get_int("NAXIS")
        .ok_or_else(|| Error::malformed(ctx.clone(), "missing or invalid NAXIS"))?;
    if !(0..=999).contains(&naxis) {
        return Err(Error::malformed(
            ctx.clone(),
            format!("invalid NAXIS = {naxis}"),
        ));
    }
    if naxis == 0 {
        return Ok(0);
    }
    let mut dims = Vec::with_capacity(naxis as usize);
    for i in 1..=naxis {
        let v = header
            .get_int(&format!("NAXIS{i}"))
            .ok_or_else(|| Error::malformed(ctx.clone(), format!("missing or invalid NAXIS{i}")))?;
        if v < 0 {
            return Err(Error::malformed(
                ctx.clone(),
                format!("negative NAXIS{i} = {v}"),
            ));
        }
        dims.push(v as u128);
    }
    let groups = primary && header.get_bool("GROUPS") == Some(true) && dims[0] == 0;
    let pcount = header.get_int("PCOUNT").unwrap_or(0);
    let gcount = header.get_int("GCOUNT").unwrap_or(1);
    if pcount < 0 || gcount < 0 {
        return Err(Error::malformed(ctx.clone(), "negative PCOUNT or GCOUNT"));
    }
    let skip = if groups { 1 } else { 0 };
    let overflow = || Error::malformed(ctx.clone(), "data unit size overflows");
    let mut n: u128 = 1;
    for &d in &dims[skip..] {
        n = n.checked_mul(d).ok_or_else(overflow)?;
        if n > u64::MAX as u128 {
            return Err(overflow());
        }
    }
    let (pcount, gcount) = if primary && !groups {
        (0, 1)
    } else {
        (pcount as u128, gcount as u128)
    };
    let bytes = (bitpix.unsigned_abs() as u128 / 8)
        .checked_mul(gcount)
        .and_then(|x| x.checked_mul(pcount.checked_add(n)?))
        .ok_or_else(overflow)?;
    Ok(bytes)
}

/// Writes HDUs.
pub struct FitsWriter<W> {
    inner: W,
    written: u64,
}

impl<W: Write> FitsWriter<W> {
    pub fn new(inner: W) -> Self {
        FitsWriter { inner, written: 0 }
    }

    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Copy an HDU exactly as it was read.
    pub fn write_raw(&mut self, hdu: &Hdu) -> std::io::Result<()> {
        self.put(&hdu.raw_header)?;
        self.put(&hdu.data)
    }

    /// Write a header and a data unit, padding the data with zeros.
    pub fn write(&mut self, header: &Header, data: &[u8]) -> std::io::Result<()> {
        self.put(&header.to_bytes())?;
        self.put(data)?;
        let pad = (BLOCK_LEN - data.len() % BLOCK_LEN) % BLOCK_LEN;
        self.put(&[0u8; BLOCK_LEN][..pad])
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Set DATASUM and CHECKSUM in `header` for this data unit (unpadded; the
/// zero padding does not change the sum), as cfitsio's fits_write_chksum.
pub fn set_checksums(header: &mut Header, data: &[u8]) {
    let dsum = checksum::ones_complement_sum(data, 0);
    header.set(Card::new_string(
        "CHECKSUM",
        "0000000000000000",
        Some("HDU checksum"),
    ));
    header.set(Card::new_string(
        "DATASUM",
        &dsum.to_string(),
        Some("data unit checksum"),
    ));
    let hsum = checksum::ones_complement_sum(&header.to_bytes(), 0);
    let total = add_ones_complement(hsum, dsum);
    header.set(Card::new_string(
        "CHECKSUM",
        &checksum::encode(total, true),
        Some("HDU checksum"),
    ));
}
