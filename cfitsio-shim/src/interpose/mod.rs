//! The cfitsio interposer: with this library in LD_PRELOAD, programs linked
//! with Debian's libcfitsio.so.10 read tiles of every registry codec that
//! cfitsio does not know (JXL_1, ...), unmodified.
//!
//! cfitsio has no codec registry, but its internal calls to the functions
//! below go through the PLT (exported, default visibility, no -Bsymbolic),
//! so definitions here win over its own (see
//! shared/notes/plugin-mechanisms.md). The trick keeps all of cfitsio's own
//! scaling, null, dither and section logic:
//! - `imcomp_get_compressed_image_par` (the ZCMPTYPE parser, run whenever a
//!   compressed HDU is entered): while it runs, our `ffgky` reports a new
//!   ZCMPTYPE as GZIP_1, so cfitsio accepts the HDU and treats its tiles as
//!   gzip streams of big-endian pixels. Right after, the whole header is read
//!   (`ffghsp`/`ffgrec`), parsed by fpackng, and remembered for this
//!   (file, HDU) pair; a header fpackng refuses fails the open here, with
//!   cfitsio's own status 414 and message stack.
//! - `imcomp_decompress_tile`: notes which tile of which remembered HDU is
//!   being decoded (thread-local), then runs cfitsio's own code.
//! - `uncompress2mem_from_mem` (gunzip): inside such a tile, decodes the
//!   tile with the fpackng codec and returns the big-endian bytes gunzip
//!   would have returned; otherwise (real gzip data) calls the real one.
//! - `imcomp_compress_tile`: refuses to write into an HDU of a new codec,
//!   since cfitsio would store gzip streams under a JXL_1 header; except
//!   into an HDU this library set up for writing ([`write`]: with
//!   `fpack-ng shim --write CODEC`, cfitsio's lossless writes use CODEC).
//!
//! Each wrapper finds the real function with `dlsym(RTLD_NEXT)`; when there
//! is none (no cfitsio in the process), it reports an error status instead
//! of calling through a null pointer.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};
use std::sync::{Arc, Mutex, OnceLock};

use fpackng::codec::Codec;
use fpackng::fits::{Card, Header};
use fpackng::pack::CompressedImageInfo;
use fpackng::tile::{PixelType, TileGrid};
use fpackng::{Context, Limits};

use crate::core::{self, TileJob};

/// cfitsio's status for a failed tile decompression (DATA_DECOMPRESSION_ERR).
const DATA_DECOMPRESSION_ERR: c_int = 414;
/// cfitsio's status for a failed tile compression (DATA_COMPRESSION_ERR).
const DATA_COMPRESSION_ERR: c_int = 413;
const MEMORY_ALLOCATION: c_int = 113;
/// cfitsio's TSTRING datatype code.
const TSTRING: c_int = 16;
/// What the parser is told a new ZCMPTYPE is.
const STAND_IN: &CStr = c"GZIP_1";

/// `fitsfile` of fitsio.h: public and stable since cfitsio 2.
#[repr(C)]
pub struct FitsFile {
    hdu_position: c_int,
    fptr: *mut c_void,
}

type FfgkyFn = unsafe extern "C" fn(
    *mut FitsFile,
    c_int,
    *const c_char,
    *mut c_void,
    *mut c_char,
    *mut c_int,
) -> c_int;
type ParseFn = unsafe extern "C" fn(*mut FitsFile, *mut c_int) -> c_int;
type DecompressTileFn = unsafe extern "C" fn(
    *mut FitsFile,
    c_int,
    c_int,
    c_int,
    c_int,
    *mut c_void,
    *mut c_void,
    *mut c_char,
    *mut c_int,
    *mut c_int,
) -> c_int;
type ReallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
/// cfitsio's memory-to-memory gzip and gunzip (one signature).
pub(super) type GzipMemFn = unsafe extern "C" fn(
    *mut c_char,
    usize,
    *mut *mut c_char,
    *mut usize,
    Option<ReallocFn>,
    *mut usize,
    *mut c_int,
) -> c_int;
type CompressTileFn = unsafe extern "C" fn(
    *mut FitsFile,
    c_long,
    c_int,
    *mut c_void,
    c_long,
    c_long,
    c_long,
    c_int,
    *mut c_void,
    *mut c_int,
) -> c_int;
type HeaderSpaceFn =
    unsafe extern "C" fn(*mut FitsFile, *mut c_int, *mut c_int, *mut c_int) -> c_int;
