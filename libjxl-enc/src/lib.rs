//! Lossless greyscale JPEG-XL encoding with libjxl, and nothing else.
//!
//! fpack-ng needs one operation from libjxl: turn a 2-D array of 8- or 16-bit
//! unsigned samples into a bare JPEG-XL codestream that decodes back to the
//! same samples bit for bit. This crate builds libjxl 0.11 from the sources in
//! the BSD-3 `jpegxl-src` crate, declares the few C functions that operation
//! needs ([`sys`], written from libjxl's public headers) and wraps them in
//! [`encode_gray_lossless`]. Decoding is done elsewhere in pure Rust
//! (jxl-oxide), so this crate has no decoder.
//!
//! Invariants the wrapper keeps:
//! - the encoder handle is destroyed on every path, errors and panics
//!   included (an owning guard with `Drop`);
//! - libjxl only ever reads the caller's pixel slice, whose length is checked
//!   against `width × height` before any call;
//! - each call uses its own encoder and no parallel runner, so encoding runs
//!   entirely on the calling thread and calls from several threads at once
//!   (e.g. rayon workers, one tile each) do not share any libjxl state.

pub mod sys;

use std::fmt;
use std::os::raw::c_void;
use std::ptr::NonNull;

/// Samples of a greyscale image in raster order (row after row).
#[derive(Debug, Clone, Copy)]
pub enum GrayPixels<'a> {
    U8(&'a [u8]),
    U16(&'a [u16]),
}

impl GrayPixels<'_> {
    fn len(&self) -> usize {
        match self {
            GrayPixels::U8(p) => p.len(),
            GrayPixels::U16(p) => p.len(),
        }
    }
}

