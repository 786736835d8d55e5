//! PLIO_1: IRAF's pixel-list ("line list") run-length encoding (FITS 4.0
//! §10.4.3), as cfitsio writes it.
//!
//! It exists for masks and other images of small non-negative integers with
//! long constant runs, where it beats every other codec of the standard.
//!
//! Invariants this module keeps:
//! - The stream is a list of signed 16-bit words; [`Codec::encode`] returns
//!   and [`Codec::decode`] takes them as big-endian bytes (heap element 'I').
//! - One tile is one line list covering all `spec.len()` pixels in storage
//!   order, whatever the tile's shape (cfitsio does the same).
//! - Only values 0..=2^24-1 can be coded; anything else is refused on encode
//!   rather than silently clipped.
//! - Encoded words equal cfitsio's, except where cfitsio's encoder is
//!   wrong: a zero run whose last 4095-pixel chunk is full, followed by a
//!   single pixel, overflows cfitsio's combined "zeros then one pixel"
//!   instruction and loses those zeros. We emit two instructions instead.
//! - Decoding follows cfitsio's interpreter instruction by instruction but
//!   checks every index: the declared list length must fit in the input,
//!   output is written only inside the tile, and each instruction consumes a
//!   word, so work and memory are bounded by input size and tile size.
//!
//! Word layout: the top 4 bits are the opcode, the low 12 bits the data.
//! A 7-word header gives the format (word 3 = -100), the header length
//! (word 2) and the total list length (words 4 and 5, 15 bits each).

use super::{Codec, TileSpec};
use crate::error::CodecError;
use crate::tile::{PixelType, Pixels};

pub struct Plio;

/// The largest value a line list can hold.
pub const MAX_VALUE: i32 = (1 << 24) - 1;

const HEADER_WORDS: usize = 7;
/// Longest run or value step one instruction can carry.
const MAX_DATA: usize = 4095;

// Opcodes (shifted into the top 4 bits of a word).
const OP_ZEROS: u16 = 0;
const OP_SET_HIGH: u16 = 1;
const OP_INCREASE: u16 = 2;
const OP_DECREASE: u16 = 3;
const OP_RUN: u16 = 4;
const OP_ZEROS_THEN_PIXEL: u16 = 5;
const OP_INCREASE_AND_STORE: u16 = 6;
const OP_DECREASE_AND_STORE: u16 = 7;

fn word(opcode: u16, data: usize) -> u16 {
    (opcode << 12) | data as u16
}

impl Codec for Plio {
    fn is_standard(&self) -> bool {
        true
    }

    fn id(&self) -> &'static str {
        "PLIO_1"
    }

    fn short_names(&self) -> &'static [&'static str] {
        &["plio"]
    }

    fn description(&self) -> &'static str {
        "IRAF PLIO run-length coding of non-negative integers below 2^24 (FITS standard)"
    }

    /// cfitsio codes unsigned 16-bit images' physical values: PLIO_1 holds
    /// no negative values.
    fn codes_unsigned_16_physically(&self) -> bool {
        true
    }

    fn heap_element(&self) -> char {
        'I'
    }

    fn supports(&self, pixel_type: PixelType) -> bool {
        matches!(pixel_type, PixelType::U8 | PixelType::I16 | PixelType::I32)
    }

    fn encode(&self, pixels: &Pixels, spec: &TileSpec) -> Result<Vec<u8>, CodecError> {
        let values: Vec<i32> = match pixels {
            Pixels::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
            Pixels::I16(v) => v.iter().map(|&x| i32::from(x)).collect(),
            Pixels::I32(v) => v.clone(),
            other => {
                return Err(CodecError::Unsupported(format!(
                    "PLIO_1 codes integer pixels, not {:?}",
                    other.pixel_type()
                )))
            }
        };
        if values.len() != spec.len() {
            return Err(CodecError::Unsupported(format!(
                "tile has {} pixels but its shape holds {}",
                values.len(),
                spec.len()
            )));
        }
        if let Some((i, v)) = values
            .iter()
            .enumerate()
            .find(|(_, &v)| !(0..=MAX_VALUE).contains(&v))
        {
            return Err(CodecError::Unsupported(format!(
                "PLIO_1 can only code pixel values 0..={MAX_VALUE} (2^24-1); pixel {i} of the tile is {v}"
            )));
        }
        let words = encode_line_list(&values);
        Ok(words.iter().flat_map(|w| w.to_be_bytes()).collect())
    }

    fn decode(&self, bytes: &[u8], spec: &TileSpec) -> Result<Pixels, CodecError> {
        if !bytes.len().is_multiple_of(2) {
            return Err(CodecError::Corrupt(
                "PLIO_1 stream has an odd number of bytes".into(),
            ));
        }
        let values = decode_line_list(bytes, spec.len())?;
        let out_of_range = |i: usize, v: i32| {
            CodecError::Corrupt(format!(
                "pixel {i} decodes to {v}, outside the range of {:?}",
                spec.pixel_type
            ))
        };
        match spec.pixel_type {
            PixelType::I32 => Ok(Pixels::I32(values)),
            PixelType::I16 => values
                .iter()
                .enumerate()
                .map(|(i, &v)| i16::try_from(v).map_err(|_| out_of_range(i, v)))
                .collect::<Result<_, _>>()
                .map(Pixels::I16),
            PixelType::U8 => values
                .iter()
                .enumerate()
                .map(|(i, &v)| u8::try_from(v).map_err(|_| out_of_range(i, v)))
                .collect::<Result<_, _>>()
                .map(Pixels::U8),
            other => Err(CodecError::Unsupported(format!(
                "PLIO_1 decodes to 8-, 16- or 32-bit integers, not {other:?}"
            ))),
        }
    }
}

