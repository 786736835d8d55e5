//! The fpack-ng and funpack-ng command lines: flag parsing and printing
//! only. Every decision and every byte written goes through the `fpackng`
//! library, so archive jobs and the command line behave identically.

// Library errors carry file, HDU and tile by value; they are made once per
// failed file, so their size costs nothing measurable (as in fpackng).
#![allow(clippy::result_large_err)]

pub mod flags;
pub mod recompress;
pub mod shim;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use fpackng::codec::CodecContext;
use fpackng::pack::file::{for_each_raw_hdu, write_atomically, InputAfter, WriteMode};
use fpackng::pack::list::{compare_algorithms, list};
use fpackng::pack::{
    compress_file, compress_stream, decompress_file, decompress_stream, CompressOptions,
    DecompressOptions, FileReport, HduAction, HduSelector, Input,
};

use flags::{Common, CompressArgs, Device, FileHandling, FpackArgs, FunpackArgs, Parsed};

/// Panics are reported once per file by [`guarded`]; the default hook's
/// backtrace message would only confuse.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// Exit status: success.
pub const EXIT_OK: i32 = 0;
/// Exit status: at least one file failed (the others were still processed).
pub const EXIT_FAILED: i32 = 1;
/// Exit status: the command line was wrong; nothing was done.
pub const EXIT_USAGE: i32 = 2;

pub const EXIT_STATUS_TEXT: &str = "0 if every file was processed; 1 if any file failed (each failure is reported on standard error with the file, HDU and tile, the input is left unchanged and no output file is left behind; the other files are still processed); 2 if the command line is invalid (nothing is done).";

const FPACK_SUMMARY: &str =
    "compress FITS images with the tiled-image convention, fpack-compatible";
const FPACK_USAGE: &str = "fpack-ng [flags] FILE... ('-' reads standard input); fpack-ng recompress --help for archive jobs";
const FPACK_DESCRIPTION: &str = "fpack-ng compresses every image HDU of each FITS file into a tile-compressed binary table (FITS 4.0 section 10), readable by funpack, cfitsio, astropy and every other reader of the standard, and copies all other HDUs unchanged. It accepts fpack's flags with fpack's meanings. Differences from fpack: floating-point images are compressed losslessly unless -q is given; every output is decoded and compared with the input before it is renamed into place, and an input is deleted (-D) or replaced (-F) only after that check; header directives FZALGOR, FZTILE, FZQVALUE, FZQMETHD, FZDTHRSD and FZHSCALE override the command line as in fpack.";
const FUNPACK_SUMMARY: &str = "decompress tile-compressed FITS files, funpack-compatible";
const FUNPACK_USAGE: &str = "funpack-ng [flags] FILE... ('-' reads standard input)";
const FUNPACK_DESCRIPTION: &str = "funpack-ng restores every compressed image HDU of each file to a standard FITS image and copies all other HDUs unchanged. It reads every algorithm of the standard (RICE_1, GZIP_1, GZIP_2, HCOMPRESS_1, PLIO_1, NOCOMPRESS) and is the escape hatch that turns any file back into plain FITS for tools that cannot read tile compression. CHECKSUM and DATASUM of every input HDU that has them are verified while reading; a mismatch stops with an error naming the HDU. Output is written to a temporary file, re-read and checked, then renamed.";