type ReadRecordFn = unsafe extern "C" fn(*mut FitsFile, c_int, *mut c_char, *mut c_int) -> c_int;
type PutMessageFn = unsafe extern "C" fn(*const c_char);
type MarkFn = unsafe extern "C" fn();

/// The next definition of `name` after this library (cfitsio's own), or 0.
pub(crate) fn next_symbol(name: &CStr, slot: &OnceLock<usize>) -> usize {
    // Safety: dlsym with RTLD_NEXT and a NUL-terminated name is always
    // safe to call; it returns null when no later object defines the name.
    *slot.get_or_init(|| unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize)
}

macro_rules! real {
    ($name:literal, $ty:ty) => {{
        static SLOT: OnceLock<usize> = OnceLock::new();
        let address = $crate::interpose::next_symbol($name, &SLOT);
        if address == 0 {
            None
        } else {
            // Safety: the address is cfitsio's definition of this very
            // function, whose C prototype `$ty` mirrors (fitsio.h/fitsio2.h
            // of cfitsio 4.x).
            Some(unsafe { std::mem::transmute::<usize, $ty>(address) })
        }
    }};
}

mod write;

/// What the interposer knows of one HDU of a new codec.
struct HduState {
    job_name: String,
    codec: &'static dyn Codec,
    pixel_type: PixelType,
    grid: TileGrid,
    params: fpackng::codec::Params,
}

type HduKey = (usize, c_int);

fn hdus() -> &'static Mutex<HashMap<HduKey, Arc<HduState>>> {
    static HDUS: OnceLock<Mutex<HashMap<HduKey, Arc<HduState>>>> = OnceLock::new();
    HDUS.get_or_init(Default::default)
}

fn lookup(key: HduKey) -> Option<Arc<HduState>> {
    hdus().lock().ok()?.get(&key).cloned()
}

thread_local! {
    /// Depth of `imcomp_get_compressed_image_par` calls on this thread.
    static IN_PARSER: Cell<u32> = const { Cell::new(0) };
    /// The new ZCMPTYPE the parser was shown GZIP_1 for.
    static REPLACED: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The tile `imcomp_decompress_tile` is decoding: HDU, row, pixels.
    static CURRENT_TILE: RefCell<Option<(Arc<HduState>, usize, usize)>> = const { RefCell::new(None) };
}

/// # Safety
/// `fptr` is null or a valid open `fitsfile`.
unsafe fn key_of(fptr: *mut FitsFile) -> Option<HduKey> {
    if fptr.is_null() {
        return None;
    }
    // Safety: a valid fitsfile by contract.
    let f = unsafe { &*fptr };
    Some((f.fptr as usize, f.hdu_position))
}

/// Pushes `message` on cfitsio's error stack (80 characters per line).
fn push_message(message: &str) {
    let Some(put) = real!(c"ffpmsg", PutMessageFn) else {
        return;
    };
    let mut line = String::new();
    for word in format!("fpack-ng shim: {message}").split(' ') {
        if !line.is_empty() && line.len() + 1 + word.len() > 80 {
            send_line(put, &line);
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word.chars().take(80).collect::<String>());
    }
    if !line.is_empty() {
        send_line(put, &line);
    }
}

fn send_line(put: PutMessageFn, line: &str) {
    if let Ok(c) = CString::new(line) {
        // Safety: ffpmsg copies a NUL-terminated string of up to 80 chars.
        unsafe { put(c.as_ptr()) };
    }
}

