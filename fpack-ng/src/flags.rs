//! The flags of fpack-ng, funpack-ng and `fpack-ng recompress`: one table
//! per tool, one definition per flag.
//!
//! fpack's flags are single-dash and multi-letter (`-g2`, `-qzt`, `-q123`),
//! which derive-based parsers handle badly, so each tool's flags are a table
//! here, and each entry is a flag unit as in ripgrep's `flags/defs.rs`: its
//! name, the name of its value, its help and its effect on the tool's
//! settings ([`FpackArgs`], [`FunpackArgs`], [`RecompressArgs`]). The parser,
//! `--help` and the man pages are all generated from the tables, so they
//! cannot drift apart; and since the effect is part of the entry, a flag
//! cannot be listed and then forgotten by the code that acts on it (the unit
//! test `every_flag_has_an_effect` applies each one and checks that the
//! settings changed). The drivers in `lib.rs` and `recompress.rs` read the
//! settings, never the command line.
//!
//! Algorithm flags name codecs by their short names ([`Codec::short_names`]
//! of the library's registry), never by ZCMPTYPE.
//!
//! [`Codec::short_names`]: fpackng::codec::Codec::short_names

use std::path::PathBuf;

use fpackng::archive::Shard;
use fpackng::codec::cube::Predictor;
use fpackng::pack::{CompressOptions, CubeMode, DitherSeed, Tiling};
use fpackng::tile::quantize::{QuantizeMethod, QuantizeSpec};

/// What a flag does to the settings `S` of its tool. An `Err` is a usage
/// error whose message names the flag and what it accepts.
pub enum Effect<S> {
    /// A flag alone (`-v`).
    Switch(fn(&mut S) -> Result<(), String>),
    /// A flag and the argument after it, whose name (`.0`) the help shows
    /// (`-t AXES`).
    Value(&'static str, fn(&mut S, &str) -> Result<(), String>),
    /// A family of flags sharing this prefix, each followed by a value
    /// (fpack's `-q`, `-qz`, `-qt`, `-q42`): the effect gets the flag as
    /// typed and the value.
    Family(&'static str, fn(&mut S, &str, &str) -> Result<(), String>),
}

/// One flag definition: name, help and effect.
pub struct Flag<S: 'static> {
    /// The flag as typed, e.g. "-g2"; for a [`Effect::Family`], the prefix.
    pub name: &'static str,
    pub help: &'static str,
    pub effect: Effect<S>,
}

impl<S> Flag<S> {
    /// Name of the value that follows as the next argument, if any.
    pub fn value(&self) -> Option<&'static str> {
        match self.effect {
            Effect::Switch(_) => None,
            Effect::Value(v, _) | Effect::Family(v, _) => Some(v),
        }
    }
}

const fn switch<S>(
    name: &'static str,
    help: &'static str,
    effect: fn(&mut S) -> Result<(), String>,
) -> Flag<S> {
    Flag {
        name,
        help,
        effect: Effect::Switch(effect),
    }
}

const fn value<S>(
    name: &'static str,
    value: &'static str,
    help: &'static str,
    effect: fn(&mut S, &str) -> Result<(), String>,
) -> Flag<S> {
    Flag {
        name,
        help,
        effect: Effect::Value(value, effect),
    }
}

const fn family<S>(
    name: &'static str,
    value: &'static str,
    help: &'static str,
    effect: fn(&mut S, &str, &str) -> Result<(), String>,
) -> Flag<S> {
    Flag {
        name,
        help,
        effect: Effect::Family(value, effect),
    }
}

// ---- What the flags set ----

/// `--device`: where the neural codecs compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// A GPU when one is present and the build has the `tch` feature.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// Settings every tool has.
#[derive(Debug, Default)]
pub struct Common {
    /// `-H`, `--help`.
    pub help: bool,
    /// `-V`, `--version`.
    pub version: bool,
    /// `--threads N`.
    pub threads: Option<usize>,
    /// `--device DEV`.
    pub device: Device,
    /// `--model PATH`, in order (loaded before any file is touched).
    pub models: Vec<PathBuf>,
}

