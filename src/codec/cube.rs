//! CUBE_1: tiles that span planes, coded as inter-plane residuals.
//!
//! Why: infrared ramps (JWST, Roman) and multi-band cubes repeat a large
//! per-pixel level in every plane; coding plane by plane pays for it again
//! each time. A CUBE_1 tile is a spatial block taken across all planes of
//! one axis (ZNAME `PREDAXIS`, 3 by default; a 4-D tile also spans the
//! later axes, e.g. JWST's integrations), so every plane is predicted only
//! from planes of the same tile and the tile stays independently decodable.
//!
//! Planes are numbered in FITS order within the tile: plane `k = o * G + g`
//! where `g` runs along the prediction axis (`G` planes) and `o` over the
//! later axes. Plane `(g, o)` refers to `(g-1, o)`, and the first plane of
//! each `o` to the first plane of `o-1` (a ramp's first group is predicted
//! from the previous integration's first group); the very first plane has
//! no reference. Each plane independently picks a predictor, the one whose
//! coded residual is smallest (or the one forced by `PREDICT`):
//! - none: the plane itself;
//! - previous: the plane minus its reference;
//! - linear: `((a1·ref + a2·ref2 + 2^15) >> 16) + c` with `ref2` the
//!   reference's reference, integer coefficients stored in the tile, fitted
//!   by least squares (spectral cubes) or fixed at (2, −1, 0) (ramp
//!   extrapolation).
//!
//! Prediction is open-loop on the exact pixels, so decoding is exact.
//!
//! Residuals are integers of any width (a difference of uint16 planes needs
//! 17 bits; 65535 next to 0 and cosmic-ray jumps included). Each residual
//! plane is handed to the inner codec (ZNAME `INNER`, any REGISTRY codec
//! that codes the image's pixel type) in the image's own pixel type: as is
//! when the values fit, shifted by a stored offset when their span fits,
//! and otherwise split into low and high words (two inner streams). The
//! inner codec's own ZNAMEn/ZVALn follow CUBE_1's in the header.
//!
//! Safety: CUBE_1 is a ZCMPTYPE no standard reader knows, so cfitsio and
//! astropy refuse such an HDU instead of returning residuals as pixels.
//!
//! Parameters, in this order: CUBEVER (1), PREDAXIS, COEFSHFT (16, the
//! linear coefficients' fixed-point shift), INNER, PREDICT, then the inner
//! codec's own.
//!
//! Tile stream (version 1, `CUBEVER`): one byte 1, then per plane: the
//! predictor byte (0 none, 1 previous, 2 linear followed by zigzag varints
//! a1, a2, c), the representation byte (0 direct, 1 split), the offset
//! (zigzag varint), then one (direct) or two (split: low, high) inner
//! streams, each a varint length and its bytes.

use rayon::prelude::*;

use super::{Codec, CodecContext, EncodeOptions, ParamValue, Params, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

/// The version of the tile stream described above.
pub const VERSION: i64 = 1;
/// The inner codec used when none is named (`encode_params`, `--cube on`
/// with a codec that cannot be inner, FZALGOR = 'CUBE_1').
pub fn default_inner() -> &'static dyn Codec {
    &super::rice::Rice
}
/// The default prediction axis (1-based, FITS order): NAXIS3.
pub const DEFAULT_AXIS: usize = 3;
/// Fixed-point shift of the linear predictor's coefficients.
const SHIFT: u32 = 16;
/// Bounds on stored coefficients, so that predictions fit in i64.
const MAX_COEF: i64 = 1 << 28;
const MAX_CONST: i64 = 1 << 40;

/// The ZNAMEn values CUBE_1 owns; every other parameter is the inner codec's.
const OWN_PARAMS: [&str; 5] = ["CUBEVER", "PREDAXIS", "COEFSHFT", "INNER", "PREDICT"];

/// How each plane's predictor is chosen (ZNAME `PREDICT`, informational
/// for decoders: the choice made is stored per plane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Predictor {
    /// Try every predictor, keep the smallest coded plane.
    #[default]
    Auto,
    /// Every plane that has a reference is coded as a difference from it.
    Previous,
    /// Every plane that has a reference uses a fitted linear predictor.
    Linear,
}

impl Predictor {
    pub fn name(self) -> &'static str {
        match self {
            Predictor::Auto => "AUTO",
            Predictor::Previous => "PREVIOUS",
            Predictor::Linear => "LINEAR",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().as_str() {
            "AUTO" => Some(Predictor::Auto),
            "PREVIOUS" | "PREV" | "DIFF" => Some(Predictor::Previous),
            "LINEAR" => Some(Predictor::Linear),
            _ => None,
        }
    }
}

pub struct Cube;

