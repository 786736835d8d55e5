//! MIXPRED_1 through the command line: every corpus frame and fixture
//! round trips bit for bit (8-, 16- and 32-bit frames are all coded as
//! MIXPRED_1, none falls back), odd tile shapes, identical files from 1 and
//! 2 threads, `--codec` naming it, and damaged tiles named in clean errors.

mod roundtrip_common;

use roundtrip_common::*;

#[test]
fn every_corpus_frame_and_fixture_round_trips_through_mixpred() {
    roundtrip_common::corpus_and_fixtures_round_trip("mixpred", &["--mix"], "MIXPRED_1");
}

#[test]
fn a_real_frame_round_trips_with_odd_tiles_and_any_thread_count() {
    let work = scratch("mixpred-tiles");
    let src = a_frame();
    for tiles in ["1,1000", "1000,1", "3,5", "100000,100000"] {
        round_trip(&src, &["--mix", "-t", tiles], &work).unwrap();
    }
    let mut files = Vec::new();
    for threads in ["1", "2"] {
        let out = work.join(format!("t{threads}.fz"));
        ok(
            fpack()
                .args(["--mix", "--threads", threads, "-O"])
                .arg(&out)
                .arg(&src)
                .output()
                .unwrap(),
            "fpack-ng --mix",
        );
        files.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(files[0], files[1], "1 and 2 threads gave different files");
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn codec_flag_selects_any_registered_codec_by_name() {
    let work = scratch("mixpred-codec-flag");
    let src = fixture("bitpix32.fits");
    for (name, want) in [
        ("MIXPRED_1", "MIXPRED_1"),
        ("mixpred", "MIXPRED_1"),
        ("gzip2", "GZIP_2"),
        ("rice", "RICE_1"),
    ] {
        let listing = round_trip(&src, &["--codec", name], &work).unwrap();
        assert!(listing.contains(want), "--codec {name}: {listing}");
    }
    let out = fpack()
        .args(["--codec", "NO_SUCH_CODEC", "-O"])
        .arg(work.join("x.fz"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown algorithm"));
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn damaged_tiles_are_named_errors_and_leave_nothing_behind() {
    let work = scratch("mixpred-damage");
    let src = a_frame();
    let good_path = work.join("good.fz");
    ok(
        fpack()
            .args(["--mix", "-C", "-O"])
            .arg(&good_path)
            .arg(&src)
            .output()
            .unwrap(),
        "fpack-ng --mix",
    );
    let good = std::fs::read(&good_path).unwrap();
    let out_dir = work.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    damaged_heap_bytes_are_clean_errors(
        &good,
        &[0.0, 0.1, 0.5, 0.9, 0.999],
        0x10,
        &work,
        &out_dir,
        &["tile", "HDU 2", "MIXPRED_1"],
    );
    std::fs::remove_dir_all(&work).unwrap();
}