/// # Safety
/// `status` is null or writable.
unsafe fn fail(status: *mut c_int, code: c_int, message: &str) -> c_int {
    push_message(message);
    if !status.is_null() {
        // Safety: non-null, writable by cfitsio's contract.
        unsafe { *status = code };
    }
    code
}

/// The arguments of cfitsio's memory-to-memory gzip and gunzip
/// (`compress2mem_from_mem`, `uncompress2mem_from_mem`), which share one
/// signature: the read path answers the one, the write path the other.
pub(super) struct MemCall {
    pub input: *mut c_char,
    pub input_size: usize,
    pub buffer: *mut *mut c_char,
    pub buffer_size: *mut usize,
    pub mem_realloc: Option<ReallocFn>,
    pub file_size: *mut usize,
    pub status: *mut c_int,
}

impl MemCall {
    /// Calls cfitsio's own function with these arguments.
    ///
    /// # Safety
    /// The arguments are the caller's, under cfitsio's contract.
    pub unsafe fn forward(&self, real: GzipMemFn) -> c_int {
        // Safety: forwarded unchanged.
        unsafe {
            real(
                self.input,
                self.input_size,
                self.buffer,
                self.buffer_size,
                self.mem_realloc,
                self.file_size,
                self.status,
            )
        }
    }

    /// Whether a pointer the coder needs is null (input only with bytes).
    fn any_null(&self) -> bool {
        self.buffer.is_null()
            || self.buffer_size.is_null()
            || self.file_size.is_null()
            || self.status.is_null()
            || self.mem_realloc.is_none()
            || (self.input.is_null() && self.input_size > 0)
    }

    /// The input bytes.
    ///
    /// # Safety
    /// `!any_null()`, and cfitsio passes `input_size` readable bytes.
    unsafe fn input(&self) -> &[u8] {
        if self.input_size == 0 {
            &[]
        } else {
            // Safety: see above.
            unsafe { std::slice::from_raw_parts(self.input.cast::<u8>(), self.input_size) }
        }
    }

    /// Answers the call for a tile of a new codec: checks the arguments,
    /// runs `code` on the input bytes (a panic becomes the error
    /// `internal error ` + `doing`), and hands the result back in cfitsio's
    /// buffer; an error becomes status `err_status` with its message.
    ///
    /// # Safety
    /// cfitsio's contract for the function being answered.
    pub unsafe fn answer(
        &self,
        err_status: c_int,
        doing: &str,
        code: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
    ) -> c_int {
        if self.any_null() {
            // Safety: forwarded contract.
            return unsafe { fail(self.status, err_status, &format!("null argument {doing}")) };
        }
        // Safety: checked above; cfitsio passes `input_size` readable bytes.
        let bytes = unsafe { self.input() };
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| code(bytes)))
            .unwrap_or_else(|_| Err(format!("internal error {doing}")));
        match out {
            // Safety: checked above.
            Ok(out) => unsafe { self.deliver(&out, doing) },
            // Safety: non-null status (checked above).
            Err(message) => unsafe { fail(self.status, err_status, &message) },
        }
    }

    /// Hands `out` back in cfitsio's buffer, grown with its realloc
    /// function when too small; 0, or an error status (`what` names the
    /// buffer in the message).
    ///
    /// # Safety
    /// `!any_null()`, and cfitsio's buffer/size pair and realloc function.
    unsafe fn deliver(&self, out: &[u8], what: &str) -> c_int {
        // Safety: see above.
        unsafe {
            if *self.buffer_size < out.len() || (*self.buffer).is_null() {
                let grow = self.mem_realloc.expect("checked by any_null");
                let grown = grow((*self.buffer).cast::<c_void>(), out.len().max(1));
                if grown.is_null() {
                    return fail(
                        self.status,
                        MEMORY_ALLOCATION,
                        &format!("cannot allocate {what}"),
                    );
                }
                *self.buffer = grown.cast::<c_char>();
                *self.buffer_size = out.len().max(1);
            }
            std::ptr::copy_nonoverlapping(out.as_ptr(), (*self.buffer).cast::<u8>(), out.len());
            *self.file_size = out.len();
        }
        0
    }
}

