//! The C API of include/fpackng_shim.h, version 2 (version 1's functions
//! unchanged; `fpng_codec_info` grew at its end, and both sizes are served).
//!
//! Each function turns its C arguments into checked Rust values (null
//! pointers, sizes, struct versions), calls the safe core, and returns an
//! error code; the message goes to a thread-local slot read by
//! `fpng_last_error`. No panic crosses the boundary: every body runs under
//! `catch_unwind`. What cannot be checked is the C contract itself (a
//! pointer that is non-null but points to fewer bytes than the size given
//! with it): that is the caller's promise, as in every C API.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};

use fpackng::codec::{self, ParamValue, Params};
use fpackng::tile::PixelType;

use crate::core::{self, ShimError, TileJob};

/// FPNG_API_VERSION.
pub const API_VERSION: u32 = 2;

/// Mirrors `fpng_codec_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CodecInfo {
    pub struct_size: u32,
    pub api_version: u32,
    pub zcmptype: [c_char; 24],
    pub bitpix_mask: u32,
    pub can_encode: u8,
    pub cfitsio_native: u8,
    pub heap_element: c_char,
    pub reserved: u8,
    // Version 2 from here on.
    pub is_standard: u8,
    pub reserved2: [u8; 3],
    pub strip_rows: u32,
    pub strip_pixels: u32,
}

/// `sizeof(fpng_codec_info)` of API version 1 (the fields before
/// `is_standard`), still accepted.
const CODEC_INFO_V1_SIZE: usize = 40;

/// Mirrors `fpng_array_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ArrayInfo {
    pub struct_size: u32,
    pub ndim: u32,
    pub dtype: [c_char; 4],
    pub zcmptype: [c_char; 24],
    pub shape: [u64; 8],
    pub tile: [u64; 8],
    pub ntiles: u64,
    pub nbytes: u64,
}

pub const FILE_OVERWRITE: u32 = 1;
pub const FILE_DELETE_INPUT: u32 = 2;
pub const FILE_NO_CHECKSUMS: u32 = 4;

/// Mirrors `fpng_param`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: [c_char; 72],
    pub kind: i32,
    pub int_value: i64,
    pub float_value: f64,
    pub text_value: [c_char; 72],
}

pub const PARAM_INT: i32 = 1;
pub const PARAM_FLOAT: i32 = 2;
pub const PARAM_TEXT: i32 = 3;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(message: String) {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = message);
}

/// Runs one API call: clears the thread's message, catches panics, records
/// the error message and returns the C code.
fn api_call(body: impl FnOnce() -> Result<(), ShimError>) -> i32 {
    set_last_error(String::new());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .unwrap_or_else(|_| Err(ShimError::Internal("panic inside fpackng_shim".into())));
    match result {
        Ok(()) => 0,
        Err(e) => {
            set_last_error(e.to_string());
            e.code()
        }
    }
}

/// A C string argument as UTF-8.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string.
unsafe fn c_str<'a>(ptr: *const c_char, what: &'static str) -> Result<&'a str, ShimError> {
    if ptr.is_null() {
        return Err(ShimError::NullPointer(what));
    }
    // Safety: non-null and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str()
        .map_err(|_| ShimError::BadArgument(format!("{what} is not valid UTF-8")))
}

/// A (pointer, length) argument as a slice; a null pointer is allowed only
/// with length 0.
///
/// # Safety
/// `ptr` is null or points to `len` readable elements.
unsafe fn slice<'a, T>(
    ptr: *const T,
    len: usize,
    what: &'static str,
) -> Result<&'a [T], ShimError> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(ShimError::NullPointer(what))
        };
    }
    if len
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(ShimError::BadArgument(format!(
            "{what}: length {len} is impossible"
        )));
    }
    // Safety: non-null, `len` elements readable by the caller's contract,
    // total size checked above; alignment of T is the caller's (C arrays of
    // T are aligned).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// # Safety
