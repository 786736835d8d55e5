//! Raw declarations of the part of libjxl's C encoder API (`jxl/encode.h`,
//! `jxl/types.h`, `jxl/codestream_header.h`, `jxl/color_encoding.h`, libjxl
//! 0.11) that lossless greyscale encoding needs, written by hand from those
//! headers. Nothing here is safe to call directly; see the crate root.
//!
//! The struct layouts must match the C headers byte for byte: the test
//! module checks sizes and field offsets against values computed by a C
//! compiler from the same headers (see `tests` below).

#![allow(non_camel_case_types, dead_code)]

use std::os::raw::{c_int, c_void};

/// `JXL_BOOL` is a C `int`.
pub type JxlBool = c_int;
pub const JXL_TRUE: JxlBool = 1;
pub const JXL_FALSE: JxlBool = 0;

/// C enums are `int`-sized with GCC/Clang on every platform libjxl supports;
/// they are declared as plain integers so that any value libjxl returns is
/// representable (a Rust enum with an unexpected discriminant would be UB).
pub type JxlEncoderStatus = c_int;
pub const JXL_ENC_SUCCESS: JxlEncoderStatus = 0;
pub const JXL_ENC_ERROR: JxlEncoderStatus = 1;
pub const JXL_ENC_NEED_MORE_OUTPUT: JxlEncoderStatus = 2;

pub type JxlEncoderError = c_int;

pub type JxlEncoderFrameSettingId = c_int;
pub const JXL_ENC_FRAME_SETTING_EFFORT: JxlEncoderFrameSettingId = 0;

pub type JxlDataType = c_int;
pub const JXL_TYPE_UINT8: JxlDataType = 2;
pub const JXL_TYPE_UINT16: JxlDataType = 3;

pub type JxlEndianness = c_int;
pub const JXL_NATIVE_ENDIAN: JxlEndianness = 0;
pub const JXL_LITTLE_ENDIAN: JxlEndianness = 1;
pub const JXL_BIG_ENDIAN: JxlEndianness = 2;

pub type JxlOrientation = c_int;
pub const JXL_ORIENT_IDENTITY: JxlOrientation = 1;

pub type JxlColorSpace = c_int;
pub type JxlWhitePoint = c_int;
pub type JxlPrimaries = c_int;
pub type JxlTransferFunction = c_int;
pub type JxlRenderingIntent = c_int;

/// `JxlPixelFormat` (types.h).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct JxlPixelFormat {
    pub num_channels: u32,
    pub data_type: JxlDataType,
    pub endianness: JxlEndianness,
    pub align: usize,
}

/// `JxlPreviewHeader` (codestream_header.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct JxlPreviewHeader {
    pub xsize: u32,
    pub ysize: u32,
}

/// `JxlAnimationHeader` (codestream_header.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct JxlAnimationHeader {
    pub tps_numerator: u32,
    pub tps_denominator: u32,
    pub num_loops: u32,
    pub have_timecodes: JxlBool,
}

/// `JxlBasicInfo` (codestream_header.h). Always initialise it with
/// [`JxlEncoderInitBasicInfo`] before setting fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct JxlBasicInfo {
    pub have_container: JxlBool,
    pub xsize: u32,
    pub ysize: u32,
    pub bits_per_sample: u32,
    pub exponent_bits_per_sample: u32,
    pub intensity_target: f32,
    pub min_nits: f32,
    pub relative_to_max_display: JxlBool,
    pub linear_below: f32,
    pub uses_original_profile: JxlBool,
    pub have_preview: JxlBool,
    pub have_animation: JxlBool,
    pub orientation: JxlOrientation,
    pub num_color_channels: u32,
    pub num_extra_channels: u32,
    pub alpha_bits: u32,
    pub alpha_exponent_bits: u32,
    pub alpha_premultiplied: JxlBool,
    pub preview: JxlPreviewHeader,
    pub animation: JxlAnimationHeader,
    pub intrinsic_xsize: u32,
    pub intrinsic_ysize: u32,
    pub padding: [u8; 100],
}

/// `JxlColorEncoding` (color_encoding.h).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct JxlColorEncoding {
    pub color_space: JxlColorSpace,
    pub white_point: JxlWhitePoint,
    pub white_point_xy: [f64; 2],
    pub primaries: JxlPrimaries,
    pub primaries_red_xy: [f64; 2],
    pub primaries_green_xy: [f64; 2],
    pub primaries_blue_xy: [f64; 2],
    pub transfer_function: JxlTransferFunction,
    pub gamma: f64,
    pub rendering_intent: JxlRenderingIntent,
}