impl Common {
    fn threads(&mut self, v: &str) -> Result<(), String> {
        let n = v
            .parse()
            .map_err(|_| format!("--threads needs a number, not '{v}'"))?;
        self.threads = Some(n);
        Ok(())
    }

    fn device(&mut self, v: &str) -> Result<(), String> {
        self.device = match v {
            "auto" => Device::Auto,
            "cpu" => Device::Cpu,
            "cuda" => Device::Cuda,
            _ => return Err(format!("--device takes auto, cpu or cuda, not '{v}'")),
        };
        Ok(())
    }

    fn model(&mut self, v: &str) -> Result<(), String> {
        self.models.push(PathBuf::from(v));
        Ok(())
    }
}

/// The compression settings fpack-ng and `recompress` share.
#[derive(Debug, Default)]
pub struct CompressArgs {
    /// The ZCMPTYPE an algorithm flag chose; `None`: the library's default.
    pub algorithm: Option<String>,
    /// Everything else; its `algorithm` is replaced by the one above.
    pub options: CompressOptions,
}

impl CompressArgs {
    /// An algorithm flag: the codec by any of its names (`-r` is "rice").
    fn use_codec(&mut self, name: &str) -> Result<(), String> {
        let id = fpackng::archive::resolve_algorithm(name).map_err(|e| e.to_string())?;
        self.algorithm = Some(id);
        Ok(())
    }

    /// `-n MODEL`: fpack's noise rescaling is refused; the neural codecs are
    /// chosen by short name.
    fn neural(&mut self, v: &str) -> Result<(), String> {
        match v.to_ascii_lowercase().as_str() {
            name @ ("idf" | "pixelcnn" | "pcnn") => self.use_codec(name),
            _ if v.parse::<f64>().is_ok() => Err(format!(
                "-n {v}: fpack's lossy noise rescaling (-n NOISE) is not supported; -n takes a neural codec: idf or pixelcnn"
            )),
            _ => Err(format!("-n {v}: unknown neural codec (available: idf, pixelcnn)")),
        }
    }

    fn pcnn_coding(&mut self, v: &str) -> Result<(), String> {
        self.options.codec.pcnn_sixteen = match v {
            "split" => false,
            "16" => true,
            _ => return Err(format!("--pcnn-coding takes split or 16, not '{v}'")),
        };
        Ok(())
    }

    fn pcnn_batch(&mut self, v: &str) -> Result<(), String> {
        self.options.context.pcnn_batch = v.parse::<usize>().map_err(|_| {
            format!("--pcnn-batch needs a number of pixels (0: whole rows), not '{v}'")
        })?;
        Ok(())
    }

    fn jxl_effort(&mut self, v: &str) -> Result<(), String> {
        self.options.codec.jxl_effort = match v.parse::<u32>() {
            Ok(e) if (1..=10).contains(&e) => e,
            _ => {
                return Err(format!(
                    "--jxl-effort needs a number from 1 to 10, not '{v}'"
                ))
            }
        };
        Ok(())
    }

    fn cube(&mut self, v: &str) -> Result<(), String> {
        self.options.cube = match v.to_ascii_lowercase().as_str() {
            "auto" => CubeMode::Auto,
            "off" | "no" => CubeMode::Off,
            "on" | "yes" => CubeMode::On(Predictor::Auto),
            "prev" | "previous" => CubeMode::On(Predictor::Previous),
            "linear" => CubeMode::On(Predictor::Linear),
            _ => {
                return Err(format!(
                    "--cube needs auto, on, off, prev or linear, not '{v}'"
                ))
            }
        };
        Ok(())
    }

    fn whole(&mut self) -> Result<(), String> {
        self.options.tiling = Tiling::Whole;
        Ok(())
    }

    fn tiles(&mut self, v: &str) -> Result<(), String> {
        let axes: Result<Vec<usize>, _> = v.split(',').map(|s| s.trim().parse::<usize>()).collect();
        match axes {
            Ok(a) if !a.is_empty() => {
                self.options.tiling = Tiling::Axes(a);
                Ok(())
            }
            _ => Err(format!(
                "-t needs comma-separated tile dimensions, e.g. -t 100,100 (got '{v}')"
            )),
        }
    }

