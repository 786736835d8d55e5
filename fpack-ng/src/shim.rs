//! `fpack-ng shim`: runs a program with libfpackng_shim.so in LD_PRELOAD,
//! so that programs linked with Debian's libcfitsio.so.10 (funpack,
//! fitsverify, imcopy, any C or Fortran code) read the algorithms cfitsio
//! lacks (JXL_1, ...), or prints the LD_PRELOAD line to set by hand. With
//! `--write CODEC`, the same programs also write CODEC wherever they ask
//! cfitsio for a lossless standard algorithm: the choice reaches the
//! library through $FPACKNG_SHIM_WRITE, checked here first so that a typo
//! fails before the program starts. The library itself is built by the
//! cfitsio-shim crate; this module only finds it and starts the program.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{anyhow, bail, Result};
use fpackng::codec::choice::{writable_through_cfitsio, CodecChoice, CFITSIO_WRITE_ENV};

/// The library's file name.
pub const LIBRARY: &str = "libfpackng_shim.so";
/// Environment variable naming the library explicitly.
pub const LIBRARY_ENV: &str = "FPACKNG_SHIM_LIB";

pub const SHIM_USAGE: &str = "\
usage: fpack-ng shim [--write CODEC[,param=value...]] [--] COMMAND [ARGS...]
                                 run COMMAND with the cfitsio shim preloaded
       fpack-ng shim [--write CODEC[,...]] --print
                                 print the variables to set, for export $(...)
       fpack-ng shim --path      print the path of libfpackng_shim.so

Programs linked dynamically with libcfitsio.so.10 then read the tile-compression
algorithms cfitsio does not know (JXL_1, ...), e.g. `fpack-ng shim -- funpack x.fz`.
With --write CODEC they also write CODEC (JXL_1, MIXPRED_1, IDF_1, ...) wherever
they ask cfitsio for RICE_1, GZIP_1, GZIP_2 or lossless HCOMPRESS_1, e.g.
`fpack-ng shim --write JXL_1 -- fpack -O out.fz in.fits`; pixel types CODEC does
not code keep the algorithm asked for (one line on stderr says so). JXL_1 takes
effort=1..10. The library is found through $FPACKNG_SHIM_LIB, else next to
fpack-ng, in ../lib/fpack-ng or ../lib. See man fpack-ng, NEW ALGORITHMS IN
OTHER READERS.
";

/// Where libfpackng_shim.so is: $FPACKNG_SHIM_LIB, else beside the
/// executable or in its ../lib/fpack-ng or ../lib (installed layouts), or
/// in cargo's target/<profile>/deps (where cargo leaves the library when it
/// builds it as a dependency only, as for fpack-ng's own tests).
pub fn shim_library() -> Result<PathBuf> {
    if let Some(given) = std::env::var_os(LIBRARY_ENV) {
        let path = PathBuf::from(given);
        if !path.is_file() {
            bail!("{LIBRARY_ENV}={} is not a file", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("no directory for {}", exe.display()))?;
    // Beside the executable, or in cargo's deps/ next to it, whichever is
    // newer (cargo refreshes deps/ on every build, the copy beside the
    // binary only on some), then the installed layouts.
    let newest_beside = [dir.join(LIBRARY), dir.join("deps").join(LIBRARY)]
        .into_iter()
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    newest_beside
        .into_iter()
        .chain([
            dir.join("../lib/fpack-ng").join(LIBRARY),
            dir.join("../lib").join(LIBRARY),
        ])
        .find(|p| p.is_file())
        .map(|p| p.canonicalize().unwrap_or(p))
        .ok_or_else(|| {
            anyhow!(
                "{LIBRARY} not found next to {} (build it with `cargo build --release -p cfitsio-shim`, or set {LIBRARY_ENV})",
                exe.display()
            )
        })
}

pub fn preload_value() -> Result<OsString> {
    let library = shim_library()?;
    let mut value = OsString::from(library.as_os_str());
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    Ok(value)
}

/// Entry point of `fpack-ng shim ARGS`; returns the exit status.
pub fn shim_main(args: &[String]) -> i32 {
    match run(args) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("fpack-ng shim: {e:#}");
            crate::EXIT_FAILED
        }
    }
}

/// `--write SPEC`, checked as the preloaded library will check it.
fn checked_write_spec(spec: &str) -> Result<String> {
    CodecChoice::parse_for_cfitsio(spec).map_err(|e| {
        anyhow!(
            "--write {spec}: {e}\n(codecs cfitsio programs can write: {})",
            writable_through_cfitsio()
                .map(|c| c.id())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    Ok(spec.to_string())
}

fn run(args: &[String]) -> Result<i32> {
    let mut args = args;
    let mut write = None;
    let mut print = false;
    // Leading options, in any order: --write SPEC, --print.
    while let [flag, rest @ ..] = args {
        if flag == "--write" {
            let [spec, rest @ ..] = rest else {
                bail!("--write needs a codec, e.g. --write JXL_1");
            };
            write = Some(checked_write_spec(spec)?);
            args = rest;
        } else if let Some(spec) = flag.strip_prefix("--write=") {
            write = Some(checked_write_spec(spec)?);
            args = rest;
        } else if flag == "--print" {
            print = true;
            args = rest;
        } else {
            break;
        }
    }
    if print {
        let mut line = format!("LD_PRELOAD={}", preload_value()?.to_string_lossy());
        if let Some(spec) = &write {
            line.push_str(&format!(" {CFITSIO_WRITE_ENV}={spec}"));
        }
        println!("{line}");
        return Ok(crate::EXIT_OK);
    }
    let first = args.first().map(String::as_str);
    match first {
        None | Some("-H") | Some("-h") | Some("--help") => {
            print!("{SHIM_USAGE}");
            Ok(if first.is_none() {
                crate::EXIT_USAGE
            } else {
                crate::EXIT_OK
            })
        }
        Some("--path") => {
            println!("{}", shim_library()?.display());
            Ok(crate::EXIT_OK)
        }
        Some(_) => {
            let command = if first == Some("--") {
                &args[1..]
            } else {
                args
            };
            let Some((program, rest)) = command.split_first() else {
                print!("{SHIM_USAGE}");
                return Ok(crate::EXIT_USAGE);
            };
            let mut command = Command::new(program);
            command.args(rest).env("LD_PRELOAD", preload_value()?);
            // Without --write, a value inherited from the environment (an
            // earlier export) would still steer the library: writing stays
            // standard unless this command line asks.
            match &write {
                Some(spec) => command.env(CFITSIO_WRITE_ENV, spec),
                None => command.env_remove(CFITSIO_WRITE_ENV),
            };
            let error = command.exec();
            bail!("cannot run {program}: {error}")
        }
    }
}