/// The ZNAMEn/ZVALn pairs for a CUBE_1 image: CUBE_1's own, then the inner
/// codec's for the image's pixel type.
pub fn params_for(
    inner: &dyn Codec,
    pixel_type: PixelType,
    options: &EncodeOptions,
    axis: usize,
    predictor: Predictor,
) -> Params {
    // Numbers first: astropy checks ZVAL1..ZVAL3 numerically before it
    // looks at ZCMPTYPE, and a text value there would turn its clear
    // "Unrecognized compression type" into a TypeError.
    let mut params = Params::new()
        .with("CUBEVER", ParamValue::Int(VERSION))
        .with("PREDAXIS", ParamValue::Int(axis as i64))
        .with("COEFSHFT", ParamValue::Int(i64::from(SHIFT)))
        .with("INNER", ParamValue::Text(inner.id().to_string()))
        .with("PREDICT", ParamValue::Text(predictor.name().to_string()));
    params.0.extend(inner.encode_params(pixel_type, options).0);
    params
}

/// Whether `inner` can serve as CUBE_1's inner codec for `pixel_type`.
pub fn inner_usable(inner: &dyn Codec, pixel_type: PixelType) -> bool {
    matches!(pixel_type, PixelType::U8 | PixelType::I16 | PixelType::I32)
        && inner.can_encode()
        && inner.supports(pixel_type)
        && inner.heap_element() == 'B'
        && !inner.wraps_inner_codec()
        && !inner.stores_uncompressed()
        // HCOMPRESS_1 needs 2-D tiles of its own shape, PLIO_1 values in
        // 0..2^24, which residuals are not.
        && !matches!(inner.id(), "HCOMPRESS_1" | "PLIO_1")
}

/// What the header says: inner codec and its parameters, prediction axis.
struct Setup {
    inner: &'static dyn Codec,
    inner_params: Params,
    axis: usize,
    predictor: Predictor,
    /// The outer tile's, handed on to the inner codec.
    context: CodecContext,
}

fn setup(
    params: &Params,
    pixel_type: PixelType,
    context: CodecContext,
) -> Result<Setup, CodecError> {
    match params.get_int("CUBEVER") {
        Some(VERSION) => {}
        Some(v) => {
            return Err(CodecError::BadParameter(format!(
                "CUBE_1 version CUBEVER={v} is not supported (this build reads version {VERSION})"
            )))
        }
        None => {
            return Err(CodecError::BadParameter(
                "CUBE_1 needs the CUBEVER parameter, which is missing or not an integer".into(),
            ))
        }
    }
    match params.get("COEFSHFT") {
        None => {}
        Some(_) if params.get_int("COEFSHFT") == Some(i64::from(SHIFT)) => {}
        Some(v) => {
            return Err(CodecError::BadParameter(format!(
                "CUBE_1 COEFSHFT must be {SHIFT}, got {v:?}"
            )))
        }
    }
    let name = params.get_text("INNER").ok_or_else(|| {
        CodecError::BadParameter("CUBE_1 needs the INNER parameter (the inner codec)".into())
    })?;
    let inner = super::find(name).ok_or_else(|| {
        CodecError::Unsupported(format!("CUBE_1 inner codec '{name}' is not known"))
    })?;
    if inner.wraps_inner_codec() || !inner.supports(pixel_type) || inner.heap_element() != 'B' {
        return Err(CodecError::Unsupported(format!(
            "CUBE_1 cannot use {} as inner codec for BITPIX={}",
            inner.id(),
            pixel_type.bitpix()
        )));
    }
    let axis = match params.get("PREDAXIS") {
        None => DEFAULT_AXIS,
        Some(_) => match params.get_int("PREDAXIS") {
            Some(a @ 1..=999) => a as usize,
            _ => {
                return Err(CodecError::BadParameter(format!(
                    "CUBE_1 PREDAXIS must be an axis number, got {:?}",
                    params.get("PREDAXIS")
                )))
            }
        },
    };
    let predictor = match params.get_text("PREDICT") {
        None => Predictor::Auto,
        Some(t) => Predictor::parse(t).ok_or_else(|| {
            CodecError::BadParameter(format!("CUBE_1 PREDICT = '{t}' is not known"))
        })?,
    };
    let inner_params = Params(
        params
            .0
            .iter()
            .filter(|(n, _)| !OWN_PARAMS.iter().any(|o| o.eq_ignore_ascii_case(n)))
            .cloned()
            .collect(),
    );
    Ok(Setup {
        inner,
        inner_params,
        axis,
        predictor,
        context,
    })
}

/// How a tile splits into planes along the prediction axis.
#[derive(Debug, Clone, Copy)]
struct Planes {
    /// Pixels per plane.
    size: usize,
    /// Planes along the prediction axis.
    groups: usize,
    /// Number of planes in all.
    count: usize,
}

