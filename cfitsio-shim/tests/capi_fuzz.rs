//! Fuzzes the C API with random arguments and damaged tiles: every call must
//! return an error code (or succeed with correct output), never panic, hang
//! or write outside the buffers it was given. Runs over every codec of the
//! registry, the new ones and the standard ones alike. The random generator
//! is seeded, so a failure is reproducible; set FPACKNG_FUZZ_ROUNDS for more.

use std::ffi::{c_char, c_void, CString};

use fpackng::codec::REGISTRY;
use fpackng_shim::capi::*;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const GUARD: u8 = 0xA5;

fn default_params(name: &CString, bitpix: i32) -> Vec<Param> {
    let mut params = vec![
        Param {
            name: [0; 72],
            kind: 0,
            int_value: 0,
            float_value: 0.0,
            text_value: [0; 72]
        };
        32
    ];
    let mut count = 0usize;
    // Safety: valid pointers and capacity.
    let rc = unsafe {
        fpng_default_params(
            name.as_ptr(),
            bitpix,
            params.as_mut_ptr(),
            params.len(),
            &mut count,
        )
    };
    if rc != 0 {
        return Vec::new();
    }
    params.truncate(count);
    params
}

fn encode(
    name: &CString,
    bitpix: i32,
    shape: &[usize],
    params: &[Param],
    pixels: &[u8],
) -> Result<Vec<u8>, i32> {
    let mut out = vec![0u8; pixels.len() * 2 + 4096];
    let mut size = 0usize;
    // Safety: every pointer is valid for the size given with it.
    let rc = unsafe {
        fpng_encode_tile(
            name.as_ptr(),
            bitpix,
            shape.as_ptr(),
            shape.len(),
            params.as_ptr(),
            params.len(),
            pixels.as_ptr().cast::<c_void>(),
            pixels.len(),
            out.as_mut_ptr(),
            out.len(),
            &mut size,
        )
    };
    if rc != 0 {
        return Err(rc);
    }
    out.truncate(size);
    Ok(out)
}

/// Decodes into a buffer with guard bytes after it; checks they survive.
fn decode(
    name: &CString,
    bitpix: i32,
    shape: &[usize],
    params: &[Param],
    data: &[u8],
    size: usize,
) -> (i32, Vec<u8>) {
    let mut out = vec![GUARD; size + 64];
    // Safety: every pointer is valid for the size given with it.
    let rc = unsafe {
        fpng_decode_tile(
            name.as_ptr(),
            bitpix,
            shape.as_ptr(),
            shape.len(),
            params.as_ptr(),
            params.len(),
            data.as_ptr(),
            data.len(),
            out.as_mut_ptr().cast::<c_void>(),
            size,
        )
    };
    assert!(
        out[size..].iter().all(|&b| b == GUARD),
        "decode wrote past its buffer"
    );
    out.truncate(size);
    (rc, out)
}