/// # Safety
/// cfitsio's contract for `ffgky`.
#[no_mangle]
pub unsafe extern "C" fn ffgky(
    fptr: *mut FitsFile,
    datatype: c_int,
    keyname: *const c_char,
    value: *mut c_void,
    comm: *mut c_char,
    status: *mut c_int,
) -> c_int {
    let Some(real) = real!(c"ffgky", FfgkyFn) else {
        // Safety: forwarded contract.
        return unsafe {
            fail(
                status,
                DATA_DECOMPRESSION_ERR,
                "libcfitsio's ffgky not found",
            )
        };
    };
    // Safety: forwarded to cfitsio with the caller's arguments.
    let result = unsafe { real(fptr, datatype, keyname, value, comm, status) };
    if IN_PARSER.with(Cell::get) == 0
        || datatype != TSTRING
        || keyname.is_null()
        || value.is_null()
        || status.is_null()
    {
        return result;
    }
    // Safety: non-null status and NUL-terminated keyname by contract.
    if unsafe { *status } != 0
        || !unsafe { CStr::from_ptr(keyname) }
            .to_bytes()
            .eq_ignore_ascii_case(b"ZCMPTYPE")
    {
        return result;
    }
    // Safety: cfitsio wrote a NUL-terminated string into `value`.
    let name = unsafe { CStr::from_ptr(value.cast::<c_char>()) }
        .to_string_lossy()
        .trim()
        .to_string();
    if core::is_cfitsio_native(&name) || core::find_codec(&name).is_err() {
        return result;
    }
    REPLACED.with(|r| *r.borrow_mut() = Some(name));
    // Safety: the parser's value buffer is FLEN_VALUE (71) bytes, larger
    // than the stand-in and its NUL (we only get here inside the parser).
    unsafe {
        std::ptr::copy_nonoverlapping(
            STAND_IN.as_ptr(),
            value.cast::<c_char>(),
            STAND_IN.to_bytes_with_nul().len(),
        )
    };
    result
}