impl Planes {
    fn new(shape: &[usize], axis: usize) -> Result<Self, CodecError> {
        if axis < 2 || axis > shape.len().max(2) {
            return Err(CodecError::Unsupported(format!(
                "CUBE_1 prediction axis {axis} for a {}-axis tile",
                shape.len()
            )));
        }
        let size: usize = shape[..axis - 1].iter().product();
        let groups = shape.get(axis - 1).copied().unwrap_or(1);
        let outer: usize = shape.get(axis..).map_or(1, |s| s.iter().product());
        Ok(Planes {
            size,
            groups,
            count: groups * outer,
        })
    }

    /// The plane plane `k` is predicted from.
    fn reference(&self, k: usize) -> Option<usize> {
        if !k.is_multiple_of(self.groups) {
            Some(k - 1)
        } else if k >= self.groups {
            Some(k - self.groups)
        } else {
            None
        }
    }
}

/// One plane's predictor: `None` is coded as kind 0, `Previous` as 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prediction {
    None,
    Previous,
    Linear { a1: i64, a2: i64, c: i64 },
}

fn predict(p: Prediction, r1: Option<&[i32]>, r2: Option<&[i32]>, i: usize) -> i64 {
    match p {
        Prediction::None => 0,
        Prediction::Previous => r1.map_or(0, |r| i64::from(r[i])),
        Prediction::Linear { a1, a2, c } => {
            let x1 = r1.map_or(0, |r| i64::from(r[i]));
            let x2 = r2.map_or(0, |r| i64::from(r[i]));
            ((a1 * x1 + a2 * x2 + (1 << (SHIFT - 1))) >> SHIFT) + c
        }
    }
}

/// The range of the image's pixel type and its width in bits.
fn type_range(t: PixelType) -> (i64, i64, u32) {
    match t {
        PixelType::U8 => (0, 255, 8),
        PixelType::I16 => (i64::from(i16::MIN), i64::from(i16::MAX), 16),
        _ => (i64::from(i32::MIN), i64::from(i32::MAX), 32),
    }
}

fn to_pixels(t: PixelType, values: impl Iterator<Item = i64>) -> Pixels {
    match t {
        PixelType::U8 => Pixels::U8(values.map(|v| v as u8).collect()),
        PixelType::I16 => Pixels::I16(values.map(|v| v as i16).collect()),
        _ => Pixels::I32(values.map(|v| v as i32).collect()),
    }
}

