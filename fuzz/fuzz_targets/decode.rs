//! Arbitrary bytes as a (compressed) FITS file through the whole decoder:
//! `fuzz/run-stable.sh decode SECONDS` (stable Rust).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fpackng_fuzz::decode_file(data);
});