/// Reads the current HDU's header through cfitsio and parses it with fpackng.
///
/// # Safety
/// `fptr` is a valid open `fitsfile` positioned on the HDU.
unsafe fn read_hdu_state(fptr: *mut FitsFile, zcmptype: &str) -> Result<HduState, String> {
    let space = real!(c"ffghsp", HeaderSpaceFn).ok_or("libcfitsio's ffghsp not found")?;
    let record = real!(c"ffgrec", ReadRecordFn).ok_or("libcfitsio's ffgrec not found")?;
    let (mut existing, mut more, mut status) = (0, 0, 0);
    // Safety: valid fitsfile, writable ints.
    unsafe { space(fptr, &mut existing, &mut more, &mut status) };
    if status != 0 || existing < 0 || existing as usize > Limits::default().max_header_cards {
        return Err(format!("cannot read the header (status {status})"));
    }
    let mut cards = Vec::with_capacity(existing as usize);
    for n in 1..=existing {
        let mut buffer = [0 as c_char; 81];
        // Safety: valid fitsfile, an 81-byte (FLEN_CARD) buffer.
        unsafe { record(fptr, n, buffer.as_mut_ptr(), &mut status) };
        if status != 0 {
            return Err(format!("cannot read header card {n} (status {status})"));
        }
        // Safety: ffgrec wrote a NUL-terminated card into the buffer.
        let text = unsafe { CStr::from_ptr(buffer.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        cards.push(Card::from_text(&text));
    }
    let header = Header::from_cards(cards);
    let context = Context::default();
    let info = CompressedImageInfo::parse(&header, &context).map_err(|e| e.to_string())?;
    let codec = core::find_codec(zcmptype).map_err(|e| e.to_string())?;
    // Quantized floating-point tiles are coded as 32-bit integers; cfitsio
    // tells gunzipped pixel types apart by size only, which is unambiguous
    // for these three types and no others.
    let pixel_type = if info.quantize.is_some() {
        PixelType::I32
    } else {
        info.pixel_type
    };
    if !matches!(pixel_type, PixelType::U8 | PixelType::I16 | PixelType::I32) {
        return Err(format!(
            "{zcmptype} tiles of BITPIX={} cannot be handed to cfitsio; convert with funpack-ng",
            pixel_type.bitpix()
        ));
    }
    if !codec.supports(pixel_type) || codec.heap_element() != 'B' {
        return Err(format!(
            "{zcmptype} does not code BITPIX={} tiles",
            pixel_type.bitpix()
        ));
    }
    let grid = TileGrid::new(&info.axes, &info.tile_axes, &Limits::default(), &context)
        .map_err(|e| e.to_string())?;
    Ok(HduState {
        job_name: codec.id().to_string(),
        codec,
        pixel_type,
        grid,
        params: info.params,
    })
}

/// # Safety
/// cfitsio's contract for `imcomp_get_compressed_image_par`.
#[no_mangle]
pub unsafe extern "C" fn imcomp_get_compressed_image_par(
    fptr: *mut FitsFile,
    status: *mut c_int,
) -> c_int {
    let Some(real) = real!(c"imcomp_get_compressed_image_par", ParseFn) else {
        // Safety: forwarded contract.
        return unsafe {
            fail(
                status,
                DATA_DECOMPRESSION_ERR,
                "libcfitsio's parser not found",
            )
        };
    };
    REPLACED.with(|r| r.borrow_mut().take());
    IN_PARSER.with(|d| d.set(d.get() + 1));
    // Safety: forwarded to cfitsio with the caller's arguments.
    let result = unsafe { real(fptr, status) };
    IN_PARSER.with(|d| d.set(d.get().saturating_sub(1)));
    let replaced = REPLACED.with(|r| r.borrow_mut().take());
    // Safety: a valid fitsfile by contract.
    let Some(key) = (unsafe { key_of(fptr) }) else {
        return result;
    };
    let Some(name) = replaced else {
        if let Ok(mut map) = hdus().lock() {
            map.remove(&key);
        }
        write::forget_written(key);
        return result;
    };
    if status.is_null() || unsafe { *status } != 0 {
        if let Ok(mut map) = hdus().lock() {
            map.remove(&key);
        }
        return result;
    }
    // Safety: the parser succeeded on this fitsfile, so it is open and on
    // the compressed HDU.
    // A panic must not unwind into cfitsio's C frames (it would abort the
    // program): it becomes an error status like any other failure.
    let state = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
        read_hdu_state(fptr, &name)
    }))
    .unwrap_or_else(|_| Err("internal error while reading the header".to_string()));
    match state {
        Ok(state) => {
            // An HDU set up for writing keeps its entry only while this is
            // still its header (a file reopened at the same address is not).
            if write::written_hdu(key).is_some_and(|w| !w.matches(&state)) {
                write::forget_written(key);
            }
            if let Ok(mut map) = hdus().lock() {
                map.insert(key, Arc::new(state));
            }
            result
        }
        // An HDU this library is writing need not be readable yet (cfitsio
        // writes ZDITHER0 = 0 until its first tile picks the seed); its
        // tiles are coded from what was set up when its header was made.
        // Safety: the parser succeeded on this fitsfile.
        Err(_)
            if write::written_hdu(key)
                .is_some_and(|w| unsafe { still_names(fptr, &w.zcmptype) }) =>
        {
            if let Ok(mut map) = hdus().lock() {
                map.remove(&key);
            }
            result
        }
        Err(message) => {
            if let Ok(mut map) = hdus().lock() {
                map.remove(&key);
            }
            // Safety: non-null status checked above.
            unsafe {
                fail(
                    status,
                    DATA_DECOMPRESSION_ERR,
                    &format!("{name}: {message}"),
                )
            }
        }
    }
}