    fn hcompress_scale(&mut self, v: &str) -> Result<(), String> {
        self.options.codec.hcompress_scale = v
            .parse()
            .map_err(|_| format!("-s needs a number, not '{v}'"))?;
        Ok(())
    }

    /// fpack's `-q` family: `-q`, `-qz` (no dithering of zeros), `-qt`
    /// (seed from the first tile), `-qN`, `-qzN` (seed N), `-q0` (no dither).
    fn quantize(&mut self, flag: &str, level: &str) -> Result<(), String> {
        let level: f32 = level
            .trim()
            .parse()
            .map_err(|_| format!("{flag} needs a number, not '{level}'"))?;
        let mut rest = flag.get(2..).unwrap_or("");
        let mut method = QuantizeMethod::SubtractiveDither1;
        if let Some(r) = rest.strip_prefix('z') {
            method = QuantizeMethod::SubtractiveDither2;
            rest = r;
        }
        let mut seed = None;
        if rest == "t" {
            seed = Some(DitherSeed::FirstTile);
        } else if !rest.is_empty() {
            let n: i32 = rest
                .parse()
                .map_err(|_| format!("invalid -q suffix in {flag}"))?;
            match n {
                0 => method = QuantizeMethod::NoDither,
                1..=10000 => seed = Some(DitherSeed::Fixed(n)),
                _ => {
                    return Err(format!(
                        "invalid -q suffix in {flag}: the dither seed must be 1..10000"
                    ))
                }
            }
        }
        self.options.quantize = (level != 0.0).then_some(QuantizeSpec { method, level });
        if let Some(s) = seed {
            self.options.dither_seed = s;
        }
        Ok(())
    }
}

/// What both tools do with each file's result (-O, -F, -D, -S, -v).
#[derive(Debug, Default)]
pub struct FileHandling {
    /// `-O FILE`.
    pub output: Option<String>,
    /// `-F`: replace the input.
    pub replace: bool,
    /// `-D`: delete the input.
    pub delete: bool,
    /// `-S`: write to standard output.
    pub stdout: bool,
    /// `-v`.
    pub verbose: bool,
}

/// What fpack-ng's flags set.
#[derive(Debug, Default)]
pub struct FpackArgs {
    pub common: Common,
    pub compress: CompressArgs,
    /// -O, -F, -D, -S, -v.
    pub files: FileHandling,
    /// `-T`: compare the algorithms, change nothing.
    pub compare: bool,
    /// `-R FILE`: also write the comparison there.
    pub compare_report: Option<String>,
    /// `-Y`: confirm a lossy -D or -F.
    pub confirm_lossy: bool,
    /// `-L`.
    pub list: bool,
}

/// What funpack-ng's flags set.
#[derive(Debug, Default)]
pub struct FunpackArgs {
    pub common: Common,
    /// `-E HDULIST`.
    pub hdus: Option<String>,
    /// `-P PREFIX`.
    pub prefix: Option<String>,
    /// -O, -F, -D, -S, -v.
    pub files: FileHandling,
    /// `-L`.
    pub list: bool,
    /// `-C`.
    pub no_checksums: bool,
    /// `--no-verify-checksums`.
    pub no_verify_checksums: bool,
}

/// What `fpack-ng recompress`'s flags set.
#[derive(Debug, Default)]
pub struct RecompressArgs {
    pub common: Common,
    /// The target (`--to`) is `compress.algorithm`.
    pub compress: CompressArgs,
    /// `-D`.
    pub delete: bool,
    pub output_dir: Option<PathBuf>,
    pub files_from: Vec<PathBuf>,
    pub journal: Option<PathBuf>,
    pub restart: bool,
    pub shard: Option<Shard>,
    pub jobs: Option<u64>,
    pub memory_mb: Option<u64>,
    pub dry_run: bool,
    pub sample: Option<u64>,
    pub report: Option<PathBuf>,
    pub merge_reports: bool,
    pub quiet: bool,
}

impl RecompressArgs {
    fn to(&mut self, v: &str) -> Result<(), String> {
        self.compress.use_codec(v)
    }

