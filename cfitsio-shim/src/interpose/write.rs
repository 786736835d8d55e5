//! Writing through cfitsio: with `FPACKNG_SHIM_WRITE=CODEC[,param=value]`
//! in the environment (set by `fpack-ng shim --write`), every tile a program
//! asks cfitsio to compress losslessly (RICE_1, GZIP_1, GZIP_2, HCOMPRESS_1
//! at scale 0) is coded with CODEC, and the HDU says so.
//!
//! All of cfitsio's own work is kept (tiling, null values, BZERO of unsigned
//! types, quantization and dithering of floats, the table and its heap);
//! only the coding of the integer tile and four header cards change:
//! - `imcomp_init_table` (writes the compressed table's header, for
//!   `fits_create_img` and for `fits_img_compress`, i.e. fpack and imcopy):
//!   after cfitsio's own, ZCMPTYPE becomes CODEC's, cfitsio's ZNAMEn/ZVALn
//!   are replaced by CODEC's (with its version parameter), and the HDU is
//!   remembered. A pixel type CODEC does not code keeps the algorithm the
//!   program asked for, with one line on stderr; 64-bit integers, which
//!   cfitsio does not compress either, are refused before any card is
//!   written.
//! - When cfitsio next parses that header, the reading trick (see the parent
//!   module) shows it GZIP_1, so cfitsio's tile writer takes its gzip path:
//!   it hands `compress2mem_from_mem` the tile as big-endian integers.
//! - `imcomp_compress_tile` marks the tile being written (thread-local);
//!   `imcomp_convert_tile_tfloat`/`tdouble` note whether a float tile could
//!   be quantized (if not, FITS stores it gzipped in its own column, so the
//!   real gzip runs); `compress2mem_from_mem` codes the tile with CODEC.
//! - A tile CODEC fails to code fails the write with cfitsio's status 413
//!   and a message naming CODEC, and the HDU is marked ZIMAGE = F, so that
//!   no reader takes the half-written table for an image.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use fpackng::codec::choice::{CodecChoice, CFITSIO_WRITE_ENV};
use fpackng::codec::{Codec, ParamValue, Params};
use fpackng::tile::{PixelType, Pixels, TileGrid};
use fpackng::{Context, Limits};

use super::{fail, key_of, FitsFile, GzipMemFn, HduKey, MemCall, ReallocFn};
use super::{DATA_COMPRESSION_ERR, TSTRING};
use crate::core::TileJob;

const TLONGLONG: c_int = 81;
const TDOUBLE: c_int = 82;
const LONGLONG_IMG: c_int = 64;
const ULONGLONG_IMG: c_int = 80;

type InitTableFn =
    unsafe extern "C" fn(*mut FitsFile, c_int, c_int, *mut c_long, c_int, *mut c_int) -> c_int;
type ConvertFloatTileFn = unsafe extern "C" fn(
    *mut FitsFile,
    c_long,
    *mut c_void,
    c_long,
    c_long,
    c_long,
    c_int,
    *mut c_void,
    c_int,
    c_int,
    f64,
    f64,
    *mut c_int,
    *mut c_int,
    *mut f64,
    *mut f64,
    *mut c_int,
) -> c_int;
type ReadKeyFn = unsafe extern "C" fn(
    *mut FitsFile,
    c_int,
    *const c_char,
    *mut c_void,
    *mut c_char,
    *mut c_int,
) -> c_int;
type ModifyStringFn = unsafe extern "C" fn(
    *mut FitsFile,
    *const c_char,
    *const c_char,
    *const c_char,
    *mut c_int,
) -> c_int;
type InsertIntFn =
    unsafe extern "C" fn(*mut FitsFile, *const c_char, i64, *const c_char, *mut c_int) -> c_int;