/// Encode non-negative values (already range-checked) as a line list.
///
/// The list is a sequence of segments, each a (possibly empty) run of zeros
/// followed by a run of one nonzero value, plus trailing zeros. The decoder
/// keeps a "current value" register starting at 1; value changes are sent
/// as steps from it.
fn encode_line_list(values: &[i32]) -> Vec<u16> {
    let mut out = vec![0u16; HEADER_WORDS];
    if values.is_empty() {
        return Vec::new();
    }
    let mut register: i32 = 1;
    let mut i = 0;
    while i < values.len() {
        let zeros = values[i..].iter().take_while(|&&v| v == 0).count();
        i += zeros;
        if i == values.len() {
            push_runs(&mut out, OP_ZEROS, zeros);
            break;
        }
        let value = values[i];
        let run = values[i..].iter().take_while(|&&v| v == value).count();
        i += run;
        emit_segment(&mut out, &mut register, zeros, value, run);
    }
    let len = out.len();
    out[1] = HEADER_WORDS as u16;
    out[2] = (-100i16) as u16;
    out[3] = (len % 32768) as u16;
    out[4] = (len / 32768) as u16;
    out
}

fn push_runs(out: &mut Vec<u16>, opcode: u16, mut count: usize) {
    while count > 0 {
        let chunk = count.min(MAX_DATA);
        out.push(word(opcode, chunk));
        count -= chunk;
    }
}

/// `zeros` zero pixels then `run` pixels of `value` (> 0), in the
/// instructions cfitsio chooses: single pixels are folded into the value
/// step or the zero run when the instruction set allows.
fn emit_segment(out: &mut Vec<u16>, register: &mut i32, zeros: usize, value: i32, run: usize) {
    let step = value - *register;
    if step != 0 {
        *register = value;
        if step.unsigned_abs() as usize > MAX_DATA {
            out.push(word(OP_SET_HIGH, (value & 0xfff) as usize));
            out.push((value >> 12) as u16);
        } else {
            let (opcode, store_opcode) = if step > 0 {
                (OP_INCREASE, OP_INCREASE_AND_STORE)
            } else {
                (OP_DECREASE, OP_DECREASE_AND_STORE)
            };
            let magnitude = step.unsigned_abs() as usize;
            if run == 1 && zeros == 0 {
                out.push(word(store_opcode, magnitude));
                return;
            }
            out.push(word(opcode, magnitude));
        }
    }
    if zeros > 0 {
        push_runs(out, OP_ZEROS, zeros);
        let last_chunk = zeros - (zeros - 1) / MAX_DATA * MAX_DATA;
        if run == 1 && last_chunk < MAX_DATA {
            // The final zero chunk plus the pixel fit one instruction.
            if let Some(last) = out.last_mut() {
                *last = word(OP_ZEROS_THEN_PIXEL, last_chunk + 1);
            }
            return;
        }
    }
    push_runs(out, OP_RUN, run);
}

