//! IDF_1 through the command-line tools: every corpus frame and fixture
//! round trips bit for bit; the output does not depend on thread counts; a
//! missing model, a wrong model hash and a damaged tile are clear errors that
//! write nothing (the checks live in roundtrip_common, shared with PCNN_1).

mod roundtrip_common;

use roundtrip_common::Neural;

fn idf() -> Neural {
    Neural {
        tag: "idf",
        flags: &["-n", "idf"],
        zcmptype: "IDF_1",
        model_file: "idf16-small-v1.idfm",
        default_sha: fpackng::neural::store::default_model().sha256.clone(),
    }
}

#[test]
fn every_corpus_frame_and_fixture_round_trips_through_idf() {
    roundtrip_common::corpus_and_fixtures_round_trip("idf", &["-n", "idf"], "IDF_1");
}

#[test]
fn output_does_not_depend_on_thread_counts() {
    roundtrip_common::output_does_not_depend_on_thread_counts(&idf());
}

#[test]
fn missing_or_wrong_models_and_damaged_tiles_are_clean_errors() {
    roundtrip_common::missing_or_wrong_models_and_damaged_tiles_are_clean_errors(&idf());
}