type InsertDoubleFn = unsafe extern "C" fn(
    *mut FitsFile,
    *const c_char,
    f64,
    c_int,
    *const c_char,
    *mut c_int,
) -> c_int;
type ModifyLogicalFn =
    unsafe extern "C" fn(*mut FitsFile, *const c_char, c_int, *const c_char, *mut c_int) -> c_int;
type DeleteKeyFn = unsafe extern "C" fn(*mut FitsFile, *const c_char, *mut c_int) -> c_int;
type ReadCardFn =
    unsafe extern "C" fn(*mut FitsFile, *const c_char, *mut c_char, *mut c_int) -> c_int;
type MarkFn = unsafe extern "C" fn();

/// The codec of `FPACKNG_SHIM_WRITE`, read once; `None` without it.
fn choice() -> Option<&'static Result<CodecChoice, String>> {
    static CHOICE: OnceLock<Option<Result<CodecChoice, String>>> = OnceLock::new();
    CHOICE
        .get_or_init(|| {
            let text = std::env::var(CFITSIO_WRITE_ENV).ok()?;
            Some(CodecChoice::parse_for_cfitsio(&text).map_err(|e| e.to_string()))
        })
        .as_ref()
}

/// What the interposer knows of an HDU whose header it rewrote.
pub(super) struct WrittenHdu {
    /// The ZCMPTYPE written (the codec's id, or its SUBTRACTIVE_DITHER_2 name).
    pub(super) zcmptype: String,
    codec: &'static dyn Codec,
    pixel_type: PixelType,
    grid: TileGrid,
    params: Params,
    /// A tile failed: the HDU is marked invalid and takes no more tiles.
    failed: AtomicBool,
}

impl WrittenHdu {
    /// Whether a header fpackng parsed describes exactly what this HDU
    /// codes (same codec, pixel type, tiles and parameters).
    pub(super) fn matches(&self, state: &super::HduState) -> bool {
        self.codec.id() == state.codec.id()
            && self.pixel_type == state.pixel_type
            && self.params == state.params
            && self.grid.n_tiles() == state.grid.n_tiles()
            && (0..self.grid.n_tiles())
                .all(|i| self.grid.tile_bounds(i) == state.grid.tile_bounds(i))
    }
}

fn written() -> &'static Mutex<HashMap<HduKey, Arc<WrittenHdu>>> {
    static WRITTEN: OnceLock<Mutex<HashMap<HduKey, Arc<WrittenHdu>>>> = OnceLock::new();
    WRITTEN.get_or_init(Default::default)
}

pub(super) fn written_hdu(key: HduKey) -> Option<Arc<WrittenHdu>> {
    written().lock().ok()?.get(&key).cloned()
}

pub(super) fn forget_written(key: HduKey) {
    if let Ok(mut map) = written().lock() {
        map.remove(&key);
    }
}

/// The tile `imcomp_compress_tile` is writing into a rewritten HDU.
struct TileInWork {
    hdu: Arc<WrittenHdu>,
    row: usize,
    pixels: usize,
    /// False when cfitsio could not quantize this float tile: it then goes
    /// gzipped into GZIP_COMPRESSED_DATA, as FITS says, not through CODEC.
    quantized: bool,
    error: Option<String>,
}

thread_local! {
    static TILE: RefCell<Option<TileInWork>> = const { RefCell::new(None) };
}

fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

/// Reads a string keyword with cfitsio's own ffgky; `None` if absent.
///
/// # Safety
/// `fptr` is a valid open `fitsfile`.
unsafe fn read_string(fptr: *mut FitsFile, key: &str) -> Option<String> {
    let read = real!(c"ffgky", ReadKeyFn)?;
    let mut value = [0 as c_char; 72];
    let mut status = 0;
    let name = c_string(key);
    // Safety: valid fitsfile, a FLEN_VALUE buffer, the real ffgky.
    unsafe {
        read(
            fptr,
            TSTRING,
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            std::ptr::null_mut(),
            &mut status,
        )
    };
    // Safety: ffgky wrote a NUL-terminated string on success.
    (status == 0).then(|| {
        unsafe { CStr::from_ptr(value.as_ptr()) }
            .to_string_lossy()
            .trim()
            .to_string()
    })
}