/// Man page section on reading the new algorithms elsewhere (both pages).
const OTHER_READERS_TITLE: &str = "NEW ALGORITHMS IN OTHER READERS";
const OTHER_READERS: &[&str] = &[
    "Algorithms beyond the FITS standard (JXL_1, IDF_1, PCNN_1, CUBE_1, and any other that fpack-ng's codec registry adds) are read by fpack-ng and funpack-ng everywhere. Other readers have no plugin mechanism for tile-compression algorithms; two routes reach them, both through libfpackng_shim.so, built by the cfitsio-shim crate (cargo build --release -p cfitsio-shim).",
    "cfitsio: fpack-ng shim [--] COMMAND [ARGS...] runs COMMAND with the library in LD_PRELOAD, so that a program linked dynamically with libcfitsio.so.10 (Debian's funpack, fitsverify, imcopy, or any C or Fortran program) reads these algorithms unmodified, with all of cfitsio's scaling, null, dither and image-section logic, e.g. fpack-ng shim -- funpack -O out.fits in.fz. IDF_1 and PCNN_1 tiles decode with the model built into the library or one found by SHA-256 in the directories of FPACKNG_MODELS. fpack-ng shim --print prints the LD_PRELOAD=... line to set in a shell; fpack-ng shim --path prints the library's path. The library is found through $FPACKNG_SHIM_LIB, else next to fpack-ng, in ../lib/fpack-ng or in ../lib. Limits: Linux with glibc and dynamic linking only; programs with a statically linked cfitsio are not reached; cfitsio reports the algorithm as GZIP_1 to programs that ask (fits_get_compression_type); fpack -L prints its own fixed list. Writing: fpack-ng shim --write CODEC[,param=value...] -- COMMAND also makes the program write CODEC (JXL_1, MIXPRED_1, IDF_1, PCNN_1; JXL_1 takes effort=1..10) wherever it asks cfitsio for a lossless standard algorithm (RICE_1, GZIP_1, GZIP_2, HCOMPRESS_1 at scale 0, through fits_set_compression_type, a file name such as out.fz[compress], or Debian's fpack): the tiles are those fpack-ng writes with the same tile shape, the header names CODEC and its parameters, all other cards are cfitsio's. Pixel types CODEC does not code (e.g. 32-bit integers for JXL_1, unquantized floats) keep the algorithm the program asked for, with one line on stderr; lossy requests stay cfitsio's; 64-bit integer images fail with status 413. An unknown codec or parameter fails before the program starts. fpack-ng shim --write CODEC --print prints both variables to set, for export $(...). Without --write, cfitsio refuses to write tiles into an image of a new algorithm (status 413) rather than store gzip data under its name.",
    "Python: pip install ./python from an fpack-ng checkout installs the fpack-ng package (import fpackng), which registers every algorithm with astropy.io.fits (any astropy from 6.0; found by feature detection, a missing name gives one warning) as soon as astropy is imported: .data, .section and CompImageHDU(data, compression_type='JXL_1') then work. It also provides numcodecs/zarr codecs and fpackng.encode/decode/compress_file/decompress_file. Installing it never changes the installed astropy.",
    "Without the shim or the package, these programs fail with their standard error (cfitsio: status 414, Unknown image compression type; astropy: Unrecognized compression type, or a TypeError from its header check for IDF_1). Tools that decode tiles with their own code, such as SAOImage ds9, cannot be reached at all: for them, and as the universal escape hatch, funpack-ng converts any file back to a plain FITS image, and fpack-ng -r (or -g, -h) recompresses it with a standard algorithm.",
];

/// A roff section of plain paragraphs, escaped as flags::man_page escapes.
fn man_section(title: &str, paragraphs: &[&str]) -> String {
    let esc = |t: &str| t.replace('\\', "\\\\").replace('-', "\\-");
    let mut s = format!(".SH \"{title}\"\n");
    for (i, p) in paragraphs.iter().enumerate() {
        if i > 0 {
            s.push_str(".PP\n");
        }
        s.push_str(&esc(p));
        s.push('\n');
    }
    s
}

pub fn fpack_man_page() -> String {
    flags::man_page(
        "fpack-ng",
        FPACK_SUMMARY,
        FPACK_USAGE,
        flags::FPACK_FLAGS,
        FPACK_DESCRIPTION,
        EXIT_STATUS_TEXT,
    ) + &man_section(OTHER_READERS_TITLE, OTHER_READERS)
}