/// Opaque `JxlEncoder`.
#[repr(C)]
pub struct JxlEncoder {
    _private: [u8; 0],
}

/// Opaque `JxlEncoderFrameSettings`, owned by its encoder.
#[repr(C)]
pub struct JxlEncoderFrameSettings {
    _private: [u8; 0],
}

/// `JxlMemoryManager` is only ever passed as NULL (libjxl's malloc/free).
pub type JxlMemoryManager = c_void;

extern "C" {
    pub fn JxlEncoderVersion() -> u32;
    pub fn JxlEncoderCreate(memory_manager: *const JxlMemoryManager) -> *mut JxlEncoder;
    pub fn JxlEncoderDestroy(enc: *mut JxlEncoder);
    pub fn JxlEncoderGetError(enc: *mut JxlEncoder) -> JxlEncoderError;
    pub fn JxlEncoderUseContainer(enc: *mut JxlEncoder, use_container: JxlBool)
        -> JxlEncoderStatus;
    pub fn JxlEncoderInitBasicInfo(info: *mut JxlBasicInfo);
    pub fn JxlEncoderSetBasicInfo(
        enc: *mut JxlEncoder,
        info: *const JxlBasicInfo,
    ) -> JxlEncoderStatus;
    pub fn JxlColorEncodingSetToSRGB(color_encoding: *mut JxlColorEncoding, is_gray: JxlBool);
    pub fn JxlColorEncodingSetToLinearSRGB(color_encoding: *mut JxlColorEncoding, is_gray: JxlBool);
    pub fn JxlEncoderSetColorEncoding(
        enc: *mut JxlEncoder,
        color: *const JxlColorEncoding,
    ) -> JxlEncoderStatus;
    pub fn JxlEncoderFrameSettingsCreate(
        enc: *mut JxlEncoder,
        source: *const JxlEncoderFrameSettings,
    ) -> *mut JxlEncoderFrameSettings;
    pub fn JxlEncoderSetFrameLossless(
        frame_settings: *mut JxlEncoderFrameSettings,
        lossless: JxlBool,
    ) -> JxlEncoderStatus;
    pub fn JxlEncoderFrameSettingsSetOption(
        frame_settings: *mut JxlEncoderFrameSettings,
        option: JxlEncoderFrameSettingId,
        value: i64,
    ) -> JxlEncoderStatus;
    pub fn JxlEncoderAddImageFrame(
        frame_settings: *const JxlEncoderFrameSettings,
        pixel_format: *const JxlPixelFormat,
        buffer: *const c_void,
        size: usize,
    ) -> JxlEncoderStatus;
    pub fn JxlEncoderCloseInput(enc: *mut JxlEncoder);
    pub fn JxlEncoderProcessOutput(
        enc: *mut JxlEncoder,
        next_out: *mut *mut u8,
        avail_out: *mut usize,
    ) -> JxlEncoderStatus;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    /// Values printed by a C program compiled with gcc (x86-64, LP64) against
    /// the libjxl 0.11.1 headers shipped in jpegxl-src 0.11.2: `sizeof`,
    /// `_Alignof` and `offsetof` of each struct and of the fields after
    /// which a misdeclared type would shift everything.
    #[test]
    fn layouts_match_the_c_headers() {
        assert_eq!(size_of::<JxlPixelFormat>(), 24);
        assert_eq!(align_of::<JxlPixelFormat>(), 8);
        assert_eq!(offset_of!(JxlPixelFormat, align), 16);

        assert_eq!(size_of::<JxlBasicInfo>(), 204);
        assert_eq!(align_of::<JxlBasicInfo>(), 4);
        assert_eq!(offset_of!(JxlBasicInfo, uses_original_profile), 36);
        assert_eq!(offset_of!(JxlBasicInfo, orientation), 48);
        assert_eq!(offset_of!(JxlBasicInfo, num_color_channels), 52);
        assert_eq!(offset_of!(JxlBasicInfo, preview), 72);
        assert_eq!(offset_of!(JxlBasicInfo, animation), 80);
        assert_eq!(offset_of!(JxlBasicInfo, intrinsic_xsize), 96);
        assert_eq!(offset_of!(JxlBasicInfo, padding), 104);

        assert_eq!(size_of::<JxlColorEncoding>(), 104);
        assert_eq!(align_of::<JxlColorEncoding>(), 8);
        assert_eq!(offset_of!(JxlColorEncoding, primaries), 24);
        assert_eq!(offset_of!(JxlColorEncoding, transfer_function), 80);
        assert_eq!(offset_of!(JxlColorEncoding, gamma), 88);
        assert_eq!(offset_of!(JxlColorEncoding, rendering_intent), 96);
    }
}