/// Interpret a line list (big-endian words in `bytes`) into `npix` pixels.
/// Pixels the list does not reach are 0, as in cfitsio.
fn decode_line_list(bytes: &[u8], npix: usize) -> Result<Vec<i32>, CodecError> {
    let word_count = bytes.len() / 2;
    // Word indices below are 0-based; the format documents them 1-based.
    let at = |i: usize| match bytes.get(2 * i..2 * i + 2) {
        Some(&[hi, lo]) => Ok(i32::from(i16::from_be_bytes([hi, lo]))),
        _ => Err(CodecError::Truncated),
    };
    let (length, first) = if at(2)? > 0 {
        // Old format: word 3 is the length and the header is 3 words.
        (at(2)? as i64, 3i64)
    } else {
        (
            (i64::from(at(4)?) << 15) + i64::from(at(3)?),
            i64::from(at(1)?),
        )
    };
    if length <= 0 {
        return Err(CodecError::Corrupt(format!(
            "line list declares length {length}"
        )));
    }
    if first < 0 {
        return Err(CodecError::Corrupt(format!(
            "line list header length {first} is negative"
        )));
    }
    let length = length as usize;
    if length > word_count {
        return Err(CodecError::Truncated);
    }
    let mut out = vec![0i32; npix];
    let mut x = 0usize;
    let mut value: i32 = 1;
    let mut ip = first as usize;
    while ip < length && x < npix {
        let w = at(ip)?;
        ip += 1;
        // Division truncating toward zero, as in the reference: negative
        // words above -4096 act as zero runs, lower ones are ignored.
        let opcode = w / 4096;
        let data = (w & 0xfff) as usize;
        match opcode {
            0 | 4 | 5 => {
                let end = x.saturating_add(data);
                if opcode == 4 {
                    out[x..end.min(npix)].fill(value);
                }
                if opcode == 5 && data > 0 && end <= npix {
                    out[end - 1] = value;
                }
                x = end;
            }
            1 => {
                // The high bits travel in the next word, which is skipped.
                let high = at(ip)?;
                ip += 1;
                value = (high << 12) + data as i32;
            }
            2 => value = value.wrapping_add(data as i32),
            3 => value = value.wrapping_sub(data as i32),
            6 | 7 => {
                value = if opcode == 6 {
                    value.wrapping_add(data as i32)
                } else {
                    value.wrapping_sub(data as i32)
                };
                if let Some(slot) = out.get_mut(x) {
                    *slot = value;
                }
                x += 1;
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Params;

    use crate::test_rng::TestRng;

    fn round_trip(values: &[i32], shape: &[usize]) -> Vec<u8> {
        let params = Params::new();
        let spec = TileSpec {
            shape,
            pixel_type: PixelType::I32,
            params: &params,
            context: Default::default(),
        };
        let bytes = Plio
            .encode(&Pixels::I32(values.to_vec()), &spec)
            .expect("encode");
        assert_eq!(
            Plio.decode(&bytes, &spec).expect("decode"),
            Pixels::I32(values.to_vec())
        );
        bytes
    }

    /// Runs of random lengths and values, the shape PLIO is made for.
    fn runs(
        rng: &mut TestRng,
        n: usize,
        max_run: i64,
        max_value: i64,
        zero_bias: bool,
    ) -> Vec<i32> {
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let len = rng.range(1, max_run) as usize;
            let value = if zero_bias && rng.next().is_multiple_of(2) {
                0
            } else {
                rng.range(0, max_value) as i32
            };
            v.extend(std::iter::repeat_n(value, len.min(n - v.len())));
        }
        v
    }

    #[test]
    fn round_trips_random_runs_and_odd_shapes() {
        let mut rng = TestRng(11);
        for shape in [[1usize, 1], [1, 50], [50, 1], [3, 5], [100, 7], [9000, 2]] {
            let n = shape[0] * shape[1];
            for (max_run, max_value) in [
                (1, 3),
                (5, 10),
                (50, 5000),
                (9000, 200),
                (3, MAX_VALUE as i64),
            ] {
                let v = runs(&mut rng, n, max_run, max_value, true);
                round_trip(&v, &shape);
            }
            let noise: Vec<i32> = (0..n)
                .map(|_| rng.range(0, MAX_VALUE as i64) as i32)
                .collect();
            round_trip(&noise, &shape);
        }
    }

    #[test]
    fn round_trips_edge_values_and_long_runs() {
        for v in [0, 1, 4095, 4096, 4097, 8191, MAX_VALUE] {
            for n in [1usize, 2, 4095, 4096, 4097, 8190, 8191, 12000] {
                round_trip(&vec![v; n], &[n]);
            }
        }
        // Every zero-run length around the 4095 chunk size, then one pixel:
        // the case where cfitsio's encoder loses pixels.
        for zeros in [4094usize, 4095, 4096, 8189, 8190, 8191] {
            let mut v = vec![0; zeros];
            v.push(7);
            v.extend([0, 0, 9, 9]);
            round_trip(&v, &[v.len()]);
        }
        // Steps just inside and outside the 12-bit step range.
        round_trip(&[1, 4096, 1, 4097, 2, 5000, 903, MAX_VALUE, 0, 1], &[10]);
    }

    #[test]
    fn matches_known_cfitsio_words() {
        // Hand-checked against pl_p2li: header, 3 zeros then one 5
        // (increase by 4, then "3 zeros and a pixel"), a run of two 5s.
        let bytes = round_trip(&[0, 0, 0, 5, 5, 5], &[6]);
        let words: Vec<u16> = bytes
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(
            words,
            vec![0, 7, 0xff9c, 10, 0, 0, 0, 0x2004, 0x0003, 0x4003]
        );
        assert_eq!(Plio.heap_element(), 'I');
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let params = Params::new();
        let spec = TileSpec {
            shape: &[3],
            pixel_type: PixelType::I32,
            params: &params,
            context: Default::default(),
        };
        for bad in [-1, MAX_VALUE + 1, i32::MIN] {
            let err = Plio
                .encode(&Pixels::I32(vec![0, bad, 0]), &spec)
                .unwrap_err();
            assert!(
                matches!(err, CodecError::Unsupported(ref m) if m.contains("2^24")),
                "{err}"
            );
        }
        let spec16 = TileSpec {
            shape: &[2],
            pixel_type: PixelType::I16,
            params: &params,
            context: Default::default(),
        };
        assert!(Plio.encode(&Pixels::I16(vec![3, -3]), &spec16).is_err());
    }

    #[test]
    fn narrow_outputs_check_range() {
        let params = Params::new();
        let spec32 = TileSpec {
            shape: &[4],
            pixel_type: PixelType::I32,
            params: &params,
            context: Default::default(),
        };
        let bytes = Plio
            .encode(&Pixels::I32(vec![0, 255, 300, 40000]), &spec32)
            .unwrap();
        let spec8 = TileSpec {
            shape: &[4],
            pixel_type: PixelType::U8,
            params: &params,
            context: Default::default(),
        };
        assert!(matches!(
            Plio.decode(&bytes, &spec8),
            Err(CodecError::Corrupt(_))
        ));
        let spec16 = TileSpec {
            shape: &[4],
            pixel_type: PixelType::I16,
            params: &params,
            context: Default::default(),
        };
        assert!(matches!(
            Plio.decode(&bytes, &spec16),
            Err(CodecError::Corrupt(_))
        ));
        let small = Plio
            .encode(&Pixels::U8(vec![0, 255, 3, 3]), &spec8)
            .unwrap();
        assert_eq!(
            Plio.decode(&small, &spec8).unwrap(),
            Pixels::U8(vec![0, 255, 3, 3])
        );
        assert_eq!(
            Plio.decode(&small, &spec16).unwrap(),
            Pixels::I16(vec![0, 255, 3, 3])
        );
    }

    #[test]
    fn old_format_header_is_read() {
        // Length in word 3, instructions from word 4: a run of three 1s.
        let words: [u16; 4] = [0, 0, 4, 0x4003];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let params = Params::new();
        let spec = TileSpec {
            shape: &[5],
            pixel_type: PixelType::I32,
            params: &params,
            context: Default::default(),
        };
        assert_eq!(
            Plio.decode(&bytes, &spec).unwrap(),
            Pixels::I32(vec![1, 1, 1, 0, 0])
        );
    }

    #[test]
    fn damaged_streams_never_panic() {
        let mut rng = TestRng(12);
        let params = Params::new();
        for n in [1usize, 17, 500, 5000] {
            let shape = [n];
            let spec = TileSpec {
                shape: &shape,
                pixel_type: PixelType::I32,
                params: &params,
                context: Default::default(),
            };
            let values = runs(&mut rng, n, 40, 70000, true);
            let bytes = Plio.encode(&Pixels::I32(values), &spec).unwrap();
            for cut in 0..=bytes.len() {
                if let Ok(p) = Plio.decode(&bytes[..cut], &spec) {
                    assert_eq!(p.len(), n);
                }
            }
            for _ in 0..500 {
                let mut bad = bytes.clone();
                for _ in 0..rng.range(1, 4) {
                    let i = rng.range(0, bad.len() as i64 - 1) as usize;
                    bad[i] ^= 1 << rng.range(0, 7);
                }
                if let Ok(p) = Plio.decode(&bad, &spec) {
                    assert_eq!(p.len(), n);
                }
            }
            for _ in 0..200 {
                let garbage: Vec<u8> = (0..rng.range(0, 64) * 2)
                    .map(|_| rng.next() as u8)
                    .collect();
                if let Ok(p) = Plio.decode(&garbage, &spec) {
                    assert_eq!(p.len(), n);
                }
            }
        }
        let spec = TileSpec {
            shape: &[4],
            pixel_type: PixelType::I32,
            params: &params,
            context: Default::default(),
        };
        assert!(matches!(
            Plio.decode(&[0, 0, 0], &spec),
            Err(CodecError::Corrupt(_))
        ));
        assert!(matches!(
            Plio.decode(&[], &spec),
            Err(CodecError::Truncated)
        ));
    }
}