/// Reads an integer keyword; `None` if absent.
///
/// # Safety
/// `fptr` is a valid open `fitsfile`.
unsafe fn read_int(fptr: *mut FitsFile, key: &str) -> Option<i64> {
    let read = real!(c"ffgky", ReadKeyFn)?;
    let mut value: i64 = 0;
    let mut status = 0;
    let name = c_string(key);
    // Safety: valid fitsfile, an 8-byte LONGLONG, the real ffgky.
    unsafe {
        read(
            fptr,
            TLONGLONG,
            name.as_ptr(),
            (&mut value as *mut i64).cast(),
            std::ptr::null_mut(),
            &mut status,
        )
    };
    (status == 0).then_some(value)
}

/// Reads a floating-point keyword; `None` if absent.
///
/// # Safety
/// `fptr` is a valid open `fitsfile`.
unsafe fn read_double(fptr: *mut FitsFile, key: &str) -> Option<f64> {
    let read = real!(c"ffgky", ReadKeyFn)?;
    let mut value: f64 = 0.0;
    let mut status = 0;
    let name = c_string(key);
    // Safety: valid fitsfile, a double, the real ffgky.
    unsafe {
        read(
            fptr,
            TDOUBLE,
            name.as_ptr(),
            (&mut value as *mut f64).cast(),
            std::ptr::null_mut(),
            &mut status,
        )
    };
    (status == 0).then_some(value)
}

/// Runs `f` with cfitsio's message stack marked, and drops the messages
/// it leaves (missing keywords we only probed for are not errors).
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let mark = real!(c"ffpmrk", MarkFn);
    let clear = real!(c"ffcmrk", MarkFn);
    if let Some(mark) = mark {
        // Safety: ffpmrk takes no arguments.
        unsafe { mark() };
    }
    let result = f();
    if let Some(clear) = clear {
        // Safety: ffcmrk takes no arguments.
        unsafe { clear() };
    }
    result
}

/// Whether the HDU cfitsio just set up is a lossless request, and the
/// algorithm it names.
///
/// # Safety
/// `fptr` is a valid open `fitsfile` on the new compressed HDU.
unsafe fn lossless_request(fptr: *mut FitsFile) -> Option<String> {
    // Safety: as the caller's.
    let asked = unsafe { read_string(fptr, "ZCMPTYPE") }?;
    let lossless = match asked.to_ascii_uppercase().as_str() {
        "RICE_1" | "RICE_ONE" | "GZIP_1" | "GZIP_2" => true,
        "HCOMPRESS_1" => {
            // Safety: as the caller's.
            let scale = unsafe { read_double(fptr, "ZVAL1") }.unwrap_or(0.0);
            let named = unsafe { read_string(fptr, "ZNAME1") };
            !named.is_some_and(|n| n.eq_ignore_ascii_case("SCALE")) || scale == 0.0
        }
        _ => false,
    };
    lossless.then_some(asked)
}

/// The pixel type cfitsio hands its tile coder for an image of `bitpix`
/// (cfitsio's codes, unsigned ones included), or `None` for floats kept
/// lossless; and how to name those pixels to people.
fn coded_type(bitpix: c_int, zquantiz: Option<&str>) -> (Option<PixelType>, String) {
    let integers = |t| (Some(t), format!("BITPIX={bitpix} images"));
    match bitpix {
        8 | 10 => integers(PixelType::U8),
        16 | 20 => integers(PixelType::I16),
        32 | 40 => integers(PixelType::I32),
        64 | 80 => integers(PixelType::I64),
        _ => match zquantiz {
            Some(q) if !q.eq_ignore_ascii_case("NONE") => (
                Some(PixelType::I32),
                format!("quantized BITPIX={bitpix} images (32-bit integers)"),
            ),
            _ => (None, format!("unquantized BITPIX={bitpix} images")),
        },
    }
}