    fn shard(&mut self, v: &str) -> Result<(), String> {
        self.shard = Some(Shard::parse(v).map_err(|e| e.to_string())?);
        Ok(())
    }
}

fn set(switch: &mut bool) -> Result<(), String> {
    *switch = true;
    Ok(())
}

fn text(slot: &mut Option<String>, v: &str) -> Result<(), String> {
    *slot = Some(v.to_string());
    Ok(())
}

fn path(slot: &mut Option<PathBuf>, v: &str) -> Result<(), String> {
    *slot = Some(PathBuf::from(v));
    Ok(())
}

fn number(flag: &str, slot: &mut Option<u64>, v: &str) -> Result<(), String> {
    *slot = Some(
        v.parse()
            .map_err(|_| format!("{flag} needs a number, not '{v}'"))?,
    );
    Ok(())
}

// ---- The tables ----

pub const FPACK_FLAGS: &[Flag<FpackArgs>] = &[
    switch("-r", "Rice compression (RICE_1) [default].", |a| a.compress.use_codec("rice")),
    switch("-h", "Hcompress compression (HCOMPRESS_1).", |a| a.compress.use_codec("hcompress")),
    switch("-g", "GZIP_1 (per-tile) compression.", |a| a.compress.use_codec("gzip")),
    switch("-g1", "GZIP_1 (per-tile) compression.", |a| a.compress.use_codec("gzip")),
    switch("-g2", "GZIP_2 (per-tile) compression, with byte shuffling.", |a| a.compress.use_codec("gzip2")),
    switch("-p", "PLIO_1 compression (non-negative integer images below 2^24 only).", |a| a.compress.use_codec("plio")),
    switch("-d", "Tile the image without compression (NOCOMPRESS; for debugging).", |a| a.compress.use_codec("nocompress")),
    switch("--jxl", "JPEG-XL lossless compression (JXL_1) of 8- and 16-bit integer images; other images fall back to a standard codec. Readable by funpack-ng (and the cfitsio shim / astropy plugin where installed), not by unmodified fpack/funpack.", |a| a.compress.use_codec("jxl")),
    value("--jxl-effort", "N", "JPEG-XL encoder effort 1..10 [default 7]; higher is slower for little gain on noisy frames.", |a, v| a.compress.jxl_effort(v)),
    switch("--mix", "Fast lossless compression of any integer image (MIXPRED_1: adaptive predictor mixing, context modelling, rANS): smaller than Rice, at a few times Rice's CPU. Readable by funpack-ng (and the cfitsio shim / astropy plugin where installed), not by unmodified fpack/funpack.", |a| a.compress.use_codec("mixpred")),
    value("--codec", "NAME", "Compress with any algorithm of fpack-ng's registry, by ZCMPTYPE or short name (RICE_1, rice, GZIP_2, MIXPRED_1, mixpred, jxl, ...).", |a, v| a.compress.use_codec(v)),
    value("-n", "MODEL", "Neural lossless compression of 8- and 16-bit integer images: -n idf is the integer discrete flow (IDF_1), -n pixelcnn the autoregressive PixelCNN-family codec (PCNN_1, slower, usually smaller), each with its built-in model; other images fall back to a standard codec. Readable by funpack-ng (and the cfitsio shim / astropy plugin where installed), not by unmodified fpack/funpack.", |a, v| a.compress.neural(v)),
    value("--model", "PATH", "With -n idf or -n pixelcnn, code with the model file PATH (.idfm or .pcnm) instead of the built-in model.", |a, v| a.common.model(v)),
    value("--pcnn-coding", "C", "With -n pixelcnn: split [default] codes each 16-bit value as its high byte, then its low byte given the high byte (the MSB/LSB split); 16 codes it as one 16-bit symbol (for comparison; the same model).", |a, v| a.compress.pcnn_coding(v)),
    value("--pcnn-batch", "N", "With -n pixelcnn: pixels per network run in the encoder [default 0: whole rows]. Changes speed only; the output is identical for every N.", |a, v| a.compress.pcnn_batch(v)),
    value("--device", "DEV", "Where neural codecs compute: auto (a GPU when one is present and this build has the tch feature, else the CPU), cpu or cuda [default auto]. The output is identical on every device.", |a, v| a.common.device(v)),
    switch("-w", "Compress the whole image as a single large tile.", |a| a.compress.whole()),
    value("-t", "AXES", "Comma-separated tile dimensions, e.g. -t 100,100 [default: row by row].", |a, v| a.compress.tiles(v)),
    value("--cube", "MODE", "Integer images with 3 or more axes (ramps, spectral and time cubes): code each plane as a residual from the planes before it (CUBE_1, tiles spanning all planes). MODE: auto [default]: with a standard algorithm (-r, -h, -g, -p, -d, or none) the output stays standard and -v reports what CUBE_1 would save; with a non-standard one (--mix, --jxl, -n, --codec NAME) both are tried and CUBE_1 is kept when it is at least 2% smaller; on forces it; prev or linear force it with that predictor; off never uses it. CUBE_1 files are readable by funpack-ng (and the cfitsio shim / astropy plugin where installed); standard fpack/funpack/astropy refuse them with an error.", |a, v| a.compress.cube(v)),
    family("-q", "LEVEL", "Quantize floating-point images: LEVEL > 0 is relative to the background noise, < 0 an absolute step, 0 keeps them lossless. -q0 LEVEL: no dithering; -qz: do not dither zeros; -qt/-qzt: dither seed from the first tile's checksum; -qN/-qzN: dither seed N (1..10000). Without -q, fpack-ng keeps floating-point images LOSSLESS (unlike fpack).", |a, flag, v| a.compress.quantize(flag, v)),
    value("-s", "SCALE", "Scale factor for lossy Hcompress [default 0 = lossless].", |a, v| a.compress.hcompress_scale(v)),
    switch("-v", "Verbose: for each file, print sizes, ratio, time and what was done to each HDU.", |a| {
        a.files.verbose = true;
        a.compress.options.report_cube_saving = true;
        Ok(())
    }),
    switch("-T", "Compare the compression algorithms on each image HDU; files are not changed.", |a| set(&mut a.compare)),
    value("-R", "FILE", "With -T, also write the comparison report to FILE.", |a, v| text(&mut a.compare_report, v)),
    switch("-F", "Replace the input file by the compressed file of the same name (after verification).", |a| set(&mut a.files.replace)),
    switch("-D", "Delete the input file after the output has been written and verified.", |a| set(&mut a.files.delete)),
    switch("-Y", "Confirm -F or -D when the compression is lossy (required then).", |a| set(&mut a.confirm_lossy)),
    value("-O", "FILE", "Output file name (a single input file only).", |a, v| text(&mut a.files.output, v)),
    switch("-S", "Write the compressed file to standard output.", |a| set(&mut a.files.stdout)),
    switch("-L", "List the HDUs of each file; files are not changed. Without files, list the compression algorithms of this build (ZCMPTYPE, names for --codec, standard or new).", |a| set(&mut a.list)),
    switch("-C", "Do not write CHECKSUM and DATASUM keywords.", |a| {
        a.compress.options.checksums = false;
        Ok(())
    }),
    switch("-H", "Show this help.", |a| set(&mut a.common.help)),
    switch("-V", "Show the version.", |a| set(&mut a.common.version)),
    value("--threads", "N", "Use N threads for tiles [default: all cores].", |a, v| a.common.threads(v)),
    switch("--help", "Show this help.", |a| set(&mut a.common.help)),
    switch("--version", "Show the version.", |a| set(&mut a.common.version)),
];