/// # Safety
/// cfitsio's contract for `imcomp_decompress_tile`.
#[no_mangle]
pub unsafe extern "C" fn imcomp_decompress_tile(
    fptr: *mut FitsFile,
    nrow: c_int,
    tilelen: c_int,
    datatype: c_int,
    nullcheck: c_int,
    nulval: *mut c_void,
    buffer: *mut c_void,
    bnullarray: *mut c_char,
    anynul: *mut c_int,
    status: *mut c_int,
) -> c_int {
    let Some(real) = real!(c"imcomp_decompress_tile", DecompressTileFn) else {
        // Safety: forwarded contract.
        return unsafe {
            fail(
                status,
                DATA_DECOMPRESSION_ERR,
                "libcfitsio's tile decoder not found",
            )
        };
    };
    // Safety: a valid fitsfile by contract.
    let state = unsafe { key_of(fptr) }.and_then(lookup);
    let Some(state) = state else {
        // Safety: forwarded to cfitsio with the caller's arguments.
        return unsafe {
            real(
                fptr, nrow, tilelen, datatype, nullcheck, nulval, buffer, bnullarray, anynul,
                status,
            )
        };
    };
    let row = usize::try_from(nrow).unwrap_or(0);
    let pixels = usize::try_from(tilelen).unwrap_or(0);
    let previous = CURRENT_TILE.with(|t| t.borrow_mut().replace((state, row, pixels)));
    // Safety: forwarded to cfitsio with the caller's arguments.
    let result = unsafe {
        real(
            fptr, nrow, tilelen, datatype, nullcheck, nulval, buffer, bnullarray, anynul, status,
        )
    };
    CURRENT_TILE.with(|t| *t.borrow_mut() = previous);
    result
}

/// Decodes tile `row` (1-based) of `state` into big-endian pixel bytes.
fn decode_tile(
    state: &HduState,
    row: usize,
    pixels: usize,
    bytes: &[u8],
) -> Result<Vec<u8>, String> {
    let index = row
        .checked_sub(1)
        .filter(|&i| i < state.grid.n_tiles())
        .ok_or_else(|| format!("row {row} is not a tile of this image"))?;
    let (_, shape) = state.grid.tile_bounds(index);
    let job = TileJob::new(
        &state.job_name,
        state.pixel_type.bitpix(),
        &shape,
        &state.params,
    )
    .map_err(|e| format!("tile {row}: {e}"))?;
    if job.pixels != pixels {
        return Err(format!(
            "tile {row}: cfitsio expects {pixels} pixels, the tile grid says {}",
            job.pixels
        ));
    }
    let decoded = job
        .decode(bytes)
        .map_err(|e| format!("{} tile {row}: {e}", state.codec.id()))?;
    Ok(decoded.to_be_bytes())
}

/// # Safety
/// cfitsio's contract for `uncompress2mem_from_mem`.
#[no_mangle]
pub unsafe extern "C" fn uncompress2mem_from_mem(
    input: *mut c_char,
    input_size: usize,
    buffer: *mut *mut c_char,
    buffer_size: *mut usize,
    mem_realloc: Option<ReallocFn>,
    file_size: *mut usize,
    status: *mut c_int,
) -> c_int {
    let Some(real) = real!(c"uncompress2mem_from_mem", GzipMemFn) else {
        // Safety: forwarded contract.
        return unsafe {
            fail(
                status,
                DATA_DECOMPRESSION_ERR,
                "libcfitsio's gunzip not found",
            )
        };
    };
    // Only the integer-pixel path of imcomp_decompress_tile passes a
    // realloc function; the fallback column of unquantizable float tiles
    // (real gzip, written as such by every writer) passes none.
    let current = if mem_realloc.is_some() {
        CURRENT_TILE.with(|t| t.borrow_mut().take())
    } else {
        None
    };
    let call = MemCall {
        input,
        input_size,
        buffer,
        buffer_size,
        mem_realloc,
        file_size,
        status,
    };
    let Some((state, row, pixels)) = current else {
        // Safety: forwarded to cfitsio with the caller's arguments.
        return unsafe { call.forward(real) };
    };
    // Safety: cfitsio's contract for this function.
    unsafe {
        call.answer(
            DATA_DECOMPRESSION_ERR,
            &format!("decoding tile {row}"),
            |bytes| decode_tile(&state, row, pixels, bytes),
        )
    }
}