/// Rewrites the new HDU's ZCMPTYPE and ZNAMEn/ZVALn for `codec`.
///
/// # Safety
/// `fptr` is a valid open `fitsfile` on the new compressed HDU.
unsafe fn rewrite_header(
    fptr: *mut FitsFile,
    zcmptype: &str,
    params: &Params,
) -> Result<(), String> {
    let modify = real!(c"ffmkys", ModifyStringFn).ok_or("libcfitsio's ffmkys not found")?;
    let delete = real!(c"ffdkey", DeleteKeyFn).ok_or("libcfitsio's ffdkey not found")?;
    let card = real!(c"ffgcrd", ReadCardFn).ok_or("libcfitsio's ffgcrd not found")?;
    let insert_string = real!(c"ffikys", ModifyStringFn).ok_or("libcfitsio's ffikys not found")?;
    let insert_int = real!(c"ffikyj", InsertIntFn).ok_or("libcfitsio's ffikyj not found")?;
    let insert_double = real!(c"ffikyd", InsertDoubleFn).ok_or("libcfitsio's ffikyd not found")?;
    // cfitsio's own parameters (BLOCKSIZE/BYTEPIX, SCALE/SMOOTH) go.
    quietly(|| {
        for n in 1..=999 {
            let mut status = 0;
            let (name, value) = (
                c_string(&format!("ZNAME{n}")),
                c_string(&format!("ZVAL{n}")),
            );
            // Safety: valid fitsfile, NUL-terminated names.
            unsafe { delete(fptr, name.as_ptr(), &mut status) };
            let absent = status != 0;
            status = 0;
            // Safety: as above.
            unsafe { delete(fptr, value.as_ptr(), &mut status) };
            if absent && status != 0 {
                break;
            }
        }
    });
    let mut status = 0;
    let value = c_string(zcmptype);
    // Safety: valid fitsfile; "&" keeps the card's comment.
    unsafe {
        modify(
            fptr,
            c"ZCMPTYPE".as_ptr(),
            value.as_ptr(),
            c"&".as_ptr(),
            &mut status,
        )
    };
    // Reading the card puts cfitsio's insertion point right after it, where
    // cfitsio and fpack-ng write the parameters.
    let mut buffer = [0 as c_char; 81];
    // Safety: valid fitsfile, an 81-byte FLEN_CARD buffer.
    unsafe { card(fptr, c"ZCMPTYPE".as_ptr(), buffer.as_mut_ptr(), &mut status) };
    for (i, (name, value)) in params.0.iter().enumerate() {
        let (zname, zval) = (
            c_string(&format!("ZNAME{}", i + 1)),
            c_string(&format!("ZVAL{}", i + 1)),
        );
        let name = c_string(name);
        // Safety: valid fitsfile, NUL-terminated strings.
        unsafe {
            insert_string(
                fptr,
                zname.as_ptr(),
                name.as_ptr(),
                c"compression parameter name".as_ptr(),
                &mut status,
            );
            let comment = c"compression parameter value".as_ptr();
            match value {
                ParamValue::Int(v) => insert_int(fptr, zval.as_ptr(), *v, comment, &mut status),
                ParamValue::Float(v) => {
                    insert_double(fptr, zval.as_ptr(), *v, -15, comment, &mut status)
                }
                ParamValue::Text(v) => {
                    let v = c_string(v);
                    insert_string(fptr, zval.as_ptr(), v.as_ptr(), comment, &mut status)
                }
            };
        }
    }
    if status != 0 {
        return Err(format!("cannot rewrite the header (status {status})"));
    }
    Ok(())
}