/// As [`slice`], writable.
unsafe fn slice_mut<'a>(
    ptr: *mut u8,
    len: usize,
    what: &'static str,
) -> Result<&'a mut [u8], ShimError> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err(ShimError::NullPointer(what))
        };
    }
    if len > isize::MAX as usize {
        return Err(ShimError::BadArgument(format!(
            "{what}: length {len} is impossible"
        )));
    }
    // Safety: non-null, `len` writable bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

fn fixed_to_str(chars: &[c_char], what: &str) -> Result<String, ShimError> {
    let bytes: Vec<u8> = chars.iter().map(|&c| c as u8).collect();
    let end = bytes.iter().position(|&b| b == 0).ok_or_else(|| {
        ShimError::BadArgument(format!("{what} is not NUL-terminated within its field"))
    })?;
    String::from_utf8(bytes[..end].to_vec())
        .map_err(|_| ShimError::BadArgument(format!("{what} is not valid UTF-8")))
}

fn str_to_fixed(s: &str, out: &mut [c_char], what: &str) -> Result<(), ShimError> {
    if s.len() >= out.len() {
        return Err(ShimError::Internal(format!("{what} '{s}' does not fit")));
    }
    out.fill(0);
    for (dst, &b) in out.iter_mut().zip(s.as_bytes()) {
        *dst = b as c_char;
    }
    Ok(())
}

fn params_from_c(params: &[Param]) -> Result<Params, ShimError> {
    let mut out = Params::new();
    for (i, p) in params.iter().enumerate() {
        let name = fixed_to_str(&p.name, &format!("params[{i}].name"))?;
        if name.trim().is_empty() {
            return Err(ShimError::BadArgument(format!("params[{i}].name is empty")));
        }
        let value = match p.kind {
            PARAM_INT => ParamValue::Int(p.int_value),
            PARAM_FLOAT => ParamValue::Float(p.float_value),
            PARAM_TEXT => ParamValue::Text(fixed_to_str(
                &p.text_value,
                &format!("params[{i}].text_value"),
            )?),
            k => {
                return Err(ShimError::BadArgument(format!(
                    "params[{i}].kind = {k} is not FPNG_PARAM_INT, _FLOAT or _TEXT"
                )))
            }
        };
        out.set(name.trim(), value);
    }
    Ok(out)
}

fn param_to_c(name: &str, value: &ParamValue) -> Result<Param, ShimError> {
    let mut p = Param {
        name: [0; 72],
        kind: 0,
        int_value: 0,
        float_value: 0.0,
        text_value: [0; 72],
    };
    str_to_fixed(name, &mut p.name, "parameter name")?;
    match value {
        ParamValue::Int(i) => {
            p.kind = PARAM_INT;
            p.int_value = *i;
        }
        ParamValue::Float(f) => {
            p.kind = PARAM_FLOAT;
            p.float_value = *f;
        }
        ParamValue::Text(s) => {
            p.kind = PARAM_TEXT;
            str_to_fixed(s, &mut p.text_value, "parameter value")?;
        }
    }
    Ok(p)
}

fn bitpix_mask(codec: &dyn codec::Codec) -> u32 {
    PixelType::ALL
        .iter()
        .enumerate()
        .filter(|(_, &t)| codec.supports(t))
        .map(|(bit, _)| 1u32 << bit)
        .sum()
}