pub fn funpack_man_page() -> String {
    flags::man_page(
        "funpack-ng",
        FUNPACK_SUMMARY,
        FUNPACK_USAGE,
        flags::FUNPACK_FLAGS,
        FUNPACK_DESCRIPTION,
        EXIT_STATUS_TEXT,
    ) + &man_section(OTHER_READERS_TITLE, OTHER_READERS)
}

pub fn fpack_help() -> String {
    flags::help("fpack-ng", FPACK_SUMMARY, FPACK_USAGE, flags::FPACK_FLAGS)
}

pub fn funpack_help() -> String {
    flags::help(
        "funpack-ng",
        FUNPACK_SUMMARY,
        FUNPACK_USAGE,
        flags::FUNPACK_FLAGS,
    )
}

/// `--threads N`: the global pool, with the main thread as one of its N
/// workers (it calls every parallel loop of both tools). With one thread no
/// other thread exists, so none spins waiting for work while the main
/// thread reads and writes files (that spinning was CPU time billed to us).
fn set_threads(common: &Common) {
    if let Some(n) = common.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .use_current_thread()
            .build_global()
            .ok();
    }
}

/// The library's compression options from what the flags set: the chosen
/// algorithm, the models of `--model`, the engine of `--device`.
fn compress_options(args: &CompressArgs, common: &Common) -> Result<CompressOptions> {
    let mut o = args.options.clone();
    if let Some(a) = &args.algorithm {
        o.algorithm = a.clone();
    }
    for path in &common.models {
        match fpackng::neural::load_model_file(path)? {
            fpackng::neural::LoadedModel::Idf(m) => o.codec.idf_model = Some(m.sha256.clone()),
            fpackng::neural::LoadedModel::Pcnn(m) => o.codec.pcnn_model = Some(m.sha256.clone()),
        }
    }
    o.context.engine = engine_for(common.device)?;
    Ok(o)
}

fn print_report(
    out: &mut dyn Write,
    tool: &str,
    from: &str,
    to: &str,
    r: &FileReport,
    seconds: f64,
) {
    // Always uncompressed / compressed, whichever side is the output.
    let (plain, packed) = if tool == "funpack-ng" {
        (r.output_bytes, r.input_bytes)
    } else {
        (r.input_bytes, r.output_bytes)
    };
    let ratio = plain as f64 / packed.max(1) as f64;
    let _ = writeln!(
        out,
        "{tool}: {from} -> {to}: {} -> {} bytes, ratio {ratio:.3}, {seconds:.3} s{}",
        r.input_bytes,
        r.output_bytes,
        if r.lossless() { "" } else { ", LOSSY" }
    );
    for h in &r.hdus {
        match &h.action {
            HduAction::Compressed(s) => {
                let tiles = s
                    .tile_axes
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join("x");
                let _ = writeln!(
                    out,
                    "  HDU {}: {} tiles {tiles} ({} tiles), {} -> {} data bytes, ratio {:.3}{}",
                    h.number,
                    s.algorithm,
                    s.n_tiles,
                    s.raw_bytes,
                    s.compressed_bytes,
                    s.raw_bytes as f64 / s.compressed_bytes.max(1) as f64,
                    if s.lossless { "" } else { ", lossy" }
                );
                for n in &s.notes {
                    let _ = writeln!(out, "    note: {n}");
                }
            }
            HduAction::Decompressed { algorithm } => {
                let _ = writeln!(out, "  HDU {}: decompressed {algorithm}", h.number);
            }
            HduAction::Copied => {
                let _ = writeln!(out, "  HDU {}: copied unchanged", h.number);
            }
        }
    }
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("reading standard input")?;
    Ok(buf)
}