pub const FUNPACK_FLAGS: &[Flag<FunpackArgs>] = &[
    value("-E", "HDULIST", "Unpack only these HDUs: comma-separated extension numbers (0 = primary) or EXTNAMEs. A single HDU becomes the primary array of the output.", |a, v| text(&mut a.hdus, v)),
    value("-P", "PREFIX", "Prepend PREFIX to the output file names.", |a, v| text(&mut a.prefix, v)),
    value("-O", "FILE", "Output file name (a single input file only).", |a, v| text(&mut a.files.output, v)),
    switch("-F", "Replace the input file by the uncompressed file of the same name (after verification).", |a| set(&mut a.files.replace)),
    switch("-D", "Delete the input file after the output has been written and verified.", |a| set(&mut a.files.delete)),
    switch("-S", "Write the uncompressed file to standard output.", |a| set(&mut a.files.stdout)),
    switch("-L", "List the HDUs of each file; files are not changed.", |a| set(&mut a.list)),
    switch("-C", "Do not write CHECKSUM and DATASUM keywords.", |a| set(&mut a.no_checksums)),
    switch("-v", "Verbose: for each file, print sizes, ratio and time.", |a| set(&mut a.files.verbose)),
    switch("-H", "Show this help.", |a| set(&mut a.common.help)),
    switch("-V", "Show the version.", |a| set(&mut a.common.version)),
    value("--model", "PATH", "Also load the model file PATH (.idfm or .pcnm) for IDF_1 or PCNN_1 tiles coded with a model that is not built in (models are found by SHA-256; FPACKNG_MODELS lists more model directories).", |a, v| a.common.model(v)),
    value("--device", "DEV", "Where neural codecs compute: auto, cpu or cuda [default auto]; the pixels are identical on every device.", |a, v| a.common.device(v)),
    switch("--no-verify-checksums", "Do not check the CHECKSUM/DATASUM keywords of the input HDUs (by default a mismatch stops with an error naming the HDU).", |a| set(&mut a.no_verify_checksums)),
    value("--threads", "N", "Use N threads for tiles [default: all cores].", |a, v| a.common.threads(v)),
    switch("--help", "Show this help.", |a| set(&mut a.common.help)),
    switch("--version", "Show the version.", |a| set(&mut a.common.version)),
];