/// # Safety
/// `info` is null or points to a writable `fpng_codec_info`.
unsafe fn fill_info(codec: &dyn codec::Codec, info: *mut CodecInfo) -> Result<(), ShimError> {
    if info.is_null() {
        return Err(ShimError::NullPointer("info"));
    }
    // Safety: non-null and pointing to a CodecInfo by contract; read through
    // a raw pointer to check the size before the whole struct is used.
    let given = unsafe { std::ptr::addr_of!((*info).struct_size).read_unaligned() };
    if given as usize != std::mem::size_of::<CodecInfo>() && given as usize != CODEC_INFO_V1_SIZE {
        return Err(ShimError::StructVersion(format!(
            "fpng_codec_info.struct_size = {given}, this library's is {} (or {CODEC_INFO_V1_SIZE}, version 1)",
            std::mem::size_of::<CodecInfo>()
        )));
    }
    let (strip_rows, strip_pixels) = codec.default_strip().unwrap_or((0, 0));
    let mut out = CodecInfo {
        struct_size: given,
        api_version: API_VERSION,
        zcmptype: [0; 24],
        bitpix_mask: bitpix_mask(codec),
        can_encode: u8::from(codec.can_encode()),
        cfitsio_native: u8::from(core::is_cfitsio_native(codec.id())),
        heap_element: codec.heap_element() as c_char,
        reserved: 0,
        is_standard: u8::from(codec.is_standard()),
        reserved2: [0; 3],
        strip_rows: u32::try_from(strip_rows).unwrap_or(u32::MAX),
        strip_pixels: u32::try_from(strip_pixels).unwrap_or(u32::MAX),
    };
    str_to_fixed(codec.id(), &mut out.zcmptype, "ZCMPTYPE")?;
    // Safety: `info` points to `given` writable bytes (one of the two struct
    // sizes checked above, both at most size_of::<CodecInfo>()); a version-1
    // caller gets the leading fields only.
    unsafe {
        std::ptr::copy_nonoverlapping(
            std::ptr::addr_of!(out).cast::<u8>(),
            info.cast::<u8>(),
            given as usize,
        )
    };
    Ok(())
}

#[no_mangle]
pub extern "C" fn fpng_api_version() -> u32 {
    API_VERSION
}

#[no_mangle]
pub extern "C" fn fpng_codec_count() -> i32 {
    codec::REGISTRY.len() as i32
}

/// # Safety
/// `info` is null or points to a writable `fpng_codec_info`.
#[no_mangle]
pub unsafe extern "C" fn fpng_codec_get(index: i32, info: *mut CodecInfo) -> i32 {
    api_call(|| {
        let codec = usize::try_from(index)
            .ok()
            .and_then(|i| codec::REGISTRY.get(i))
            .ok_or_else(|| {
                ShimError::BadArgument(format!(
                    "codec index {index} outside 0..{}",
                    codec::REGISTRY.len()
                ))
            })?;
        // Safety: forwarded caller contract.
        unsafe { fill_info(*codec, info) }
    })
}

/// # Safety
/// `zcmptype` is null or NUL-terminated; `info` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn fpng_codec_find(zcmptype: *const c_char, info: *mut CodecInfo) -> i32 {
    api_call(|| {
        // Safety: forwarded caller contract.
        let name = unsafe { c_str(zcmptype, "zcmptype") }?;
        let codec = core::find_codec(name)?;
        // Safety: forwarded caller contract.
        unsafe { fill_info(codec, info) }
    })
}

/// # Safety
/// `zcmptype` is null or NUL-terminated; `params` is null or has `capacity`
/// writable elements; `count` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn fpng_default_params(
    zcmptype: *const c_char,
    tile_bitpix: i32,
    params: *mut Param,
    capacity: usize,
    count: *mut usize,
) -> i32 {
    api_call(|| {
        // Safety: forwarded caller contract.
        let name = unsafe { c_str(zcmptype, "zcmptype") }?;
        if count.is_null() {
            return Err(ShimError::NullPointer("count"));
        }
        if params.is_null() && capacity > 0 {
            return Err(ShimError::NullPointer("params"));
        }
        let defaults = core::default_params(name, i64::from(tile_bitpix))?;
        let converted: Vec<Param> = defaults
            .0
            .iter()
            .map(|(n, v)| param_to_c(n, v))
            .collect::<Result<_, _>>()?;
        // Safety: `count` is non-null and writable by contract.
        unsafe { count.write_unaligned(converted.len()) };
        if converted.len() > capacity {
            return Err(ShimError::BufferSize {
                needed: converted.len() * std::mem::size_of::<Param>(),
                given: capacity * std::mem::size_of::<Param>(),
            });
        }
        for (i, p) in converted.into_iter().enumerate() {
            // Safety: i < capacity, `params` has `capacity` writable elements.
            unsafe { params.add(i).write_unaligned(p) };
        }
        Ok(())
    })
}

