//! `funpack-ng`: see `funpack-ng --help` and man/funpack-ng.1.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(fpack_ng_cli::funpack_main(args));
}
