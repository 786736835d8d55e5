//! The committed man pages and `--help` are generated from the flag tables:
//! this test fails when a flag changes and man/ was not regenerated
//! (regenerate with `FPACKNG_WRITE_MAN=1 cargo test -p fpack-ng --test man_pages`).

use std::path::PathBuf;

fn check(name: &str, generated: String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../man")
        .join(name);
    if std::env::var_os("FPACKNG_WRITE_MAN").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed, generated,
        "{name} is out of date: regenerate it (see this file's header)"
    );
}

#[test]
fn man_pages_match_flag_tables() {
    check("fpack-ng.1", fpack_ng_cli::fpack_man_page());
    check("funpack-ng.1", fpack_ng_cli::funpack_man_page());
    check(
        "fpack-ng-recompress.1",
        fpack_ng_cli::recompress::man_page(),
    );
}

#[test]
fn help_lists_every_flag() {
    let help = fpack_ng_cli::fpack_help();
    for f in fpack_ng_cli::flags::FPACK_FLAGS {
        assert!(help.contains(f.name), "{} missing from --help", f.name);
    }
    let help = fpack_ng_cli::funpack_help();
    for f in fpack_ng_cli::flags::FUNPACK_FLAGS {
        assert!(help.contains(f.name), "{} missing from --help", f.name);
    }
    let help = fpack_ng_cli::recompress::help();
    for f in fpack_ng_cli::flags::RECOMPRESS_FLAGS {
        assert!(
            help.contains(f.name),
            "{} missing from recompress --help",
            f.name
        );
    }
}