// ---- `fpack-ng recompress` (archive jobs; see docs/recompress.md) ----
pub const RECOMPRESS_FLAGS: &[Flag<RecompressArgs>] = &[
    value("--to", "ALG", "Target algorithm: any that fpack-ng writes, by ZCMPTYPE or short name (rice, gzip, gzip2, hcompress, plio, mixpred, jxl, ...); cubes stay standard with a standard target (CUBE_1 only with a non-standard one). Required.", |a, v| a.to(v)),
    value("-t", "AXES", "Comma-separated tile dimensions for the target [default: the algorithm's default tiling].", |a, v| a.compress.tiles(v)),
    switch("-w", "Compress each image as a single tile.", |a| a.compress.whole()),
    value("--jxl-effort", "N", "JPEG-XL encoder effort 1..10 [default 7].", |a, v| a.compress.jxl_effort(v)),
    value("--model", "PATH", "With --to idf or --to pcnn, code with the model file PATH (.idfm or .pcnm) instead of the built-in model.", |a, v| a.common.model(v)),
    value("--device", "DEV", "Where neural codecs compute: auto, cpu or cuda [default auto]; the output is identical on every device.", |a, v| a.common.device(v)),
    switch("-C", "Do not write CHECKSUM and DATASUM keywords.", |a| {
        a.compress.options.checksums = false;
        Ok(())
    }),
    switch("-D", "Delete x.fits / x.fits.gz once x.fits.fz is written and verified (as fpack -D); by default originals are kept. .fz inputs are always replaced in place.", |a| set(&mut a.delete)),
    value("--output-dir", "DIR", "Write every result under DIR at the same relative path instead of beside or over the inputs; inputs are never modified.", |a, v| path(&mut a.output_dir, v)),
    value("--files-from", "FILE", "Also take the files listed in FILE (one per line, or the first tab-separated column of a manifest; relative to FILE's directory; # comments). May be repeated.", |a, v| {
        a.files_from.push(PathBuf::from(v));
        Ok(())
    }),
    value("--journal", "FILE", "Journal to resume from and append to [default: fpack-ng-recompress.journal, or fpack-ng-recompress.shard-I-of-N.journal, in the current directory].", |a, v| path(&mut a.journal, v)),
    switch("--restart", "Ignore an existing journal and start over.", |a| set(&mut a.restart)),
    value("--shard", "I/N", "Process only shard I of N (0 <= I < N): files are split by a stable hash of their relative output path, so N runs with the same arguments cover every file exactly once.", |a, v| a.shard(v)),
    value("--threads", "N", "Threads for tiles, and files in flight unless --jobs is given [default: all cores].", |a, v| a.common.threads(v)),
    value("--jobs", "N", "Files processed at once [default: --threads].", |a, v| number("--jobs", &mut a.jobs, v)),
    value("--memory", "MB", "Memory budget for the files in flight, in MB (estimated per file; a larger file runs alone) [default 4096].", |a, v| number("--memory", &mut a.memory_mb, v)),
    switch("--dry-run", "Change nothing: encode a sample in memory and estimate the savings.", |a| set(&mut a.dry_run)),
    value("--sample", "N", "With --dry-run, files sampled per kind of source [default 10].", |a, v| number("--sample", &mut a.sample, v)),
    value("--report", "FILE", "Write the job report as JSON to FILE.", |a, v| path(&mut a.report, v)),
    switch("--merge-reports", "The PATHs are JSON reports of shards of one job: merge them, print the table, and write --report.", |a| set(&mut a.merge_reports)),
    switch("--quiet", "No progress bar and no summary table (failures are still reported).", |a| set(&mut a.quiet)),
    switch("-H", "Show this help.", |a| set(&mut a.common.help)),
    switch("--help", "Show this help.", |a| set(&mut a.common.help)),
];
// ---- end of `fpack-ng recompress` ----