/// The tile axes and image axes of the new HDU, from its header.
///
/// # Safety
/// `fptr` is a valid open `fitsfile` on the new compressed HDU.
unsafe fn grid_of(
    fptr: *mut FitsFile,
    naxis: c_int,
    naxes: *const c_long,
) -> Result<TileGrid, String> {
    let n = usize::try_from(naxis).map_err(|_| format!("NAXIS={naxis}"))?;
    if n == 0 || n > Limits::default().max_axes || naxes.is_null() {
        return Err(format!("{n} axes"));
    }
    // Safety: cfitsio passes `naxis` axis lengths.
    let axes: Vec<usize> = unsafe { std::slice::from_raw_parts(naxes, n) }
        .iter()
        .map(|&a| usize::try_from(a).unwrap_or(0))
        .collect();
    let mut tiles = Vec::with_capacity(n);
    for i in 1..=n {
        // Safety: as the caller's.
        let t = unsafe { read_int(fptr, &format!("ZTILE{i}")) }.ok_or(format!("no ZTILE{i}"))?;
        tiles.push(usize::try_from(t).map_err(|_| format!("ZTILE{i}={t}"))?);
    }
    TileGrid::new(&axes, &tiles, &Limits::default(), &Context::default()).map_err(|e| e.to_string())
}

/// # Safety
/// cfitsio's contract for `imcomp_init_table`.
#[no_mangle]
pub unsafe extern "C" fn imcomp_init_table(
    fptr: *mut FitsFile,
    bitpix: c_int,
    naxis: c_int,
    naxes: *mut c_long,
    writebitpix: c_int,
    status: *mut c_int,
) -> c_int {
    let Some(real) = real!(c"imcomp_init_table", InitTableFn) else {
        // Safety: forwarded contract.
        return unsafe {
            fail(
                status,
                DATA_COMPRESSION_ERR,
                "libcfitsio's imcomp_init_table not found",
            )
        };
    };
    let choice = match choice() {
        None => None,
        Some(Ok(choice)) => Some(choice),
        Some(Err(message)) => {
            // Safety: forwarded contract.
            return unsafe {
                fail(
                    status,
                    DATA_COMPRESSION_ERR,
                    &format!("{CFITSIO_WRITE_ENV}: {message}"),
                )
            };
        }
    };
    if let Some(choice) = choice {
        if (bitpix == LONGLONG_IMG || bitpix == ULONGLONG_IMG)
            && !choice.codec.supports(PixelType::I64)
        {
            // Before cfitsio writes a single card: nothing half-made is left.
            let message = format!(
                "{} cannot code 64-bit integer images (BITPIX=64), and cfitsio compresses none either",
                choice.codec.id()
            );
            // Safety: forwarded contract.
            return unsafe { fail(status, DATA_COMPRESSION_ERR, &message) };
        }
    }
    // Safety: forwarded to cfitsio with the caller's arguments.
    let result = unsafe { real(fptr, bitpix, naxis, naxes, writebitpix, status) };
    let Some(choice) = choice else {
        return result;
    };
    // Safety: a valid fitsfile by contract.
    let Some(key) = (unsafe { key_of(fptr) }) else {
        return result;
    };
    forget_written(key);
    if status.is_null() || unsafe { *status } != 0 {
        return result;
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
        // Safety: cfitsio just wrote this HDU's header without error.
        take_over(fptr, bitpix, naxis, naxes, choice)
    }))
    .unwrap_or_else(|_| Err("internal error while rewriting the header".to_string()));
    match outcome {
        Ok(Some(hdu)) => {
            if let Ok(mut map) = written().lock() {
                map.insert(key, Arc::new(hdu));
            }
            result
        }
        Ok(None) => result,
        // Safety: non-null status checked above.
        Err(message) => unsafe {
            fail(
                status,
                DATA_COMPRESSION_ERR,
                &format!("{}: {message}", choice.codec.id()),
            )
        },
    }
}

