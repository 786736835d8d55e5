//! `fpack-ng`: see `fpack-ng --help` and man/fpack-ng.1.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(fpack_ng_cli::fpack_main(args));
}
