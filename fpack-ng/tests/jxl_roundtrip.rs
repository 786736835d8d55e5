//! JXL_1 round trips: every corpus frame and every fixture through
//! `fpack-ng --jxl` and `funpack-ng` must come back bit for bit.

mod roundtrip_common;

#[test]
fn every_corpus_frame_and_fixture_round_trips_through_jxl() {
    roundtrip_common::corpus_and_fixtures_round_trip("jxl", &["--jxl"], "JXL_1");
}