fn list_files(files: &[String], context: &CodecContext) -> i32 {
    let mut status = EXIT_OK;
    for f in files {
        let stdin;
        let (input, size) = if f == "-" {
            match read_stdin() {
                Ok(b) => stdin = b,
                Err(e) => {
                    eprintln!("{e:#}");
                    status = EXIT_FAILED;
                    continue;
                }
            }
            (Input::Bytes(&stdin), stdin.len() as u64)
        } else {
            (
                Input::Path(Path::new(f)),
                std::fs::metadata(f).map(|m| m.len()).unwrap_or(0),
            )
        };
        match list(input, Default::default(), context) {
            Ok(entries) => {
                println!("# {f} ({size} bytes)");
                for e in entries {
                    println!("{e}");
                }
            }
            Err(e) => {
                eprintln!("{e}");
                status = EXIT_FAILED;
            }
        }
    }
    status
}

/// `-L` without files: the algorithms of this build, from the registry.
fn codec_list() -> String {
    let mut s = String::from("ZCMPTYPE      names for --codec     kind       description\n");
    for c in fpackng::codec::REGISTRY {
        let kind = match (c.is_standard(), c.can_encode()) {
            (_, false) => "read-only",
            (true, true) => "standard",
            (false, true) => "new",
        };
        s.push_str(&format!(
            "{:<13} {:<21} {kind:<10} {}\n",
            c.id(),
            c.short_names().join(","),
            c.description()
        ));
    }
    s
}

fn test_files(files: &[String], report_to: Option<&str>, opts: &CompressOptions) -> i32 {
    let mut status = EXIT_OK;
    let mut report = String::new();
    for f in files {
        let result = for_each_raw_hdu(Input::Path(Path::new(f)), opts.limits, |hdu| {
            let trials = compare_algorithms(&hdu, opts);
            if trials.is_empty() {
                return Ok(());
            }
            report.push_str(&format!(
                "\n File: {f}  HDU {}  BITPIX={} [{}]\n       Type           Ratio   Compressed bytes   Pack s  Unpack s  Exact\n",
                hdu.number,
                hdu.header.get_int("BITPIX").unwrap_or(0),
                hdu.image_axes().iter().map(|a| a.to_string()).collect::<Vec<_>>().join("x")
            ));
            for t in trials {
                match t.ratio {
                    Some(r) => report.push_str(&format!(
                        "       {:<14} {r:>6.3} {:>18} {:>8.3} {:>9.3}  {}\n",
                        t.algorithm,
                        t.compressed_bytes,
                        t.pack_seconds,
                        t.unpack_seconds,
                        if t.exact { "Yes" } else { "No" }
                    )),
                    None => report.push_str(&format!(
                        "       {:<12} {}\n",
                        t.algorithm,
                        t.note.unwrap_or_default()
                    )),
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("fpack-ng: {e}");
            status = EXIT_FAILED;
        }
    }
    print!("{report}");
    if let Some(path) = report_to {
        if let Err(e) = std::fs::write(path, &report) {
            eprintln!("fpack-ng: {path}: {e}");
            status = EXIT_FAILED;
        }
    }
    status
}

/// Run one file's work; a panic (a bug, never expected) becomes an error
/// for that file instead of aborting the whole run with a backtrace.
fn guarded(file: &str, work: impl FnOnce() -> Result<()>) -> Result<()> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(anyhow!("{file}: internal error ({what}); the input is unchanged. Please report this with the file."))
        }
    }
}

/// Parse the command line and answer --help and --version. `Err` carries
/// the exit status when there is nothing more to do.
fn start<S: Default>(
    tool: &str,
    args: &[String],
    table: &[flags::Flag<S>],
    unsupported: &[(&str, &str)],
    help: fn() -> String,
    common: fn(&S) -> &Common,
) -> std::result::Result<Parsed<S>, i32> {
    quiet_panics();
    let parsed = flags::parse(args, table, unsupported).map_err(|e| {
        eprintln!("{tool}: {e}");
        EXIT_USAGE
    })?;
    if common(&parsed.args).help {
        print!("{}", help());
        return Err(EXIT_OK);
    }
    if common(&parsed.args).version {
        println!("{tool} {}", env!("CARGO_PKG_VERSION"));
        return Err(EXIT_OK);
    }
    Ok(parsed)
}

