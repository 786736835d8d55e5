//! Arbitrary bytes as one compressed tile for every codec of the registry:
//! `fuzz/run-stable.sh codec_tile SECONDS` (stable Rust).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fpackng_fuzz::decode_tile(data);
});