/// Decides whether the new HDU is coded with the chosen codec, and if so
/// rewrites its header. `Ok(None)`: left to cfitsio.
///
/// # Safety
/// `fptr` is a valid open `fitsfile` on the HDU cfitsio's
/// `imcomp_init_table` just wrote.
unsafe fn take_over(
    fptr: *mut FitsFile,
    bitpix: c_int,
    naxis: c_int,
    naxes: *const c_long,
    choice: &CodecChoice,
) -> Result<Option<WrittenHdu>, String> {
    let codec = choice.codec;
    let (asked, zquantiz) = quietly(|| unsafe {
        // Safety: as the caller's.
        (lossless_request(fptr), read_string(fptr, "ZQUANTIZ"))
    });
    // Lossy requests (HCOMPRESS_1 with a scale) and the algorithms cfitsio
    // has no integer coder for stay as the program asked.
    let Some(asked) = asked else {
        return Ok(None);
    };
    let coded = match coded_type(bitpix, zquantiz.as_deref()) {
        (Some(t), _) if codec.supports(t) => t,
        (_, what) => {
            eprintln!(
                "fpack-ng shim: {} does not code {what}; writing {asked} as the program asked",
                codec.id()
            );
            return Ok(None);
        }
    };
    let dither2 = zquantiz
        .as_deref()
        .is_some_and(|q| q.eq_ignore_ascii_case("SUBTRACTIVE_DITHER_2"));
    let zcmptype = if dither2 {
        match codec.dither2_zcmptype() {
            Some(name) => name,
            None => {
                eprintln!(
                    "fpack-ng shim: {} cannot keep SUBTRACTIVE_DITHER_2's zeros; writing {asked} as the program asked",
                    codec.id()
                );
                return Ok(None);
            }
        }
    } else {
        codec.id()
    };
    // Safety: as the caller's.
    let grid = unsafe { grid_of(fptr, naxis, naxes) }?;
    let params = codec.encode_params(coded, &choice.options);
    // Safety: as the caller's.
    unsafe { rewrite_header(fptr, zcmptype, &params) }?;
    Ok(Some(WrittenHdu {
        zcmptype: zcmptype.to_string(),
        codec,
        pixel_type: coded,
        grid,
        params,
        failed: AtomicBool::new(false),
    }))
}

/// Called by the `imcomp_compress_tile` wrapper for a rewritten HDU: runs
/// cfitsio's tile writer with the tile marked, and marks the HDU invalid
/// if CODEC failed on it.
///
/// # Safety
/// cfitsio's contract for `imcomp_compress_tile`; `run` calls the real one.
pub(super) unsafe fn compress_tile(
    fptr: *mut FitsFile,
    hdu: Arc<WrittenHdu>,
    row: c_long,
    tilelen: c_long,
    status: *mut c_int,
    run: impl FnOnce() -> c_int,
) -> c_int {
    if hdu.failed.load(Ordering::SeqCst) {
        let message = format!(
            "{}: an earlier tile of this HDU could not be coded; the HDU is not written",
            hdu.codec.id()
        );
        // Safety: forwarded contract.
        return unsafe { fail(status, DATA_COMPRESSION_ERR, &message) };
    }
    let tile = TileInWork {
        hdu: hdu.clone(),
        row: usize::try_from(row).unwrap_or(0),
        pixels: usize::try_from(tilelen).unwrap_or(0),
        quantized: true,
        error: None,
    };
    let previous = TILE.with(|t| t.borrow_mut().replace(tile));
    let result = run();
    let done = TILE.with(|t| std::mem::replace(&mut *t.borrow_mut(), previous));
    if let Some(message) = done.and_then(|t| t.error) {
        hdu.failed.store(true, Ordering::SeqCst);
        // Safety: the HDU cfitsio was writing, still current.
        unsafe { invalidate(fptr, &message) };
    }
    result
}