/// Checks both tools make before touching any file.
fn common_setup(common: &Common, files: &[String], output: &FileHandling) -> Result<()> {
    set_threads(common);
    engine_for(common.device)?;
    for path in &common.models {
        fpackng::neural::load_model_file(path)?;
    }
    if files.is_empty() {
        bail!("no input files (see --help)");
    }
    if output.output.is_some() && files.len() != 1 {
        bail!("-O may be used with a single input file only");
    }
    Ok(())
}

impl FileHandling {
    fn after(&self) -> InputAfter {
        if self.delete {
            InputAfter::Delete
        } else {
            InputAfter::Keep
        }
    }

    fn to_stdout(&self, f: &str) -> bool {
        self.stdout || (f == "-" && self.output.is_none())
    }
}

/// `--device auto|cpu|cuda`: the engine of the neural codecs. `auto` takes
/// the GPU when this build has the `tch` feature and libtorch sees a CUDA
/// device, else the CPU; every engine computes the same numbers.
fn engine_for(device: Device) -> Result<&'static dyn fpackng::neural::Engine> {
    Ok(match device {
        Device::Cpu => &fpackng::neural::Cpu,
        Device::Cuda => cuda_engine()?,
        Device::Auto => auto_engine(),
    })
}

#[cfg(feature = "tch")]
fn cuda_engine() -> Result<&'static dyn fpackng::neural::Engine> {
    use fpackng::neural::tch_engine::Tch;
    static CUDA: std::sync::OnceLock<Option<Tch>> = std::sync::OnceLock::new();
    match CUDA.get_or_init(Tch::cuda) {
        Some(t) => Ok(t),
        None => bail!("--device cuda: libtorch sees no CUDA device (is there a GPU, and are libtorch's CUDA libraries on the library path? see docs/neural-gpu.md)"),
    }
}

/// `auto` with the tch feature: decide at the first network run, so that
/// runs without a neural codec never start CUDA.
#[cfg(feature = "tch")]
fn auto_engine() -> &'static dyn fpackng::neural::Engine {
    use fpackng::neural::{Cpu, Engine, Planes};
    struct Auto;
    impl Auto {
        fn pick(&self) -> &'static dyn Engine {
            static PICK: std::sync::OnceLock<&'static dyn Engine> = std::sync::OnceLock::new();
            *PICK.get_or_init(|| cuda_engine().unwrap_or(&Cpu))
        }
    }
    impl Engine for Auto {
        fn run(
            &self,
            net: &fpackng::neural::model::Net,
            inputs: &[&[i32]],
            refs: &[Option<&[i32]>],
            h: usize,
            w: usize,
        ) -> Planes {
            self.pick().run(net, inputs, refs, h, w)
        }
        fn name(&self) -> &'static str {
            self.pick().name()
        }
    }
    &Auto
}

#[cfg(not(feature = "tch"))]
fn auto_engine() -> &'static dyn fpackng::neural::Engine {
    &fpackng::neural::Cpu
}

#[cfg(not(feature = "tch"))]
fn cuda_engine() -> Result<&'static dyn fpackng::neural::Engine> {
    bail!("--device cuda: this build has no GPU engine (it was built without the `tch` cargo feature); use --device cpu or auto")
}

/// Process every file, reporting each failure and carrying on with the
/// others; the exit status says whether any failed.
fn each_file(tool: &str, files: &[String], work: impl Fn(&str) -> Result<()>) -> i32 {
    let mut status = EXIT_OK;
    for f in files {
        if let Err(e) = guarded(f, || work(f)) {
            eprintln!("{tool}: {e:#}");
            status = EXIT_FAILED;
        }
    }
    status
}

