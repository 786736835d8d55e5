//! A codec chosen by a person in one word: `CODEC[,param=value...]`
//! (`JXL_1`, `mixpred`, `jxl,effort=9`), as `fpack-ng shim --write` takes
//! it and passes it on to the cfitsio interposer in the environment.
//!
//! Parsing happens twice, with this one function: by fpack-ng before the
//! program starts (so a typo fails at once, with the list of codecs), and by
//! the preloaded library inside the program. Which parameters a codec takes
//! is learned from the codec itself ([`Codec::encode_params`] reacts to the
//! option), so no codec name is tested here.

use super::{find_by_name, Codec, EncodeOptions, REGISTRY};
use crate::error::CodecError;
use crate::tile::PixelType;

/// The environment variable through which `fpack-ng shim --write` tells the
/// preloaded library which codec cfitsio's lossless writes are to use.
pub const CFITSIO_WRITE_ENV: &str = "FPACKNG_SHIM_WRITE";

/// A parameter people may give after the codec name: its name, what it
/// takes, and how it sets [`EncodeOptions`].
struct Knob {
    name: &'static str,
    takes: &'static str,
    apply: fn(&mut EncodeOptions, &str) -> Result<(), String>,
}

const KNOBS: &[Knob] = &[Knob {
    name: "effort",
    takes: "1..10",
    apply: |o, v| match v.parse::<u32>() {
        Ok(e) if (1..=10).contains(&e) => {
            o.jxl_effort = e;
            Ok(())
        }
        _ => Err(format!("effort takes a number from 1 to 10, not '{v}'")),
    },
}];

/// Whether `knob` changes what `codec` writes (its ZNAMEn/ZVALn), i.e.
/// whether the codec takes it.
fn takes(codec: &dyn Codec, knob: &Knob) -> bool {
    let mut probe = EncodeOptions::default();
    // Any valid value other than the default shows whether the codec reads it.
    for value in ["1", "2"] {
        if (knob.apply)(&mut probe, value).is_ok() && probe != EncodeOptions::default() {
            break;
        }
    }
    PixelType::ALL
        .into_iter()
        .filter(|&t| codec.supports(t))
        .any(|t| {
            codec.encode_params(t, &probe) != codec.encode_params(t, &EncodeOptions::default())
        })
}

/// A codec and the options it is to write with.
#[derive(Clone)]
pub struct CodecChoice {
    pub codec: &'static dyn Codec,
    pub options: EncodeOptions,
}

/// The codecs a program linked with cfitsio can be made to write: those
/// this library encodes that cfitsio does not know and that code one tile
/// on its own (not CUBE_1, whose tiles span planes cfitsio cuts apart).
pub fn writable_through_cfitsio() -> impl Iterator<Item = &'static dyn Codec> {
    REGISTRY
        .iter()
        .copied()
        .filter(|c| c.can_encode() && !c.is_standard() && !c.wraps_inner_codec())
        .filter(|c| !c.stores_uncompressed())
}

impl std::fmt::Debug for CodecChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodecChoice")
            .field("codec", &self.codec.id())
            .field("options", &self.options)
            .finish()
    }
}

impl CodecChoice {
    /// Parses `CODEC[,param=value...]` for writes through cfitsio: the codec
    /// must be one of [`writable_through_cfitsio`], each parameter one it
    /// takes. Errors name what is accepted.
    pub fn parse_for_cfitsio(text: &str) -> Result<CodecChoice, CodecError> {
        let mut parts = text.split(',');
        let name = parts.next().unwrap_or("").trim();
        let list = || {
            writable_through_cfitsio()
                .map(|c| c.id())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let codec = find_by_name(name)
            .filter(|c| writable_through_cfitsio().any(|w| w.id() == c.id()))
            .ok_or_else(|| {
                CodecError::BadParameter(format!(
                    "'{name}' is not a codec cfitsio programs can be made to write (codecs: {})",
                    list()
                ))
            })?;
        let mut options = EncodeOptions::default();
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                CodecError::BadParameter(format!(
                    "'{part}': parameters are written name=value, after the codec and a comma"
                ))
            })?;
            let key = key.trim().to_ascii_lowercase();
            let accepted: Vec<&Knob> = KNOBS.iter().filter(|k| takes(codec, k)).collect();
            let knob = accepted.iter().find(|k| k.name == key).ok_or_else(|| {
                let what = if accepted.is_empty() {
                    "no parameters".to_string()
                } else {
                    accepted
                        .iter()
                        .map(|k| format!("{}={}", k.name, k.takes))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                CodecError::BadParameter(format!(
                    "{} has no parameter '{key}' (it takes {what})",
                    codec.id()
                ))
            })?;
            (knob.apply)(&mut options, value.trim())
                .map_err(|m| CodecError::BadParameter(format!("{}: {m}", codec.id())))?;
        }
        Ok(CodecChoice { codec, options })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parameters_and_refusals() {
        let c = CodecChoice::parse_for_cfitsio("jxl,effort=9").unwrap();
        assert_eq!((c.codec.id(), c.options.jxl_effort), ("JXL_1", 9));
        assert_eq!(
            CodecChoice::parse_for_cfitsio("MIXPRED_1")
                .unwrap()
                .codec
                .id(),
            "MIXPRED_1"
        );
        for (bad, says) in [
            ("NOSUCH_1", "JXL_1"),
            ("RICE_1", "MIXPRED_1"),
            ("CUBE_1", "codecs:"),
            ("mixpred,effort=3", "no parameters"),
            ("jxl,speed=3", "effort=1..10"),
            ("jxl,effort=11", "1 to 10"),
            ("jxl,effort", "name=value"),
        ] {
            let e = CodecChoice::parse_for_cfitsio(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