/// fpack flags we recognise but do not implement, with the reason.
pub const FPACK_UNSUPPORTED: &[(&str, &str)] = &[
    ("-i2f", "lossy conversion of integer images to float is not supported: integer images are always lossless"),
    ("-n3ratio", "only used with -i2f, which is not supported"),
    ("-n3min", "only used with -i2f, which is not supported"),
    ("-table", "tiled table compression is not supported: tables are copied unchanged"),
    ("-tableonly", "tiled table compression is not supported: tables are copied unchanged"),
];

pub const FUNPACK_UNSUPPORTED: &[(&str, &str)] = &[(
    "-Z",
    "gzip-compressing the output is not supported: pipe -S output through gzip",
)];

/// A parsed command line: the settings its flags made, and the files.
#[derive(Debug, Default)]
pub struct Parsed<S> {
    pub args: S,
    pub files: Vec<String>,
}

/// Parse arguments against a table, applying each flag's effect in order
/// (a later flag overrides an earlier one). `-` alone is a file (standard
/// input); `--` ends the flags.
pub fn parse<S: Default>(
    args: &[String],
    table: &[Flag<S>],
    unsupported: &[(&str, &str)],
) -> Result<Parsed<S>, String> {
    let mut out = Parsed::<S>::default();
    let mut i = 0;
    let mut flags_done = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if flags_done || a == "-" || !a.starts_with('-') {
            out.files.push(a.clone());
            continue;
        }
        if a == "--" {
            flags_done = true;
            continue;
        }
        if let Some((_, why)) = unsupported.iter().find(|(n, _)| n == a) {
            return Err(format!("{a}: {why}"));
        }
        let def = table
            .iter()
            .find(|f| f.name == a)
            .or_else(|| {
                table
                    .iter()
                    .find(|f| matches!(f.effect, Effect::Family(..)) && a.starts_with(f.name))
            })
            .ok_or_else(|| format!("unknown flag {a} (see --help)"))?;
        let mut next_value = |meta: &str| {
            let v = args
                .get(i)
                .ok_or_else(|| format!("{a} needs a value ({meta})"))?;
            i += 1;
            Ok::<&str, String>(v)
        };
        match &def.effect {
            Effect::Switch(apply) => apply(&mut out.args)?,
            Effect::Value(meta, apply) => apply(&mut out.args, next_value(meta)?)?,
            Effect::Family(meta, apply) => apply(&mut out.args, a, next_value(meta)?)?,
        }
    }
    Ok(out)
}

/// `--help` text.
pub fn help<S>(tool: &str, summary: &str, usage: &str, table: &[Flag<S>]) -> String {
    let mut s = format!(
        "{tool} {} — {summary}\n\nusage: {usage}\n\n",
        env!("CARGO_PKG_VERSION")
    );
    for f in table {
        let left = match f.value() {
            Some(v) => format!("{} {v}", f.name),
            None => f.name.to_string(),
        };
        s.push_str(&format!("  {left:<16} {}\n", f.help));
    }
    s
}