/// Entry point of `fpack-ng`; returns the exit status.
pub fn fpack_main(args: Vec<String>) -> i32 {
    if args.first().is_some_and(|a| a == "recompress") {
        quiet_panics();
        return recompress::main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("shim") {
        return shim::shim_main(&args[1..]);
    }
    let parsed = match start(
        "fpack-ng",
        &args,
        flags::FPACK_FLAGS,
        flags::FPACK_UNSUPPORTED,
        fpack_help,
        |a: &FpackArgs| &a.common,
    ) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let a = &parsed.args;
    if a.list && parsed.files.is_empty() {
        print!("{}", codec_list());
        return EXIT_OK;
    }
    let handling = &a.files;
    let setup = (|| -> Result<CompressOptions> {
        common_setup(&a.common, &parsed.files, handling)?;
        let o = compress_options(&a.compress, &a.common)?;
        if o.is_lossy() && (a.files.delete || a.files.replace) && !a.confirm_lossy {
            bail!("lossy compression with -D or -F would destroy the original pixels: add -Y to confirm");
        }
        Ok(o)
    })();
    let opts = match setup {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fpack-ng: {e:#}");
            return EXIT_USAGE;
        }
    };
    if a.list {
        return list_files(&parsed.files, &opts.context);
    }
    if a.compare {
        return test_files(&parsed.files, a.compare_report.as_deref(), &opts);
    }
    each_file("fpack-ng", &parsed.files, |f| fpack_one(f, handling, &opts))
}

/// Standard input or output: the whole result is built in memory (and
/// checked by `produce`) before a byte is written, then goes to standard
/// output or, for `-` with `-O`, through a verified temporary file.
fn through_memory(
    tool: &str,
    f: &str,
    p: &FileHandling,
    to_stdout: bool,
    after: InputAfter,
    start: Instant,
    produce: impl FnOnce(Input, &mut Vec<u8>) -> Result<FileReport>,
) -> Result<()> {
    let stdin;
    let input = if f == "-" {
        stdin = read_stdin()?;
        Input::Bytes(&stdin)
    } else {
        Input::Path(Path::new(f))
    };
    let mut buf = Vec::new();
    let report = produce(input, &mut buf)?;
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(&buf)
            .and_then(|_| out.flush())
            .context("writing standard output")?;
    } else {
        let target = PathBuf::from(p.output.as_deref().unwrap_or_default());
        let mode = WriteMode {
            overwrite: false,
            durable: false,
            reread: true,
            limits: Default::default(),
        };
        write_atomically(
            &target,
            mode,
            |w| {
                w.write_all(&buf)
                    .map_err(|e| fpackng::Error::io(Default::default(), e))
            },
            |_, _| Ok(()),
        )?;
    }
    if after == InputAfter::Delete && f != "-" {
        std::fs::remove_file(f).with_context(|| format!("{f}: deleting the input"))?;
    }
    if p.verbose {
        let to = if to_stdout {
            "stdout"
        } else {
            p.output.as_deref().unwrap_or_default()
        };
        print_report(
            &mut std::io::stderr(),
            tool,
            f,
            to,
            &report,
            start.elapsed().as_secs_f64(),
        );
    }
    Ok(())
}

fn fpack_one(f: &str, p: &FileHandling, opts: &CompressOptions) -> Result<()> {
    let start = Instant::now();
    let after = p.after();
    let to_stdout = p.to_stdout(f);
    if f == "-" || to_stdout {
        // In memory: verify against the source before a byte goes out.
        return through_memory("fpack-ng", f, p, to_stdout, after, start, |input, buf| {
            // compress_stream checks every tile, table and header in memory;
            // lossy Hcompress has no tile-level equality and is decoded again.
            let report = compress_stream(input, &mut *buf, opts)?;
            if report.has_lossy_codec() {
                fpackng::pack::verify_compressed(
                    input,
                    Input::Bytes(buf),
                    opts.limits,
                    &opts.context,
                )?;
            }
            Ok(report)
        });
    }
    let input = PathBuf::from(f);
    let output = output_path(f, p, || Ok(PathBuf::from(format!("{f}.fz"))))?;
    let report = compress_file(&input, &output, opts, false, after)?;
    report_if_verbose("fpack-ng", f, &output, p, &report, start);
    Ok(())
}

