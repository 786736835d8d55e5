//! Arbitrary bytes as a (compressed) FITS file through the whole decoder:
//! `cargo +nightly fuzz run decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fpackng_fuzz::decode_file(data);
});