/// Reads the (shape, params) arguments shared by encode and decode.
///
/// # Safety
/// As the C contract of `fpng_encode_tile`.
unsafe fn tile_args(
    shape: *const usize,
    ndim: usize,
    params: *const Param,
    nparams: usize,
) -> Result<(Vec<usize>, Params), ShimError> {
    if ndim > fpackng::Limits::default().max_axes {
        return Err(ShimError::Limit(format!("{ndim} axes")));
    }
    if nparams > 999 {
        return Err(ShimError::BadArgument(format!(
            "{nparams} parameters (FITS allows ZNAME1..ZNAME999)"
        )));
    }
    // Safety: forwarded caller contract.
    let shape = unsafe { slice(shape, ndim, "shape") }?.to_vec();
    // Safety: forwarded caller contract.
    let params = params_from_c(unsafe { slice(params, nparams, "params") }?)?;
    Ok((shape, params))
}

/// # Safety
/// Pointers are null or valid for the sizes given with them (header).
#[no_mangle]
pub unsafe extern "C" fn fpng_encode_tile(
    zcmptype: *const c_char,
    tile_bitpix: i32,
    shape: *const usize,
    ndim: usize,
    params: *const Param,
    nparams: usize,
    pixels: *const c_void,
    pixels_size: usize,
    out: *mut u8,
    out_capacity: usize,
    out_size: *mut usize,
) -> i32 {
    api_call(|| {
        // Safety (all three): forwarded caller contract.
        let name = unsafe { c_str(zcmptype, "zcmptype") }?;
        let (shape, params) = unsafe { tile_args(shape, ndim, params, nparams) }?;
        let input = unsafe { slice(pixels.cast::<u8>(), pixels_size, "pixels") }?;
        if out_size.is_null() {
            return Err(ShimError::NullPointer("out_size"));
        }
        let job = TileJob::new(name, i64::from(tile_bitpix), &shape, &params)?;
        let coded = job.encode_native(input)?;
        // Safety: non-null, writable by contract.
        unsafe { out_size.write_unaligned(coded.len()) };
        if coded.len() > out_capacity {
            return Err(ShimError::BufferSize {
                needed: coded.len(),
                given: out_capacity,
            });
        }
        // Safety: forwarded caller contract (`out` has out_capacity bytes).
        let dst = unsafe { slice_mut(out, out_capacity, "out") }?;
        dst[..coded.len()].copy_from_slice(&coded);
        Ok(())
    })
}

/// # Safety
/// Pointers are null or valid for the sizes given with them (header).
#[no_mangle]
pub unsafe extern "C" fn fpng_decode_tile(
    zcmptype: *const c_char,
    tile_bitpix: i32,
    shape: *const usize,
    ndim: usize,
    params: *const Param,
    nparams: usize,
    data: *const u8,
    data_size: usize,
    pixels: *mut c_void,
    pixels_size: usize,
) -> i32 {
    api_call(|| {
        // Safety (all three): forwarded caller contract.
        let name = unsafe { c_str(zcmptype, "zcmptype") }?;
        let (shape, params) = unsafe { tile_args(shape, ndim, params, nparams) }?;
        let input = unsafe { slice(data, data_size, "data") }?;
        let job = TileJob::new(name, i64::from(tile_bitpix), &shape, &params)?;
        if pixels_size != job.pixel_bytes() {
            return Err(ShimError::BufferSize {
                needed: job.pixel_bytes(),
                given: pixels_size,
            });
        }
        // Safety: forwarded caller contract (`pixels` has pixels_size bytes).
        let dst = unsafe { slice_mut(pixels.cast::<u8>(), pixels_size, "pixels") }?;
        let decoded = job.decode(input)?;
        core::pixels_to_native(&decoded, dst);
        Ok(())
    })
}