/// Whether the current HDU's ZCMPTYPE is still the codec of `state`. An
/// entry is refreshed whenever an HDU is entered for reading, but a new
/// compressed HDU being written is never parsed: after a file is closed,
/// another one opened at the same address must not inherit its entries.
///
/// # Safety
/// `fptr` is a valid open `fitsfile`.
unsafe fn still_names(fptr: *mut FitsFile, zcmptype: &str) -> bool {
    let Some(read) = real!(c"ffgky", FfgkyFn) else {
        return true;
    };
    let mark = real!(c"ffpmrk", MarkFn);
    let clear_to_mark = real!(c"ffcmrk", MarkFn);
    if let Some(mark) = mark {
        // Safety: ffpmrk takes no arguments.
        unsafe { mark() };
    }
    let mut value = [0 as c_char; 72];
    let mut status = 0;
    // Safety: valid fitsfile; a FLEN_VALUE buffer; the real ffgky, so the
    // parser stand-in is not involved.
    unsafe {
        read(
            fptr,
            TSTRING,
            c"ZCMPTYPE".as_ptr(),
            value.as_mut_ptr().cast::<c_void>(),
            std::ptr::null_mut(),
            &mut status,
        )
    };
    if status != 0 {
        // Not ours to complain about: drop the messages since the mark.
        if let Some(clear) = clear_to_mark {
            // Safety: ffcmrk takes no arguments.
            unsafe { clear() };
        }
        return false;
    }
    // Safety: ffgky wrote a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(value.as_ptr()) }.to_string_lossy();
    name.trim().eq_ignore_ascii_case(zcmptype)
}

/// # Safety
/// cfitsio's contract for `imcomp_compress_tile`.
#[no_mangle]
pub unsafe extern "C" fn imcomp_compress_tile(
    fptr: *mut FitsFile,
    row: c_long,
    datatype: c_int,
    tiledata: *mut c_void,
    tilelen: c_long,
    nx: c_long,
    ny: c_long,
    nullcheck: c_int,
    nullval: *mut c_void,
    status: *mut c_int,
) -> c_int {
    // Safety: a valid fitsfile by contract.
    let key = unsafe { key_of(fptr) };
    let Some(real) = real!(c"imcomp_compress_tile", CompressTileFn) else {
        // Safety: forwarded contract.
        return unsafe {
            fail(
                status,
                DATA_COMPRESSION_ERR,
                "libcfitsio's tile encoder not found",
            )
        };
    };
    // Safety: as above; the HDU is the one being written.
    if let Some(hdu) = key
        .and_then(write::written_hdu)
        .filter(|w| unsafe { still_names(fptr, &w.zcmptype) })
    {
        // Safety: forwarded contract; `real` gets the caller's arguments.
        return unsafe {
            write::compress_tile(fptr, hdu, row, tilelen, status, || {
                real(
                    fptr, row, datatype, tiledata, tilelen, nx, ny, nullcheck, nullval, status,
                )
            })
        };
    }
    // Safety: as above; the HDU is the one being written.
    if let Some(state) = key
        .and_then(lookup)
        .filter(|s| unsafe { still_names(fptr, s.codec.id()) })
    {
        let message = format!(
            "cfitsio cannot write {id} tiles into an existing image; write a new one with fpack-ng, astropy with the fpack-ng Python package, or a cfitsio program under `fpack-ng shim --write {id}`",
            id = state.codec.id()
        );
        // Safety: forwarded contract.
        return unsafe { fail(status, DATA_COMPRESSION_ERR, &message) };
    }
    // Safety: forwarded to cfitsio with the caller's arguments.
    unsafe {
        real(
            fptr, row, datatype, tiledata, tilelen, nx, ny, nullcheck, nullval, status,
        )
    }
}
