//! PCNN_1 through the command-line tools: every corpus frame and fixture
//! round trips bit for bit (MSB/LSB split, and the 1×16-bit coding on the
//! fixtures); the output does not depend on thread counts or on the
//! encoder's batch size; a missing model, a wrong model hash and damaged
//! tiles are clear errors that write nothing.

mod roundtrip_common;

use roundtrip_common::{a_frame, fixture, fpack, funpack, images, ok, scratch, Neural};

fn pcnn() -> Neural {
    Neural {
        tag: "pcnn",
        flags: &["-n", "pixelcnn"],
        zcmptype: "PCNN_1",
        model_file: "pcnn-small-v1.pcnm",
        default_sha: fpackng::neural::pcnn::store::default_model().sha256.clone(),
    }
}

#[test]
fn every_corpus_frame_and_fixture_round_trips_through_pcnn() {
    roundtrip_common::corpus_and_fixtures_round_trip("pcnn", &["-n", "pixelcnn"], "PCNN_1");
}

#[test]
fn sixteen_bit_coding_round_trips_and_is_listed() {
    let work = scratch("pcnn16");
    for name in [
        "uint16.fits",
        "bitpix16.fits",
        "bitpix8.fits",
        "cube3d.fits",
    ] {
        let listing = roundtrip_common::round_trip(
            &fixture(name),
            &["-n", "pixelcnn", "--pcnn-coding", "16"],
            &work,
        )
        .unwrap();
        if name != "bitpix8.fits" {
            assert!(listing.contains("coding=16bit"), "{name}: {listing}");
        }
    }
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn output_does_not_depend_on_thread_counts() {
    roundtrip_common::output_does_not_depend_on_thread_counts(&pcnn());
}

#[test]
fn output_does_not_depend_on_the_encoder_batch() {
    let work = scratch("pcnn-batch");
    let src = a_frame();
    let mut first: Option<Vec<u8>> = None;
    for batch in ["0", "1", "7", "100000"] {
        let out = work.join(format!("b{batch}.fz"));
        ok(
            fpack()
                .args(["-n", "pixelcnn", "--pcnn-batch", batch, "-O"])
                .arg(&out)
                .arg(&src)
                .output()
                .unwrap(),
            "fpack-ng -n pixelcnn --pcnn-batch",
        );
        let bytes = std::fs::read(&out).unwrap();
        match &first {
            None => first = Some(bytes),
            Some(f) => assert!(*f == bytes, "batch {batch} gave a different file"),
        }
    }
    let back = work.join("back.fits");
    ok(
        funpack()
            .arg("-O")
            .arg(&back)
            .arg(work.join("b7.fz"))
            .output()
            .unwrap(),
        "funpack-ng",
    );
    assert!(images(&back) == images(&src));
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn missing_or_wrong_models_and_damaged_tiles_are_clean_errors() {
    roundtrip_common::missing_or_wrong_models_and_damaged_tiles_are_clean_errors(&pcnn());
}