/// Marks the current HDU as no image (ZIMAGE = F): its table holds tiles
/// of an image that was never completely written.
///
/// # Safety
/// `fptr` is a valid open `fitsfile`.
unsafe fn invalidate(fptr: *mut FitsFile, message: &str) {
    let Some(modify) = real!(c"ffmkyl", ModifyLogicalFn) else {
        return;
    };
    let mut status = 0;
    let comment = c_string(
        &format!("not an image: {message}")
            .chars()
            .take(47)
            .collect::<String>(),
    );
    // Safety: valid fitsfile, NUL-terminated strings.
    unsafe { modify(fptr, c"ZIMAGE".as_ptr(), 0, comment.as_ptr(), &mut status) };
}

/// Shared body of the float/double tile converters: notes whether the
/// tile was quantized.
fn note_quantized(flag: *mut c_int) {
    if flag.is_null() {
        return;
    }
    // Safety: cfitsio's writable flag, just set by the real converter.
    let quantized = unsafe { *flag } != 0;
    TILE.with(|t| {
        if let Some(tile) = t.borrow_mut().as_mut() {
            tile.quantized = quantized;
        }
    });
}

macro_rules! float_converter {
    ($name:ident, $symbol:literal) => {
        /// # Safety
        /// cfitsio's contract for this tile converter.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            fptr: *mut FitsFile,
            row: c_long,
            tiledata: *mut c_void,
            tilelen: c_long,
            tilenx: c_long,
            tileny: c_long,
            nullcheck: c_int,
            nullflagval: *mut c_void,
            nullval: c_int,
            zbitpix: c_int,
            scale: f64,
            zero: f64,
            intlength: *mut c_int,
            flag: *mut c_int,
            bscale: *mut f64,
            bzero: *mut f64,
            status: *mut c_int,
        ) -> c_int {
            let Some(real) = real!($symbol, ConvertFloatTileFn) else {
                // Safety: forwarded contract.
                return unsafe {
                    fail(
                        status,
                        DATA_COMPRESSION_ERR,
                        "libcfitsio's tile converter not found",
                    )
                };
            };
            // Safety: forwarded to cfitsio with the caller's arguments.
            let result = unsafe {
                real(
                    fptr,
                    row,
                    tiledata,
                    tilelen,
                    tilenx,
                    tileny,
                    nullcheck,
                    nullflagval,
                    nullval,
                    zbitpix,
                    scale,
                    zero,
                    intlength,
                    flag,
                    bscale,
                    bzero,
                    status,
                )
            };
            note_quantized(flag);
            result
        }
    };
}

float_converter!(imcomp_convert_tile_tfloat, c"imcomp_convert_tile_tfloat");
float_converter!(imcomp_convert_tile_tdouble, c"imcomp_convert_tile_tdouble");

/// Big-endian integers of 1, 2 or 4 bytes (as cfitsio's gzip path passes
/// them) as pixels of `pixel_type`, each value checked to fit.
fn tile_pixels(bytes: &[u8], pixels: usize, pixel_type: PixelType) -> Result<Pixels, String> {
    let width = match (pixels, bytes.len()) {
        (0, _) => return Err("an empty tile".into()),
        (n, len) if len % n == 0 && matches!(len / n, 1 | 2 | 4) => len / n,
        (n, len) => return Err(format!("{len} bytes for {n} pixels")),
    };
    let values = bytes.chunks_exact(width).map(|c| match width {
        1 => i64::from(c[0]),
        2 => i64::from(i16::from_be_bytes([c[0], c[1]])),
        _ => i64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]])),
    });
    let out_of_range = |v: i64| format!("value {v} does not fit BITPIX={}", pixel_type.bitpix());
    Ok(match pixel_type {
        PixelType::U8 => Pixels::U8(
            values
                .map(|v| u8::try_from(v).map_err(|_| out_of_range(v)))
                .collect::<Result<_, _>>()?,
        ),
        PixelType::I16 => Pixels::I16(
            values
                .map(|v| i16::try_from(v).map_err(|_| out_of_range(v)))
                .collect::<Result<_, _>>()?,
        ),
        PixelType::I32 => Pixels::I32(
            values
                .map(|v| i32::try_from(v).map_err(|_| out_of_range(v)))
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(format!("BITPIX={} tiles", other.bitpix())),
    })
}