/// A man page (roff) generated from the same table.
pub fn man_page<S>(
    tool: &str,
    summary: &str,
    usage: &str,
    table: &[Flag<S>],
    description: &str,
    exit_status: &str,
) -> String {
    let esc = |t: &str| t.replace('\\', "\\\\").replace('-', "\\-");
    let mut s = format!(
        ".TH {} 1 \"\" \"fpack-ng {}\" \"User Commands\"\n.SH NAME\n{} \\- {}\n.SH SYNOPSIS\n.B {}\n{}\n.SH DESCRIPTION\n{}\n.SH OPTIONS\n",
        tool.to_uppercase(),
        env!("CARGO_PKG_VERSION"),
        esc(tool),
        esc(summary),
        esc(tool),
        esc(usage.trim_start_matches(tool).trim()),
        esc(description)
    );
    for f in table {
        s.push_str(".TP\n");
        match f.value() {
            Some(v) => s.push_str(&format!(".B {} \\fI{}\\fR\n", esc(f.name), v)),
            None => s.push_str(&format!(".B {}\n", esc(f.name))),
        }
        s.push_str(&esc(f.help));
        s.push('\n');
    }
    s.push_str(".SH EXIT STATUS\n");
    s.push_str(&esc(exit_status));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value each flag accepts, by the name of its value.
    fn sample(meta: &str) -> &'static str {
        match meta {
            "N" => "3",
            "AXES" => "4,4",
            "LEVEL" => "4",
            "SCALE" => "2",
            "DEV" => "cpu",
            "MODEL" => "idf",
            "C" => "16",
            "MODE" => "on",
            "NAME" | "ALG" => "gzip2",
            "I/N" => "1/2",
            "MB" => "100",
            _ => "x",
        }
    }

    /// Every flag of `table` changes the settings it starts from: no flag
    /// can be listed and silently ignored.
    fn check<S: Default + std::fmt::Debug>(tool: &str, table: &[Flag<S>]) {
        let fresh = format!("{:?}", S::default());
        for f in table {
            let mut args = S::default();
            let applied = match &f.effect {
                Effect::Switch(apply) => apply(&mut args),
                Effect::Value(meta, apply) => apply(&mut args, sample(meta)),
                Effect::Family(meta, apply) => apply(&mut args, f.name, sample(meta)),
            };
            assert_eq!(applied, Ok(()), "{tool} {}", f.name);
            assert_ne!(
                format!("{args:?}"),
                fresh,
                "{tool} {} changes nothing: a flag without an effect",
                f.name
            );
        }
        let mut names: Vec<_> = table.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), table.len(), "{tool}: a flag is listed twice");
    }

    #[test]
    fn every_flag_has_an_effect() {
        check("fpack-ng", FPACK_FLAGS);
        check("funpack-ng", FUNPACK_FLAGS);
        check("fpack-ng recompress", RECOMPRESS_FLAGS);
    }

    #[test]
    fn algorithm_flags_resolve_through_the_registry() {
        let p =
            parse::<FpackArgs>(&["-g2".to_string(), "f".to_string()], FPACK_FLAGS, &[]).unwrap();
        let id = p.args.compress.algorithm.unwrap();
        assert_eq!(fpackng::codec::find(&id).unwrap().short_names(), ["gzip2"]);
        assert_eq!(p.files, ["f"]);
        let e = parse::<FpackArgs>(
            &["--codec".to_string(), "nosuch".to_string()],
            FPACK_FLAGS,
            &[],
        )
        .unwrap_err();
        assert!(e.contains("unknown algorithm nosuch"), "{e}");
    }

    #[test]
    fn quantize_family_and_order() {
        let args: Vec<String> = ["-qz42", "8", "-q", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = parse::<FpackArgs>(&args, FPACK_FLAGS, &[]).unwrap();
        // The later -q 0 turns quantization off; the seed of -qz42 stays.
        assert_eq!(p.args.compress.options.quantize, None);
        assert_eq!(p.args.compress.options.dither_seed, DitherSeed::Fixed(42));
    }
}