/// Why an image could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `width × height` is zero, overflows, or differs from the number of
    /// samples given, or a side exceeds what JPEG-XL can code (2^30).
    BadDimensions {
        width: usize,
        height: usize,
        samples: usize,
    },
    /// Effort outside 1..=10.
    BadEffort(u32),
    /// `JxlEncoderCreate` returned NULL (out of memory).
    CreateFailed,
    /// A libjxl call failed; `code` is `JxlEncoderGetError`'s value
    /// (1 generic, 2 out of memory, 4 bad input, 0x80 not supported,
    /// 0x81 API misuse).
    Encoder { call: &'static str, code: i32 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadDimensions {
                width,
                height,
                samples,
            } => write!(
                f,
                "cannot encode {samples} samples as a {width}×{height} JPEG-XL image"
            ),
            Error::BadEffort(e) => write!(f, "JPEG-XL effort {e} is outside 1..=10"),
            Error::CreateFailed => write!(f, "libjxl could not create an encoder (out of memory)"),
            Error::Encoder { call, code } => {
                let what = match code {
                    2 => "out of memory",
                    4 => "bad input",
                    0x80 => "not supported",
                    0x81 => "API usage error",
                    _ => "generic error",
                };
                write!(f, "libjxl {call} failed: {what} (code {code})")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Largest image side JPEG-XL codestreams can express (level 10).
pub const MAX_SIDE: usize = 1 << 30;

/// The version of the linked libjxl, as MAJOR×10⁶ + MINOR×10³ + PATCH.
pub fn libjxl_version() -> u32 {
    // Safety: JxlEncoderVersion takes no arguments and only returns a constant.
    unsafe { sys::JxlEncoderVersion() }
}

/// Owns a `JxlEncoder*` and destroys it when dropped (which also frees the
/// frame settings created from it).
struct Encoder(NonNull<sys::JxlEncoder>);

impl Encoder {
    fn new() -> Result<Self, Error> {
        // Safety: a NULL memory manager selects libjxl's default allocator;
        // the returned pointer is either NULL (checked) or a fresh encoder.
        let raw = unsafe { sys::JxlEncoderCreate(std::ptr::null()) };
        NonNull::new(raw).map(Encoder).ok_or(Error::CreateFailed)
    }

    fn ptr(&self) -> *mut sys::JxlEncoder {
        self.0.as_ptr()
    }

    /// Turns a status into a result, fetching libjxl's error code on failure.
    fn check(&self, call: &'static str, status: sys::JxlEncoderStatus) -> Result<(), Error> {
        if status == sys::JXL_ENC_SUCCESS {
            Ok(())
        } else {
            // Safety: the encoder pointer is live for as long as `self`.
            let code = unsafe { sys::JxlEncoderGetError(self.ptr()) };
            Err(Error::Encoder { call, code })
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // Safety: the pointer came from JxlEncoderCreate, is destroyed only
        // here, and nothing borrowed from it (frame settings) outlives `self`.
        unsafe { sys::JxlEncoderDestroy(self.ptr()) }
    }
}

/// Encodes a greyscale image losslessly as a bare JPEG-XL codestream (no
/// container boxes, see `bare_codestream`; 16-bit images need codestream
/// level 10). `pixels` holds `width × height` samples in raster order;
/// the codestream records 8 or 16 bits per sample to match. `effort` is
/// libjxl's effort, 1 (fastest) to 10 (slowest); 7 is libjxl's default.
pub fn encode_gray_lossless(
    pixels: GrayPixels<'_>,
    width: usize,
    height: usize,
    effort: u32,
) -> Result<Vec<u8>, Error> {
    let bad_dimensions = Error::BadDimensions {
        width,
        height,
        samples: pixels.len(),
    };
    if width == 0
        || height == 0
        || width > MAX_SIDE
        || height > MAX_SIDE
        || width.checked_mul(height) != Some(pixels.len())
    {
        return Err(bad_dimensions);
    }
    if !(1..=10).contains(&effort) {
        return Err(Error::BadEffort(effort));
    }
    let (bits, data_type, buffer, bytes): (u32, _, *const c_void, usize) = match pixels {
        GrayPixels::U8(p) => (8, sys::JXL_TYPE_UINT8, p.as_ptr().cast(), p.len()),
        GrayPixels::U16(p) => (16, sys::JXL_TYPE_UINT16, p.as_ptr().cast(), p.len() * 2),
    };

    let encoder = Encoder::new()?;
    let enc = encoder.ptr();

    // Safety: `enc` is a live encoder; a bare codestream is the default but is
    // requested explicitly so that no future default adds container boxes.
    encoder.check("JxlEncoderUseContainer", unsafe {
        sys::JxlEncoderUseContainer(enc, sys::JXL_FALSE)
    })?;

    let mut info = std::mem::MaybeUninit::<sys::JxlBasicInfo>::uninit();
    // Safety: JxlEncoderInitBasicInfo writes every field of the struct,
    // whose layout matches the C header (checked in sys's tests).
    let mut info = unsafe {
        sys::JxlEncoderInitBasicInfo(info.as_mut_ptr());
        info.assume_init()
    };
    info.xsize = width as u32;
    info.ysize = height as u32;
    info.bits_per_sample = bits;
    info.exponent_bits_per_sample = 0;
    info.num_color_channels = 1;
    info.num_extra_channels = 0;
    info.alpha_bits = 0;
    // Lossless coding requires the samples to be kept in their own colour
    // space rather than converted to XYB.
    info.uses_original_profile = sys::JXL_TRUE;
    // Safety: `enc` is live and `info` is a fully initialised JxlBasicInfo
    // that libjxl copies.
    encoder.check("JxlEncoderSetBasicInfo", unsafe {
        sys::JxlEncoderSetBasicInfo(enc, &info)
    })?;

    let mut color = std::mem::MaybeUninit::<sys::JxlColorEncoding>::uninit();
    // Safety: JxlColorEncodingSetToLinearSRGB initialises the whole struct.
    // Linear grey says "these numbers are plain intensities", the honest
    // description of detector counts; for lossless coding the colour encoding
    // is only metadata and does not change the samples.
    let color = unsafe {
        sys::JxlColorEncodingSetToLinearSRGB(color.as_mut_ptr(), sys::JXL_TRUE);
        color.assume_init()
    };
    // Safety: `enc` is live; `color` is initialised and copied by libjxl.
    encoder.check("JxlEncoderSetColorEncoding", unsafe {
        sys::JxlEncoderSetColorEncoding(enc, &color)
    })?;

    // Safety: `enc` is live; the settings belong to it and are freed by
    // JxlEncoderDestroy, so `settings` must not outlive `encoder` (it is a
    // local used only below).
    let settings = unsafe { sys::JxlEncoderFrameSettingsCreate(enc, std::ptr::null()) };
    if settings.is_null() {
        return Err(Error::CreateFailed);
    }
    // Safety: `settings` is a live frame-settings object of `enc`.
    encoder.check("JxlEncoderSetFrameLossless", unsafe {
        sys::JxlEncoderSetFrameLossless(settings, sys::JXL_TRUE)
    })?;
    // Safety: as above; effort is within the documented 1..=10.
    encoder.check("JxlEncoderFrameSettingsSetOption(EFFORT)", unsafe {
        sys::JxlEncoderFrameSettingsSetOption(
            settings,
            sys::JXL_ENC_FRAME_SETTING_EFFORT,
            i64::from(effort),
        )
    })?;

    let format = sys::JxlPixelFormat {
        num_channels: 1,
        data_type,
        endianness: sys::JXL_NATIVE_ENDIAN,
        align: 0,
    };
    // Safety: `buffer` points to `bytes` readable bytes borrowed from
    // `pixels` for the whole call; libjxl copies them before returning; the
    // size matches width × height × bytes per sample (checked above).
    encoder.check("JxlEncoderAddImageFrame", unsafe {
        sys::JxlEncoderAddImageFrame(settings, &format, buffer, bytes)
    })?;
    // Safety: `enc` is live; no more frames or boxes follow.
    unsafe { sys::JxlEncoderCloseInput(enc) };

    // Lossless output is rarely larger than the raw samples; start there and
    // grow geometrically if libjxl asks for more.
    let mut out: Vec<u8> = vec![0; (bytes / 2).max(1024)];
    let mut written = 0usize;
    loop {
        let mut avail = out.len() - written;
        // Safety: `next` points into `out` at `written`, with `avail` bytes
        // of initialised, writable space after it; libjxl advances `next` and
        // decreases `avail` by what it wrote, never past the end.
        let status = unsafe {
            let mut next = out.as_mut_ptr().add(written);
            sys::JxlEncoderProcessOutput(enc, &mut next, &mut avail)
        };
        written = out.len() - avail;
        match status {
            sys::JXL_ENC_NEED_MORE_OUTPUT => {
                let grow = out.len().max(64);
                out.resize(out.len() + grow, 0);
            }
            status => {
                encoder.check("JxlEncoderProcessOutput", status)?;
                break;
            }
        }
    }
    out.truncate(written);
    bare_codestream(out)
}

/// The codestream inside libjxl's output, without container boxes.
///
/// libjxl wraps the codestream in an ISO-BMFF container whenever the image
/// needs codestream level 10, which 16-bit lossless (modular) samples always
/// do: the `jxll` box that announces the level can only live in a container.
/// Those boxes ("JXL " signature, `ftyp`, `jxll`, `jxlc` header: 49 bytes)
/// carry nothing a FITS reader needs; its ZCMPTYPE already says what the
/// bytes are, and decoders (libjxl, jxl-oxide) read bare level-10
/// codestreams. On small tiles 49 bytes is a visible share, so they are
/// dropped here.
fn bare_codestream(out: Vec<u8>) -> Result<Vec<u8>, Error> {
    const CODESTREAM_SIGNATURE: [u8; 2] = [0xff, 0x0a];
    let malformed = Error::Encoder {
        call: "container parsing",
        code: 1,
    };
    if out.starts_with(&CODESTREAM_SIGNATURE) {
        return Ok(out);
    }
    let mut codestream = Vec::with_capacity(out.len());
    let mut rest = &out[..];
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err(malformed);
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64;
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let (header, size) = match size32 {
            0 => (8u64, rest.len() as u64),
            1 if rest.len() >= 16 => {
                let mut large = [0u8; 8];
                large.copy_from_slice(&rest[8..16]);
                (16, u64::from_be_bytes(large))
            }
            1 => return Err(malformed),
            n => (8, n),
        };
        if size < header || size > rest.len() as u64 {
            return Err(malformed);
        }
        let payload = &rest[header as usize..size as usize];
        match &kind {
            b"jxlc" => codestream.extend_from_slice(payload),
            // Partial codestream boxes start with a 4-byte index.
            b"jxlp" if payload.len() >= 4 => codestream.extend_from_slice(&payload[4..]),
            b"jxlp" => return Err(malformed),
            _ => {}
        }
        rest = &rest[size as usize..];
    }
    if codestream.starts_with(&CODESTREAM_SIGNATURE) {
        Ok(codestream)
    } else {
        Err(malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_0_11() {
        assert_eq!(libjxl_version() / 1000, 11, "{}", libjxl_version());
    }

    #[test]
    fn bare_codestream_signature() {
        let px: Vec<u16> = (0..12 * 7).map(|i| (i * 797 % 65536) as u16).collect();
        let out = encode_gray_lossless(GrayPixels::U16(&px), 12, 7, 7).unwrap();
        assert_eq!(&out[..2], &[0xff, 0x0a]);
        let px8: Vec<u8> = (0..5 * 3).map(|i| (i * 37) as u8).collect();
        let out = encode_gray_lossless(GrayPixels::U8(&px8), 5, 3, 1).unwrap();
        assert_eq!(&out[..2], &[0xff, 0x0a]);
    }

    #[test]
    fn rejects_bad_arguments() {
        let px = [0u16; 6];
        assert!(matches!(
            encode_gray_lossless(GrayPixels::U16(&px), 4, 2, 7),
            Err(Error::BadDimensions { .. })
        ));
        assert!(matches!(
            encode_gray_lossless(GrayPixels::U16(&px), 0, 0, 7),
            Err(Error::BadDimensions { .. })
        ));
        assert_eq!(
            encode_gray_lossless(GrayPixels::U16(&px), 3, 2, 0),
            Err(Error::BadEffort(0))
        );
        assert_eq!(
            encode_gray_lossless(GrayPixels::U16(&px), 3, 2, 11),
            Err(Error::BadEffort(11))
        );
    }

    #[test]
    fn container_is_stripped_to_the_codestream() {
        let mut boxed = Vec::new();
        boxed.extend_from_slice(&[0, 0, 0, 12, b'J', b'X', b'L', b' ', 0x0d, 0x0a, 0x87, 0x0a]);
        boxed.extend_from_slice(&[0, 0, 0, 9, b'j', b'x', b'l', b'l', 10]);
        boxed.extend_from_slice(&[0, 0, 0, 14, b'j', b'x', b'l', b'p', 0, 0, 0, 0, 0xff, 0x0a]);
        boxed.extend_from_slice(&[0, 0, 0, 0, b'j', b'x', b'l', b'p', 0x80, 0, 0, 1, 7, 8]);
        assert_eq!(
            bare_codestream(boxed.clone()).unwrap(),
            vec![0xff, 0x0a, 7, 8]
        );
        // Boxes that overrun, or no codestream at all, are errors.
        boxed[3] = 200;
        assert!(bare_codestream(boxed).is_err());
        assert!(bare_codestream(vec![0, 0, 0, 9, b'j', b'x', b'l', b'l', 10]).is_err());
        assert!(bare_codestream(vec![0, 0, 0]).is_err());
    }
}