#[no_mangle]
pub extern "C" fn fpng_strerror(code: i32) -> *const c_char {
    let s: &'static CStr = match code {
        0 => c"success",
        -1 => c"null pointer argument",
        -2 => c"bad argument",
        -3 => c"unknown compression type",
        -4 => c"unsupported pixel type or tile shape for this codec",
        -5 => c"buffer too small or of the wrong size",
        -6 => c"corrupt compressed tile",
        -7 => c"missing or bad codec parameter (ZNAMEn/ZVALn)",
        -8 => c"limit exceeded",
        -9 => c"internal error",
        -10 => c"struct_size does not match this library version",
        -11 => c"file input/output error",
        -12 => c"verification of the written file failed",
        _ => c"unknown error code",
    };
    s.as_ptr()
}

/// # Safety
/// `buf` is null or has `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn fpng_last_error(buf: *mut c_char, capacity: usize) -> usize {
    let message = LAST_ERROR.with(|slot| slot.borrow().clone());
    if !buf.is_null() && capacity > 0 {
        let n = message.len().min(capacity - 1);
        // Safety: `buf` has `capacity` writable bytes by contract; n + 1 <= capacity.
        unsafe {
            std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), n);
            buf.add(n).write(0);
        }
    }
    message.len()
}

/// # Safety
/// As the C contract of `fpng_encode_array`: every pointer is null or valid
/// for the size given with it; `out` and `out_size` are writable.
#[no_mangle]
pub unsafe extern "C" fn fpng_encode_array(
    zcmptype: *const c_char,
    dtype: *const c_char,
    shape: *const usize,
    ndim: usize,
    tile: *const usize,
    params: *const Param,
    nparams: usize,
    pixels: *const c_void,
    pixels_size: usize,
    out: *mut *mut u8,
    out_size: *mut usize,
) -> i32 {
    api_call(|| {
        if out.is_null() || out_size.is_null() {
            return Err(ShimError::NullPointer("out / out_size"));
        }
        // Safety (all): forwarded caller contract.
        let name = unsafe { c_str(zcmptype, "zcmptype") }?;
        let dtype = unsafe { c_str(dtype, "dtype") }?;
        let (shape, params) = unsafe { tile_args(shape, ndim, params, nparams) }?;
        let tile = if tile.is_null() {
            None
        } else {
            Some(unsafe { slice(tile, ndim, "tile") }?.to_vec())
        };
        let input = unsafe { slice(pixels.cast::<u8>(), pixels_size, "pixels") }?;
        let coded =
            crate::array::encode_array(name, dtype, &shape, tile.as_deref(), &params, input)?;
        let len = coded.len();
        let coded = Box::into_raw(coded.into_boxed_slice());
        // Safety: both non-null and writable by contract; the buffer is
        // handed over and comes back through fpng_free.
        unsafe {
            out_size.write_unaligned(len);
            out.write_unaligned(coded.cast::<u8>());
        }
        Ok(())
    })
}

/// # Safety
/// `data`/`size` are exactly what `fpng_encode_array` returned (or null).
#[no_mangle]
pub unsafe extern "C" fn fpng_free(data: *mut u8, size: usize) {
    if !data.is_null() {
        // Safety: made by Box::into_raw of a boxed slice of `size` bytes in
        // fpng_encode_array, and not freed before (caller's contract).
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, size)) });
    }
}

