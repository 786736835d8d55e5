//! The C API of include/fpackng_shim.h, version 1.
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
pub const API_VERSION: u32 = 1;

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
}

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
    [
        PixelType::U8,
        PixelType::I16,
        PixelType::I32,
        PixelType::I64,
        PixelType::F32,
        PixelType::F64,
    ]
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
    if given as usize != std::mem::size_of::<CodecInfo>() {
        return Err(ShimError::StructVersion(format!(
            "fpng_codec_info.struct_size = {given}, this library's is {}",
            std::mem::size_of::<CodecInfo>()
        )));
    }
    let mut out = CodecInfo {
        struct_size: given,
        api_version: API_VERSION,
        zcmptype: [0; 24],
        bitpix_mask: bitpix_mask(codec),
        can_encode: u8::from(codec.can_encode()),
        cfitsio_native: u8::from(core::is_cfitsio_native(codec.id())),
        heap_element: codec.heap_element() as c_char,
        reserved: 0,
    };
    str_to_fixed(codec.id(), &mut out.zcmptype, "ZCMPTYPE")?;
    // Safety: `info` is a valid, writable CodecInfo (size checked above).
    unsafe { info.write_unaligned(out) };
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