fn from_pixels(p: &Pixels) -> Option<Vec<i64>> {
    Some(match p {
        Pixels::U8(v) => v.iter().map(|&x| i64::from(x)).collect(),
        Pixels::I16(v) => v.iter().map(|&x| i64::from(x)).collect(),
        Pixels::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
        _ => return None,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CodecError> {
        let b = *self.bytes.get(self.pos).ok_or(CodecError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                break;
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Corrupt("CUBE_1 varint too long".into()))
    }

    fn signed(&mut self) -> Result<i64, CodecError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn stream(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.varint()?;
        let rest = self.bytes.len() - self.pos;
        if len > rest as u64 {
            return Err(CodecError::Truncated);
        }
        let s = &self.bytes[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(s)
    }
}

/// Whether residuals span at most two words of the pixel type (what
/// [`code_residual`] can represent).
fn fits_two_words(residual: &[i64], t: PixelType) -> bool {
    let (_, _, bits) = type_range(t);
    let min = residual.iter().copied().min().unwrap_or(0);
    let max = residual.iter().copied().max().unwrap_or(0);
    // Spans are at most 2^62 (see code_residual), so 32-bit types always fit.
    bits >= 32 || ((max - min) as u64) >> (2 * bits) == 0
}

/// Code one residual plane with the inner codec, as described in the module
/// docs; appends representation, offset and stream(s) to `out`.
fn code_residual(
    residual: &[i64],
    setup: &Setup,
    pixel_type: PixelType,
    plane_shape: &[usize],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let (lo, hi, bits) = type_range(pixel_type);
    let min = residual.iter().copied().min().unwrap_or(0);
    let max = residual.iter().copied().max().unwrap_or(0);
    let spec = TileSpec {
        shape: plane_shape,
        pixel_type,
        params: &setup.inner_params,
        context: setup.context,
    };
    let stream = |pixels: Pixels, out: &mut Vec<u8>| -> Result<(), CodecError> {
        let coded = setup.inner.encode(&pixels, &spec)?;
        put_varint(out, coded.len() as u64);
        out.extend_from_slice(&coded);
        Ok(())
    };
    // Spans are at most 2^62 here: pixels are at most 32 bits and
    // predictions are bounded by MAX_COEF and MAX_CONST.
    let span = (max - min) as u64;
    if min >= lo && max <= hi {
        out.push(0);
        put_signed(out, 0);
        stream(to_pixels(pixel_type, residual.iter().copied()), out)
    } else if span <= (hi - lo) as u64 {
        let offset = min - lo;
        out.push(0);
        put_signed(out, offset);
        stream(
            to_pixels(pixel_type, residual.iter().map(|&r| r - offset)),
            out,
        )
    } else {
        if !fits_two_words(residual, pixel_type) {
            return Err(CodecError::Unsupported(format!(
                "CUBE_1 residuals span {span}, more than two {bits}-bit words"
            )));
        }
        // Low and high words of (r - min), each shifted into the type.
        let mask = (1u64 << bits) - 1;
        out.push(1);
        put_signed(out, min);
        stream(
            to_pixels(
                pixel_type,
                residual
                    .iter()
                    .map(|&r| (((r - min) as u64 & mask) as i64) + lo),
            ),
            out,
        )?;
        stream(
            to_pixels(
                pixel_type,
                residual
                    .iter()
                    .map(|&r| (((r - min) as u64 >> bits) as i64) + lo),
            ),
            out,
        )
    }
}

/// Least-squares fit of `x ≈ a1·r1 (+ a2·r2) + c`, quantized.
fn fit_linear(x: &[i32], r1: &[i32], r2: Option<&[i32]>) -> Prediction {
    let n = x.len() as f64;
    if x.is_empty() {
        return Prediction::Previous;
    }
    let mean = |v: &[i32]| v.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
    let (mx, m1) = (mean(x), mean(r1));
    let m2 = r2.map_or(0.0, mean);
    let (mut s11, mut s22, mut s12, mut s1x, mut s2x) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..x.len() {
        let dx = f64::from(x[i]) - mx;
        let d1 = f64::from(r1[i]) - m1;
        let d2 = r2.map_or(0.0, |r| f64::from(r[i]) - m2);
        s11 += d1 * d1;
        s22 += d2 * d2;
        s12 += d1 * d2;
        s1x += d1 * dx;
        s2x += d2 * dx;
    }
    let det = s11 * s22 - s12 * s12;
    let (a1, a2) = if r2.is_some() && det > 1e-9 * (s11 * s22).max(1.0) {
        ((s1x * s22 - s2x * s12) / det, (s2x * s11 - s1x * s12) / det)
    } else if s11 > 0.0 {
        (s1x / s11, 0.0)
    } else {
        (1.0, 0.0)
    };
    let scale = f64::from(1u32 << SHIFT);
    let q = |a: f64| {
        let v = (a * scale).round();
        if v.is_finite() {
            (v as i64).clamp(-MAX_COEF, MAX_COEF)
        } else {
            0
        }
    };
    let (a1, a2) = (q(a1), if r2.is_some() { q(a2) } else { 0 });
    // The constant makes the residuals' mean zero after rounding.
    let partial = Prediction::Linear { a1, a2, c: 0 };
    let sum: i128 = (0..x.len())
        .map(|i| i128::from(i64::from(x[i]) - predict(partial, Some(r1), r2, i)))
        .sum();
    let c = (sum as f64 / n).round() as i64;
    Prediction::Linear {
        a1,
        a2,
        c: c.clamp(-MAX_CONST, MAX_CONST),
    }
}

/// The predictors worth trying for one plane.
fn candidates(
    predictor: Predictor,
    x: &[i32],
    ref1: Option<&[i32]>,
    ref2: Option<&[i32]>,
) -> Vec<Prediction> {
    let Some(r1) = ref1 else {
        return vec![Prediction::None];
    };
    match predictor {
        Predictor::Previous => vec![Prediction::Previous],
        Predictor::Linear => vec![fit_linear(x, r1, ref2)],
        Predictor::Auto => {
            let mut all = vec![Prediction::None, Prediction::Previous];
            if ref2.is_some() {
                all.push(Prediction::Linear {
                    a1: 2 << SHIFT,
                    a2: -1 << SHIFT,
                    c: 0,
                });
            }
            let fitted = fit_linear(x, r1, ref2);
            if !all.contains(&fitted) {
                all.push(fitted);
            }
            all
        }
    }
}

/// Candidates whose estimated size is within this fraction of the best
/// estimate are coded for real and the smallest kept; the others are
/// dropped unseen (a slow inner codec would otherwise run 4 times).
const ESTIMATE_MARGIN: f64 = 0.05;

/// A cheap stand-in for the coded size of a residual plane: the bit
/// lengths of its pixel-to-pixel differences, which is what Rice and the
/// spatial predictors of the other inner codecs leave to code.
fn estimate(residual: &[i64]) -> u64 {
    let mut last = 0i64;
    residual
        .iter()
        .map(|&r| {
            let d = r.wrapping_sub(last);
            last = r;
            let z = ((d << 1) ^ (d >> 63)) as u64;
            u64::from(64 - z.leading_zeros())
        })
        .sum()
}

/// Code one plane with the best of `candidates`: header bytes, then the
/// residual as [`code_residual`] writes it.
fn code_plane(
    candidates: &[Prediction],
    x: &[i32],
    ref1: Option<&[i32]>,
    ref2: Option<&[i32]>,
    setup: &Setup,
    t: PixelType,
    plane_shape: &[usize],
) -> Result<Vec<u8>, CodecError> {
    // Candidates whose residuals would not fit two words of the type are
    // left out (a steep linear fit on 8-bit data); `None` and `Previous`
    // always fit, so one candidate remains.
    let residuals: Vec<(Prediction, Vec<i64>)> = candidates
        .iter()
        .map(|&p| {
            let r: Vec<i64> = (0..x.len())
                .map(|i| i64::from(x[i]) - predict(p, ref1, ref2, i))
                .collect();
            (p, r)
        })
        .filter(|(p, r)| {
            fits_two_words(r, t) || matches!(p, Prediction::None | Prediction::Previous)
        })
        .collect();
    let estimates: Vec<u64> = residuals.iter().map(|(_, r)| estimate(r)).collect();
    let best_estimate = estimates.iter().copied().min().unwrap_or(0) as f64;
    let mut best: Option<Vec<u8>> = None;
    for ((p, residual), e) in residuals.iter().zip(estimates) {
        if e as f64 > best_estimate * (1.0 + ESTIMATE_MARGIN) + 64.0 {
            continue;
        }
        let mut coded = Vec::new();
        match *p {
            Prediction::None => coded.push(0),
            Prediction::Previous => coded.push(1),
            Prediction::Linear { a1, a2, c } => {
                coded.push(2);
                put_signed(&mut coded, a1);
                put_signed(&mut coded, a2);
                put_signed(&mut coded, c);
            }
        }
        code_residual(residual, setup, t, plane_shape, &mut coded)?;
        if best.as_ref().is_none_or(|b| coded.len() < b.len()) {
            best = Some(coded);
        }
    }
    Ok(best.expect("the best estimate is always coded"))
}

impl Codec for Cube {
    fn id(&self) -> &'static str {
        "CUBE_1"
    }

    fn short_names(&self) -> &'static [&'static str] {
        &["cube"]
    }

    fn description(&self) -> &'static str {
        "inter-plane residuals of integer cubes, coded by an inner codec (fpack-ng)"
    }

    /// The listing is where an operator sees what the HDU wraps, and so
    /// that standard readers will refuse it.
    fn describe_hdu(&self, params: &Params, _context: &CodecContext) -> String {
        format!(
            "CUBE_1(inner={},axis={})",
            params.get_text("INNER").unwrap_or("?"),
            params.get_int("PREDAXIS").unwrap_or(3)
        )
    }

    fn wraps_inner_codec(&self) -> bool {
        true
    }

    fn supports(&self, pixel_type: PixelType) -> bool {
        matches!(pixel_type, PixelType::U8 | PixelType::I16 | PixelType::I32)
    }

    fn encode_params(&self, pixel_type: PixelType, options: &EncodeOptions) -> Params {
        params_for(
            default_inner(),
            pixel_type,
            options,
            DEFAULT_AXIS,
            Predictor::Auto,
        )
    }

    fn encode(&self, pixels: &Pixels, spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        let t = pixels.pixel_type();
        let setup = setup(spec.params, t, spec.context)?;
        let planes = Planes::new(spec.shape, setup.axis)?;
        let values: Vec<i32> = match pixels {
            Pixels::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
            Pixels::I16(v) => v.iter().map(|&x| i32::from(x)).collect(),
            Pixels::I32(v) => v.clone(),
            other => {
                return Err(CodecError::Unsupported(format!(
                    "CUBE_1 codes 8-, 16- and 32-bit integers, not BITPIX={}",
                    other.pixel_type().bitpix()
                )))
            }
        };
        let plane_shape = &spec.shape[..setup.axis - 1];
        let plane = |k: usize| &values[k * planes.size..(k + 1) * planes.size];
        // Planes are predicted from the exact pixels, so they code
        // independently: in parallel, which keeps large tiles fast.
        let coded: Vec<Vec<u8>> = (0..planes.count)
            .into_par_iter()
            .map(|k| {
                let x = plane(k);
                let ref1 = planes.reference(k).map(plane);
                let ref2 = planes
                    .reference(k)
                    .and_then(|r| planes.reference(r))
                    .map(plane);
                let candidates = candidates(setup.predictor, x, ref1, ref2);
                code_plane(&candidates, x, ref1, ref2, &setup, t, plane_shape)
            })
            .collect::<Result<_, CodecError>>()?;
        let mut out = Vec::with_capacity(1 + coded.iter().map(Vec::len).sum::<usize>());
        out.push(1u8);
        for c in coded {
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError> {
        let t = spec.pixel_type;
        if !self.supports(t) {
            return Err(CodecError::Unsupported(format!(
                "CUBE_1 codes 8-, 16- and 32-bit integers, not BITPIX={}",
                t.bitpix()
            )));
        }
        let setup = setup(spec.params, t, spec.context)?;
        let planes = Planes::new(spec.shape, setup.axis)?;
        let plane_shape = &spec.shape[..setup.axis - 1];
        let (lo, hi, bits) = type_range(t);
        let mut r = Reader { bytes, pos: 0 };
        if r.byte()? != 1 {
            return Err(CodecError::Corrupt(
                "CUBE_1 tile does not start with stream version 1".into(),
            ));
        }
        let mut values: Vec<i32> = Vec::with_capacity(spec.len());
        let inner_spec = TileSpec {
            shape: plane_shape,
            pixel_type: t,
            params: &setup.inner_params,
            context: setup.context,
        };
        let inner_plane = |stream: &[u8]| -> Result<Vec<i64>, CodecError> {
            let p = setup.inner.decode(stream, &inner_spec)?;
            if p.len() != planes.size || p.pixel_type() != t {
                return Err(CodecError::Corrupt(
                    "CUBE_1 inner codec returned a plane of the wrong size or type".into(),
                ));
            }
            from_pixels(&p).ok_or_else(|| CodecError::Corrupt("CUBE_1 inner plane type".into()))
        };
        for k in 0..planes.count {
            let reference = planes.reference(k);
            let prediction = match r.byte()? {
                0 => Prediction::None,
                1 => Prediction::Previous,
                2 => {
                    let (a1, a2, c) = (r.signed()?, r.signed()?, r.signed()?);
                    // unsigned_abs: i64::MIN from a crafted varint must be
                    // refused, not overflow.
                    if a1.unsigned_abs() > MAX_COEF as u64
                        || a2.unsigned_abs() > MAX_COEF as u64
                        || c.unsigned_abs() > MAX_CONST as u64
                    {
                        return Err(CodecError::Corrupt(format!(
                            "CUBE_1 plane {}: linear coefficients out of range",
                            k + 1
                        )));
                    }
                    Prediction::Linear { a1, a2, c }
                }
                b => {
                    return Err(CodecError::Corrupt(format!(
                        "CUBE_1 plane {}: unknown predictor {b}",
                        k + 1
                    )))
                }
            };
            let ref2 = reference.and_then(|r| planes.reference(r));
            let needs_ref2 = matches!(prediction, Prediction::Linear { a2, .. } if a2 != 0);
            if (prediction != Prediction::None && reference.is_none())
                || (needs_ref2 && ref2.is_none())
            {
                return Err(CodecError::Corrupt(format!(
                    "CUBE_1 plane {}: predicted from a plane that does not exist",
                    k + 1
                )));
            }
            let representation = r.byte()?;
            let offset = r.signed()?;
            if offset.unsigned_abs() > 1 << 62 {
                return Err(CodecError::Corrupt("CUBE_1 offset out of range".into()));
            }
            let residual: Vec<i64> = match representation {
                0 => inner_plane(r.stream()?)?
                    .into_iter()
                    .map(|v| v + offset)
                    .collect(),
                1 => {
                    let low = inner_plane(r.stream()?)?;
                    let high = inner_plane(r.stream()?)?;
                    low.into_iter()
                        .zip(high)
                        .map(|(l, h)| {
                            // |offset| <= 2^62 and h - lo < 2^bits, with
                            // bits <= 32 and residuals bounded as encoded:
                            // wrapping keeps a corrupt tile from panicking,
                            // and the range check below rejects it.
                            ((h - lo) << bits).wrapping_add(l - lo).wrapping_add(offset)
                        })
                        .collect()
                }
                b => {
                    return Err(CodecError::Corrupt(format!(
                        "CUBE_1 plane {}: unknown representation {b}",
                        k + 1
                    )))
                }
            };
            let start = values.len();
            let size = planes.size;
            for (i, res) in residual.into_iter().enumerate() {
                let r1 = reference.map(|p| &values[p * size..(p + 1) * size]);
                let r2 = ref2.map(|p| &values[p * size..(p + 1) * size]);
                let v = res.checked_add(predict(prediction, r1, r2, i));
                match v {
                    Some(v) if (lo..=hi).contains(&v) => values.push(v as i32),
                    _ => {
                        return Err(CodecError::Corrupt(format!(
                            "CUBE_1 plane {}: pixel {} decodes out of range",
                            k + 1,
                            i + 1
                        )))
                    }
                }
            }
            debug_assert_eq!(values.len(), start + size);
        }
        if r.pos != bytes.len() {
            return Err(CodecError::Corrupt(format!(
                "CUBE_1 tile has {} bytes after its last plane",
                bytes.len() - r.pos
            )));
        }
        Ok(to_pixels(t, values.into_iter().map(i64::from)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::TestRng as Rng;

    #[test]
    fn residuals_wider_than_two_words_are_never_split_lossily() {
        let mixpred = super::super::find("MIXPRED_1").unwrap();
        let setup = Setup {
            inner: mixpred,
            inner_params: mixpred.encode_params(PixelType::U8, &EncodeOptions::default()),
            axis: DEFAULT_AXIS,
            predictor: Predictor::Auto,
            context: Default::default(),
        };
        let mut rng = Rng(4);
        let x: Vec<i32> = (0..64).map(|_| (rng.next() % 256) as i32).collect();
        let r1: Vec<i32> = (0..64).map(|_| (rng.next() % 256) as i32).collect();
        // A steep prediction: residuals span far more than 16 bits.
        let steep = Prediction::Linear {
            a1: MAX_COEF,
            a2: 0,
            c: 0,
        };
        let r: Vec<i64> = (0..64)
            .map(|i| i64::from(x[i]) - predict(steep, Some(&r1), None, i))
            .collect();
        assert!(!fits_two_words(&r, PixelType::U8));
        let mut out = Vec::new();
        assert!(code_residual(&r, &setup, PixelType::U8, &[8, 8], &mut out).is_err());
        // Offered with Previous, the plane is coded with Previous (tag 1).
        let coded = code_plane(
            &[steep, Prediction::Previous],
            &x,
            Some(&r1),
            None,
            &setup,
            PixelType::U8,
            &[8, 8],
        )
        .unwrap();
        assert_eq!(coded[0], 1);
    }

    fn round_trip(pixels: &Pixels, shape: &[usize], inner: &str, predictor: Predictor) -> usize {
        let codec = super::super::find(inner).unwrap();
        let params = params_for(
            codec,
            pixels.pixel_type(),
            &EncodeOptions::default(),
            DEFAULT_AXIS,
            predictor,
        );
        let spec = TileSpec {
            shape,
            pixel_type: pixels.pixel_type(),
            params: &params,
            context: Default::default(),
        };
        let coded = Cube.encode(pixels, &spec).unwrap();
        let back = Cube.decode(&coded, &spec).unwrap();
        assert!(back.bits_eq(pixels), "{inner} {predictor:?} {shape:?}");
        coded.len()
    }

    /// A ramp: reset level per pixel, then a slowly growing signal.
    fn ramp(nx: usize, ny: usize, groups: usize, ints: usize, seed: u64) -> Vec<i32> {
        let mut rng = Rng(seed);
        let reset: Vec<i32> = (0..nx * ny)
            .map(|_| 10_000 + (rng.next() % 20_000) as i32)
            .collect();
        let mut out = Vec::new();
        for _ in 0..ints {
            for g in 0..groups {
                for (i, &r) in reset.iter().enumerate() {
                    let noise = (rng.next() % 9) as i32 - 4;
                    out.push((r + (g as i32) * (20 + (i % 7) as i32) + noise).min(65_535));
                }
            }
        }
        out
    }

    fn as_u16_stored(v: &[i32]) -> Pixels {
        Pixels::I16(v.iter().map(|&x| (x - 32768) as i16).collect())
    }

    #[test]
    fn ramps_round_trip_and_prediction_pays() {
        for &(nx, ny, g, n) in &[(16, 8, 5, 1), (7, 3, 4, 3), (9, 1, 2, 2), (4, 4, 1, 1)] {
            let v = ramp(nx, ny, g, n, 7 + nx as u64);
            let p = as_u16_stored(&v);
            let shape = [nx, ny, g, n];
            for pred in [Predictor::Auto, Predictor::Previous, Predictor::Linear] {
                round_trip(&p, &shape, "RICE_1", pred);
                round_trip(&p, &shape, "GZIP_2", pred);
            }
        }
        // With the reset level removed the cube codes smaller than its planes.
        let v = ramp(64, 32, 6, 2, 3);
        let p = as_u16_stored(&v);
        let shape = [64, 32, 6, 2];
        let cube = round_trip(&p, &shape, "RICE_1", Predictor::Auto);
        let rice = super::super::find("RICE_1").unwrap();
        let params = rice.encode_params(PixelType::I16, &EncodeOptions::default());
        let plain = rice
            .encode(
                &p,
                &TileSpec {
                    shape: &[64, 32 * 6 * 2],
                    pixel_type: PixelType::I16,
                    params: &params,
                    context: Default::default(),
                },
            )
            .unwrap()
            .len();
        assert!(cube * 3 < plain * 2, "cube {cube} vs planes {plain}");
    }

    #[test]
    fn edge_values_round_trip() {
        // 65535 next to 0 (stored i16 extremes), alternating across planes:
        // differences of ±65535 need 17 bits and force split words.
        let n = 6 * 5;
        let mut v = Vec::new();
        for plane in 0..4 {
            for i in 0..n {
                v.push(if (i + plane) % 2 == 0 {
                    32767i16
                } else {
                    -32768
                });
            }
        }
        let p = Pixels::I16(v);
        for pred in [Predictor::Auto, Predictor::Previous, Predictor::Linear] {
            round_trip(&p, &[6, 5, 4], "RICE_1", pred);
            round_trip(&p, &[6, 5, 2, 2], "GZIP_1", pred);
        }
        // 8-bit and 32-bit extremes.
        let b = Pixels::U8((0..60).map(|i| if i % 3 == 0 { 255 } else { 0 }).collect());
        round_trip(&b, &[5, 4, 3], "RICE_1", Predictor::Previous);
        round_trip(&b, &[5, 4, 3], "RICE_1", Predictor::Linear);
        let w = Pixels::I32(
            (0..60)
                .map(|i| if i % 2 == 0 { i32::MAX } else { i32::MIN })
                .collect(),
        );
        round_trip(&w, &[5, 4, 3], "RICE_1", Predictor::Previous);
        round_trip(&w, &[5, 4, 3], "RICE_1", Predictor::Linear);
        round_trip(&w, &[5, 4, 3], "RICE_1", Predictor::Auto);
        // One plane and a one-pixel plane.
        round_trip(
            &Pixels::I16(vec![5, -7, 9]),
            &[3, 1, 1],
            "RICE_1",
            Predictor::Auto,
        );
        round_trip(
            &Pixels::I16(vec![5, -7, 9]),
            &[1, 1, 3],
            "RICE_1",
            Predictor::Auto,
        );
    }

    #[test]
    fn spectral_planes_pick_a_fitted_linear_predictor() {
        // Plane k = 1.5 × plane k-1 + 100: neither plain nor difference
        // coding removes it; the fitted predictor does.
        let mut rng = Rng(11);
        let base: Vec<i32> = (0..32 * 16).map(|_| (rng.next() % 4000) as i32).collect();
        let mut v = base.clone();
        let mut last = base;
        for _ in 0..3 {
            last = last.iter().map(|&x| x * 3 / 2 + 100).collect();
            v.extend_from_slice(&last);
        }
        let p = Pixels::I32(v);
        let shape = [32, 16, 4];
        let auto = round_trip(&p, &shape, "RICE_1", Predictor::Auto);
        let prev = round_trip(&p, &shape, "RICE_1", Predictor::Previous);
        assert!(auto * 2 < prev, "auto {auto} vs previous {prev}");
    }

    #[test]
    fn damaged_tiles_are_errors_not_panics() {
        let v = ramp(8, 4, 3, 2, 5);
        let p = as_u16_stored(&v);
        let shape = [8, 4, 3, 2];
        let rice = super::super::find("RICE_1").unwrap();
        let params = params_for(
            rice,
            PixelType::I16,
            &EncodeOptions::default(),
            3,
            Predictor::Auto,
        );
        let spec = TileSpec {
            shape: &shape,
            pixel_type: PixelType::I16,
            params: &params,
            context: Default::default(),
        };
        let coded = Cube.encode(&p, &spec).unwrap();
        for cut in 0..coded.len() {
            assert!(Cube.decode(&coded[..cut], &spec).is_err());
        }
        let mut rng = Rng(9);
        for _ in 0..300 {
            let mut bad = coded.clone();
            let i = (rng.next() as usize) % bad.len();
            bad[i] ^= 1 << (rng.next() % 8);
            if let Ok(back) = Cube.decode(&bad, &spec) {
                assert_eq!(back.len(), p.len());
            }
        }
        // The most negative varint (i64::MIN after zigzag) spliced in at
        // every position, over and in place of the bytes there: a crafted
        // coefficient or offset is refused, never an overflow (regression:
        // `abs()` of it panicked).
        let most_negative = [0xFFu8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        for i in 0..coded.len() {
            let mut spliced = coded[..i].to_vec();
            spliced.extend_from_slice(&most_negative);
            spliced.extend_from_slice(&coded[i..]);
            if let Ok(back) = Cube.decode(&spliced, &spec) {
                assert_eq!(back.len(), p.len());
            }
            let mut over = coded.clone();
            for (k, b) in most_negative.iter().enumerate() {
                if let Some(x) = over.get_mut(i + k) {
                    *x = *b;
                }
            }
            if let Ok(back) = Cube.decode(&over, &spec) {
                assert_eq!(back.len(), p.len());
            }
        }
        // Parameters: version, inner codec, axis.
        for (name, value) in [
            ("CUBEVER", ParamValue::Int(2)),
            ("INNER", ParamValue::Text("CUBE_1".into())),
            ("INNER", ParamValue::Text("NOPE".into())),
            ("PREDAXIS", ParamValue::Int(5)),
            ("PREDAXIS", ParamValue::Int(1)),
            ("COEFSHFT", ParamValue::Int(12)),
        ] {
            let mut bad = params.clone();
            bad.set(name, value);
            let spec = TileSpec {
                params: &bad,
                ..spec
            };
            assert!(Cube.decode(&coded, &spec).is_err(), "{name}");
        }
    }

    #[test]
    fn no_registered_codec_uses_cube_parameter_names() {
        for codec in super::super::REGISTRY {
            for t in [PixelType::U8, PixelType::I16, PixelType::I32] {
                for (name, _) in codec.encode_params(t, &EncodeOptions::default()).0 {
                    if codec.id() != "CUBE_1" {
                        assert!(!OWN_PARAMS.contains(&name.as_str()), "{}", codec.id());
                    }
                }
            }
        }
    }
}