/// Codes tile `row` (1-based) of `hdu` from cfitsio's big-endian integers.
fn encode_tile(
    hdu: &WrittenHdu,
    row: usize,
    pixels: usize,
    bytes: &[u8],
) -> Result<Vec<u8>, String> {
    let index = row
        .checked_sub(1)
        .filter(|&i| i < hdu.grid.n_tiles())
        .ok_or_else(|| format!("row {row} is not a tile of this image"))?;
    let (_, shape) = hdu.grid.tile_bounds(index);
    let job = TileJob::new(hdu.codec.id(), hdu.pixel_type.bitpix(), &shape, &hdu.params)
        .map_err(|e| format!("tile {row}: {e}"))?;
    if job.pixels != pixels {
        return Err(format!(
            "tile {row}: cfitsio gives {pixels} pixels, the tile grid says {}",
            job.pixels
        ));
    }
    let values =
        tile_pixels(bytes, pixels, hdu.pixel_type).map_err(|e| format!("tile {row}: {e}"))?;
    job.encode(&values).map_err(|e| format!("tile {row}: {e}"))
}

/// # Safety
/// cfitsio's contract for `compress2mem_from_mem`.
#[no_mangle]
pub unsafe extern "C" fn compress2mem_from_mem(
    input: *mut c_char,
    input_size: usize,
    buffer: *mut *mut c_char,
    buffer_size: *mut usize,
    mem_realloc: Option<ReallocFn>,
    file_size: *mut usize,
    status: *mut c_int,
) -> c_int {
    let Some(real) = real!(c"compress2mem_from_mem", GzipMemFn) else {
        // Safety: forwarded contract.
        return unsafe { fail(status, DATA_COMPRESSION_ERR, "libcfitsio's gzip not found") };
    };
    let current = TILE.with(|t| {
        t.borrow()
            .as_ref()
            .filter(|tile| tile.quantized && mem_realloc.is_some())
            .map(|tile| (tile.hdu.clone(), tile.row, tile.pixels))
    });
    let call = MemCall {
        input,
        input_size,
        buffer,
        buffer_size,
        mem_realloc,
        file_size,
        status,
    };
    let Some((hdu, row, pixels)) = current else {
        // Safety: forwarded to cfitsio with the caller's arguments.
        return unsafe { call.forward(real) };
    };
    // Safety: cfitsio's contract for this function.
    unsafe {
        call.answer(
            DATA_COMPRESSION_ERR,
            &format!("coding tile {row}"),
            |bytes| {
                encode_tile(&hdu, row, pixels, bytes).map_err(|message| {
                    // Remembered for the HDU's close (see invalidate).
                    let message = format!("{}: {message}", hdu.codec.id());
                    TILE.with(|t| {
                        if let Some(tile) = t.borrow_mut().as_mut() {
                            tile.error = Some(message.clone());
                        }
                    });
                    message
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_tiles_of_every_width_become_checked_pixels() {
        assert_eq!(
            tile_pixels(&[0, 7, 1, 0], 2, PixelType::I16).unwrap(),
            Pixels::I16(vec![7, 256])
        );
        assert_eq!(
            tile_pixels(&[0, 0, 0, 200, 0, 0, 0, 3], 2, PixelType::U8).unwrap(),
            Pixels::U8(vec![200, 3])
        );
        assert!(tile_pixels(&[0, 0, 1, 0], 1, PixelType::U8).is_err());
        assert!(tile_pixels(&[0, 0, 0], 1, PixelType::I16).is_err());
        assert_eq!(coded_type(-32, Some("NONE")).0, None);
        assert_eq!(
            coded_type(-32, Some("SUBTRACTIVE_DITHER_1")).0,
            Some(PixelType::I32)
        );
        assert_eq!(coded_type(20, None).0, Some(PixelType::I16));
    }
}