#[test]
fn round_trips_and_damaged_tiles_for_every_codec() {
    let rounds: u64 = std::env::var("FPACKNG_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for codec in REGISTRY {
        let name = CString::new(codec.id()).unwrap();
        let mut round_trips = 0;
        for bitpix in [8, 16, 32, 64, -32, -64] {
            let pixel_type = fpackng::tile::PixelType::from_bitpix(bitpix).unwrap();
            if !codec.supports(pixel_type) || !codec.can_encode() {
                continue;
            }
            let params = default_params(&name, bitpix as i32);
            for _ in 0..rounds {
                // Three axes, so that codecs coding planes together
                // (CUBE_1) are exercised as well as the 2-D ones.
                let shape = [
                    1 + rng.below(70) as usize,
                    1 + rng.below(40) as usize,
                    1 + rng.below(4) as usize,
                ];
                let bytes = shape.iter().product::<usize>() * pixel_type.size();
                let bits = 1 + rng.below(14);
                let spread = 1 + rng.below(1 << bits);
                let pixels: Vec<u8> = match pixel_type {
                    fpackng::tile::PixelType::U8 => (0..bytes)
                        .map(|_| rng.below(spread.min(256)) as u8)
                        .collect(),
                    fpackng::tile::PixelType::I16 => (0..bytes / 2)
                        .flat_map(|_| {
                            ((rng.below(spread) as i64 - (spread / 2) as i64) as i16).to_ne_bytes()
                        })
                        .collect(),
                    fpackng::tile::PixelType::I32 => (0..bytes / 4)
                        .flat_map(|_| {
                            ((rng.below(spread) as i64 - (spread / 2) as i64) as i32).to_ne_bytes()
                        })
                        .collect(),
                    fpackng::tile::PixelType::I64 => (0..bytes / 8)
                        .flat_map(|_| {
                            (rng.below(spread) as i64 - (spread / 2) as i64).to_ne_bytes()
                        })
                        .collect(),
                    fpackng::tile::PixelType::F32 => (0..bytes / 4)
                        .flat_map(|_| (rng.below(spread) as f32 * 0.25).to_ne_bytes())
                        .collect(),
                    fpackng::tile::PixelType::F64 => (0..bytes / 8)
                        .flat_map(|_| (rng.below(spread) as f64 * 0.125).to_ne_bytes())
                        .collect(),
                };
                let coded = match encode(&name, bitpix as i32, &shape, &params, &pixels) {
                    Ok(c) => c,
                    // HCOMPRESS_1 refuses some shapes: an error code is the contract.
                    Err(rc) => {
                        assert!(rc < 0);
                        continue;
                    }
                };
                let (rc, back) = decode(&name, bitpix as i32, &shape, &params, &coded, bytes);
                assert_eq!(rc, 0, "{} BITPIX {bitpix} {shape:?}", codec.id());
                assert!(
                    back == pixels,
                    "{} BITPIX {bitpix} {shape:?}: round trip differs",
                    codec.id()
                );
                round_trips += 1;

                // Damaged tiles: truncations, flipped bytes, random garbage.
                for _ in 0..6 {
                    let mut damaged = coded.clone();
                    match rng.below(3) {
                        0 => damaged.truncate(rng.below(coded.len() as u64) as usize),
                        1 if !damaged.is_empty() => {
                            let i = rng.below(damaged.len() as u64) as usize;
                            damaged[i] ^= 1 + rng.below(255) as u8;
                        }
                        _ => damaged = (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
                    }
                    let (rc, _) = decode(&name, bitpix as i32, &shape, &params, &damaged, bytes);
                    assert!(rc <= 0, "{} returned {rc}", codec.id());
                }
                // A decoder told a different shape or type must fail cleanly.
                let other = [shape[1], shape[0] + 1, shape[2]];
                let size = other.iter().product::<usize>() * pixel_type.size();
                let (rc, _) = decode(&name, bitpix as i32, &other, &params, &coded, size);
                assert!(rc <= 0);
            }
        }
        assert!(
            !codec.can_encode() || round_trips >= rounds,
            "{}: only {round_trips} round trips",
            codec.id()
        );
    }
}

#[test]
fn random_arguments_never_crash() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let names: Vec<CString> = REGISTRY
        .iter()
        .map(|c| CString::new(c.id()).unwrap())
        .chain(
            ["", "JXL_2", "rice_one", "GZIP_1 "]
                .iter()
                .map(|s| CString::new(*s).unwrap()),
        )
        .collect();
    let garbage: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    for _ in 0..3000 {
        let name = &names[rng.below(names.len() as u64) as usize];
        let name_ptr: *const c_char = if rng.below(20) == 0 {
            std::ptr::null()
        } else {
            name.as_ptr()
        };
        let bitpix = [8, 16, 32, 64, -32, -64, 0, 7, -16, i32::MIN][rng.below(10) as usize];
        let ndim = rng.below(4) as usize;
        let shape: Vec<usize> = (0..ndim)
            .map(|_| match rng.below(8) {
                0 => 0,
                1 => usize::MAX,
                2 => 1 << 33,
                _ => 1 + rng.below(50) as usize,
            })
            .collect();
        let shape_ptr = if rng.below(15) == 0 {
            std::ptr::null()
        } else {
            shape.as_ptr()
        };
        let mut params = vec![
            Param {
                name: [0; 72],
                kind: 0,
                int_value: 0,
                float_value: 0.0,
                text_value: [0; 72]
            };
            rng.below(4) as usize
        ];
        for p in &mut params {
            let names = [
                "JXLVER",
                "OFFSET",
                "EFFORT",
                "BLOCKSIZE",
                "BYTEPIX",
                "SCALE",
                "SMOOTH",
                "NOISEBIT",
            ];
            let pick = names[rng.below(names.len() as u64) as usize];
            for (d, s) in p.name.iter_mut().zip(pick.bytes()) {
                *d = s as c_char;
            }
            p.kind = rng.below(5) as i32;
            p.int_value = [0, 1, -1, 7, 32768, i64::MAX, i64::MIN][rng.below(7) as usize];
            p.float_value = [0.0, 1.5, f64::NAN, f64::INFINITY, -3.0][rng.below(5) as usize];
            if rng.below(10) == 0 {
                p.text_value = [b'A' as c_char; 72];
            }
        }
        let data_len = rng.below(garbage.len() as u64) as usize;
        let out_size = rng.below(20_000) as usize;
        let mut out = vec![GUARD; out_size + 64];
        // Safety: every non-null pointer is valid for the size given with it.
        let rc = unsafe {
            fpng_decode_tile(
                name_ptr,
                bitpix,
                shape_ptr,
                shape.len(),
                params.as_ptr(),
                params.len(),
                garbage.as_ptr(),
                data_len,
                out.as_mut_ptr().cast::<c_void>(),
                out_size,
            )
        };
        assert!(rc <= 0);
        assert!(
            out[out_size..].iter().all(|&b| b == GUARD),
            "wrote past the buffer"
        );
        let mut size = 0usize;
        let in_len = rng.below(2048) as usize;
        // Safety: as above.
        let rc = unsafe {
            fpng_encode_tile(
                name_ptr,
                bitpix,
                shape_ptr,
                shape.len(),
                params.as_ptr(),
                params.len(),
                garbage.as_ptr().cast::<c_void>(),
                in_len,
                out.as_mut_ptr(),
                out_size,
                &mut size,
            )
        };
        assert!(rc <= 0);
        assert!(
            out[out_size..].iter().all(|&b| b == GUARD),
            "wrote past the buffer"
        );
        if rc == 0 {
            assert!(size <= out_size);
        }
        let mut message = [0 as c_char; 8];
        // Safety: 8 writable bytes.
        let full = unsafe { fpng_last_error(message.as_mut_ptr(), message.len()) };
        assert_eq!(
            rc != 0,
            full > 0,
            "an error without a message, or a message without an error"
        );
        assert!(message.contains(&0));
    }
}