/// Entry point of `funpack-ng`; returns the exit status.
pub fn funpack_main(args: Vec<String>) -> i32 {
    let parsed = match start(
        "funpack-ng",
        &args,
        flags::FUNPACK_FLAGS,
        flags::FUNPACK_UNSUPPORTED,
        funpack_help,
        |a: &FunpackArgs| &a.common,
    ) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let a = &parsed.args;
    let handling = &a.files;
    let setup = (|| -> Result<DecompressOptions> {
        common_setup(&a.common, &parsed.files, handling)?;
        if a.hdus.is_some() && (a.files.replace || a.files.delete) {
            bail!("-E may not be used with -F or -D (the other HDUs would be lost)");
        }
        Ok(DecompressOptions {
            hdus: a.hdus.as_deref().map(HduSelector::parse_list),
            checksums: !a.no_checksums,
            verify_checksums: !a.no_verify_checksums,
            context: CodecContext {
                engine: engine_for(a.common.device)?,
                ..Default::default()
            },
            ..Default::default()
        })
    })();
    let opts = match setup {
        Ok(o) => o,
        Err(e) => {
            eprintln!("funpack-ng: {e:#}");
            return EXIT_USAGE;
        }
    };
    if a.list {
        return list_files(&parsed.files, &opts.context);
    }
    let prefix = a.prefix.as_deref();
    each_file("funpack-ng", &parsed.files, |f| {
        funpack_one(f, handling, prefix, &opts)
    })
}

/// funpack's output name: strip ".fz" (and apply -P).
fn unpacked_name(f: &str, prefix: Option<&str>) -> Result<PathBuf> {
    let path = Path::new(f);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(f);
    let stem = match name.strip_suffix(".fz") {
        Some(s) => s.to_string(),
        None if prefix.is_some() => name.to_string(),
        None => bail!("{f}: the name does not end in .fz: give -O, -P or -S to choose the output"),
    };
    let out = format!("{}{stem}", prefix.unwrap_or(""));
    Ok(path.with_file_name(out))
}

fn funpack_one(
    f: &str,
    p: &FileHandling,
    prefix: Option<&str>,
    opts: &DecompressOptions,
) -> Result<()> {
    let start = Instant::now();
    let after = p.after();
    let to_stdout = p.to_stdout(f);
    if f == "-" || to_stdout {
        return through_memory("funpack-ng", f, p, to_stdout, after, start, |input, buf| {
            Ok(decompress_stream(input, &mut *buf, opts)?)
        });
    }
    let input = PathBuf::from(f);
    let output = output_path(f, p, || unpacked_name(f, prefix))?;
    let report = decompress_file(&input, &output, opts, false, after)?;
    report_if_verbose("funpack-ng", f, &output, p, &report, start);
    Ok(())
}

/// The output file: `-O NAME`, the input itself with `-F`, else the tool's
/// default name.
fn output_path(
    f: &str,
    p: &FileHandling,
    default: impl FnOnce() -> Result<PathBuf>,
) -> Result<PathBuf> {
    if let Some(o) = &p.output {
        Ok(PathBuf::from(o))
    } else if p.replace {
        Ok(PathBuf::from(f))
    } else {
        default()
    }
}

fn report_if_verbose(
    tool: &str,
    f: &str,
    output: &Path,
    p: &FileHandling,
    report: &FileReport,
    start: Instant,
) {
    if p.verbose {
        let to = output.display().to_string();
        print_report(
            &mut std::io::stdout(),
            tool,
            f,
            &to,
            report,
            start.elapsed().as_secs_f64(),
        );
    }
}