/// # Safety
/// `data` is null or has `size` readable bytes; `info` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn fpng_get_array_info(
    data: *const u8,
    size: usize,
    info: *mut ArrayInfo,
) -> i32 {
    api_call(|| {
        if info.is_null() {
            return Err(ShimError::NullPointer("info"));
        }
        // Safety: non-null and pointing to an ArrayInfo by contract.
        let given = unsafe { std::ptr::addr_of!((*info).struct_size).read_unaligned() };
        if given as usize != std::mem::size_of::<ArrayInfo>() {
            return Err(ShimError::StructVersion(format!(
                "fpng_array_info.struct_size = {given}, this library's is {}",
                std::mem::size_of::<ArrayInfo>()
            )));
        }
        // Safety: forwarded caller contract.
        let stream = unsafe { slice(data, size, "data") }?;
        let header = crate::array::read_header(stream)?;
        let mut out = ArrayInfo {
            struct_size: given,
            ndim: header.shape.len() as u32,
            dtype: [0; 4],
            zcmptype: [0; 24],
            shape: [0; 8],
            tile: [0; 8],
            ntiles: header.tile_sizes.len() as u64,
            nbytes: header.nbytes() as u64,
        };
        str_to_fixed(header.element.code, &mut out.dtype, "dtype")?;
        str_to_fixed(&header.zcmptype, &mut out.zcmptype, "ZCMPTYPE")
            .map_err(|_| ShimError::Corrupt("ZCMPTYPE too long".into()))?;
        for (i, (&n, &t)) in header.shape.iter().zip(&header.tile).enumerate() {
            out.shape[i] = n as u64;
            out.tile[i] = t as u64;
        }
        // Safety: non-null, writable, size checked above.
        unsafe { info.write_unaligned(out) };
        Ok(())
    })
}

/// # Safety
/// `data` has `size` readable bytes, `pixels` has `pixels_size` writable ones.
#[no_mangle]
pub unsafe extern "C" fn fpng_decode_array(
    data: *const u8,
    size: usize,
    pixels: *mut c_void,
    pixels_size: usize,
) -> i32 {
    api_call(|| {
        // Safety (both): forwarded caller contract.
        let stream = unsafe { slice(data, size, "data") }?;
        let out = unsafe { slice_mut(pixels.cast::<u8>(), pixels_size, "pixels") }?;
        crate::array::decode_array(stream, out)
    })
}

fn file_options(flags: u32) -> Result<crate::files::FileOptions, ShimError> {
    if flags & !(FILE_OVERWRITE | FILE_DELETE_INPUT | FILE_NO_CHECKSUMS) != 0 {
        return Err(ShimError::BadArgument(format!("unknown flags {flags:#x}")));
    }
    Ok(crate::files::FileOptions {
        overwrite: flags & FILE_OVERWRITE != 0,
        delete_input: flags & FILE_DELETE_INPUT != 0,
        no_checksums: flags & FILE_NO_CHECKSUMS != 0,
    })
}

/// # Safety
/// Strings are null or NUL-terminated; `tile` is null or has `ntile` elements.
#[no_mangle]
pub unsafe extern "C" fn fpng_compress_file(
    input: *const c_char,
    output: *const c_char,
    zcmptype: *const c_char,
    tile: *const usize,
    ntile: usize,
    quantize_level: f64,
    flags: u32,
) -> i32 {
    api_call(|| {
        // Safety (all): forwarded caller contract.
        let input = unsafe { c_str(input, "input") }?;
        let output = unsafe { c_str(output, "output") }?;
        let name = unsafe { c_str(zcmptype, "zcmptype") }?;
        let tile = if ntile == 0 {
            None
        } else {
            Some(unsafe { slice(tile, ntile, "tile") }?.to_vec())
        };
        let quantize = (quantize_level != 0.0).then_some(quantize_level as f32);
        crate::files::compress(
            input.as_ref(),
            output.as_ref(),
            name,
            tile,
            quantize,
            &file_options(flags)?,
        )
    })
}

/// # Safety
/// Strings are null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn fpng_decompress_file(
    input: *const c_char,
    output: *const c_char,
    flags: u32,
) -> i32 {
    api_call(|| {
        // Safety (both): forwarded caller contract.
        let input = unsafe { c_str(input, "input") }?;
        let output = unsafe { c_str(output, "output") }?;
        crate::files::decompress(input.as_ref(), output.as_ref(), &file_options(flags)?)
    })
}
