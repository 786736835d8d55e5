//! The flag tables of fpack-ng and funpack-ng.
//!
//! fpack's flags are single-dash and multi-letter (`-g2`, `-qzt`, `-q123`),
//! which derive-based parsers handle badly, so each tool's flags are one
//! table here; the parser, `--help` and the man pages are all generated from
//! it, so they cannot drift apart.

/// One flag definition.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// The flag as typed, e.g. "-g2". Flags whose `prefix` is true also
    /// match longer spellings (fpack's `-q` family: `-qz`, `-qt`, `-q42`).
    pub name: &'static str,
    pub prefix: bool,
    /// Name of the value that follows as the next argument, if any.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

const fn flag(name: &'static str, value: Option<&'static str>, help: &'static str) -> Flag {
    Flag {
        name,
        prefix: false,
        value,
        help,
    }
}

pub const FPACK_FLAGS: &[Flag] = &[
    flag("-r", None, "Rice compression (RICE_1) [default]."),
    flag("-h", None, "Hcompress compression (HCOMPRESS_1)."),
    flag("-g", None, "GZIP_1 (per-tile) compression."),
    flag("-g1", None, "GZIP_1 (per-tile) compression."),
    flag("-g2", None, "GZIP_2 (per-tile) compression, with byte shuffling."),
    flag("-p", None, "PLIO_1 compression (non-negative integer images below 2^24 only)."),
    flag("-d", None, "Tile the image without compression (NOCOMPRESS; for debugging)."),
    flag("--jxl", None, "JPEG-XL lossless compression (JXL_1) of 8- and 16-bit integer images; other images fall back to a standard codec. Readable by funpack-ng (and the cfitsio shim / astropy plugin where installed), not by unmodified fpack/funpack."),
    flag("--jxl-effort", Some("N"), "JPEG-XL encoder effort 1..10 [default 7]; higher is slower for little gain on noisy frames."),
    flag("--mix", None, "Fast lossless compression of any integer image (MIXPRED_1: adaptive predictor mixing, context modelling, rANS): smaller than Rice, at a few times Rice's CPU. Readable by funpack-ng (and the cfitsio shim / astropy plugin where installed), not by unmodified fpack/funpack."),
    flag("--codec", Some("NAME"), "Compress with any algorithm of fpack-ng's registry, by ZCMPTYPE or short name (RICE_1, rice, GZIP_2, MIXPRED_1, mixpred, jxl, ...)."),
    flag("-n", Some("MODEL"), "Neural lossless compression of 8- and 16-bit integer images: -n idf is the integer discrete flow (IDF_1), -n pixelcnn the autoregressive PixelCNN-family codec (PCNN_1, slower, usually smaller), each with its built-in model; other images fall back to a standard codec. Readable by funpack-ng (and the cfitsio shim / astropy plugin where installed), not by unmodified fpack/funpack."),
    flag("--model", Some("PATH"), "With -n idf or -n pixelcnn, code with the model file PATH (.idfm or .pcnm) instead of the built-in model."),
    flag("--pcnn-coding", Some("C"), "With -n pixelcnn: split [default] codes each 16-bit value as its high byte, then its low byte given the high byte (the MSB/LSB split); 16 codes it as one 16-bit symbol (for comparison; the same model)."),
    flag("--pcnn-batch", Some("N"), "With -n pixelcnn: pixels per network run in the encoder [default 0: whole rows]. Changes speed only; the output is identical for every N."),
    flag("--device", Some("DEV"), "Where neural codecs compute: auto (a GPU when one is present and this build has the tch feature, else the CPU), cpu or cuda [default auto]. The output is identical on every device."),
    flag("-w", None, "Compress the whole image as a single large tile."),
    flag("-t", Some("AXES"), "Comma-separated tile dimensions, e.g. -t 100,100 [default: row by row]."),
    flag("--cube", Some("MODE"), "Integer images with 3 or more axes (ramps, spectral and time cubes): code each plane as a residual from the planes before it (CUBE_1, tiles spanning all planes). MODE: auto [default]: with a standard algorithm (-r, -h, -g, -p, -d, or none) the output stays standard and -v reports what CUBE_1 would save; with a non-standard one (--mix, --jxl, -n, --codec NAME) both are tried and CUBE_1 is kept when it is at least 2% smaller; on forces it; prev or linear force it with that predictor; off never uses it. CUBE_1 files are readable by funpack-ng (and the cfitsio shim / astropy plugin where installed); standard fpack/funpack/astropy refuse them with an error."),
    Flag {
        name: "-q",
        prefix: true,
        value: Some("LEVEL"),
        help: "Quantize floating-point images: LEVEL > 0 is relative to the background noise, < 0 an absolute step, 0 keeps them lossless. -q0 LEVEL: no dithering; -qz: do not dither zeros; -qt/-qzt: dither seed from the first tile's checksum; -qN/-qzN: dither seed N (1..10000). Without -q, fpack-ng keeps floating-point images LOSSLESS (unlike fpack).",
    },
    flag("-s", Some("SCALE"), "Scale factor for lossy Hcompress [default 0 = lossless]."),
    flag("-v", None, "Verbose: for each file, print sizes, ratio, time and what was done to each HDU."),
    flag("-T", None, "Compare the compression algorithms on each image HDU; files are not changed."),
    flag("-R", Some("FILE"), "With -T, also write the comparison report to FILE."),
    flag("-F", None, "Replace the input file by the compressed file of the same name (after verification)."),
    flag("-D", None, "Delete the input file after the output has been written and verified."),
    flag("-Y", None, "Confirm -F or -D when the compression is lossy (required then)."),
    flag("-O", Some("FILE"), "Output file name (a single input file only)."),
    flag("-S", None, "Write the compressed file to standard output."),
    flag("-L", None, "List the HDUs of each file; files are not changed. Without files, list the compression algorithms of this build (ZCMPTYPE, names for --codec, standard or new)."),
    flag("-C", None, "Do not write CHECKSUM and DATASUM keywords."),
    flag("-H", None, "Show this help."),
    flag("-V", None, "Show the version."),
    flag("--threads", Some("N"), "Use N threads for tiles [default: all cores]."),
    flag("--help", None, "Show this help."),
    flag("--version", None, "Show the version."),
];

pub const FUNPACK_FLAGS: &[Flag] = &[
    flag("-E", Some("HDULIST"), "Unpack only these HDUs: comma-separated extension numbers (0 = primary) or EXTNAMEs. A single HDU becomes the primary array of the output."),
    flag("-P", Some("PREFIX"), "Prepend PREFIX to the output file names."),
    flag("-O", Some("FILE"), "Output file name (a single input file only)."),
    flag("-F", None, "Replace the input file by the uncompressed file of the same name (after verification)."),
    flag("-D", None, "Delete the input file after the output has been written and verified."),
    flag("-S", None, "Write the uncompressed file to standard output."),
    flag("-L", None, "List the HDUs of each file; files are not changed."),
    flag("-C", None, "Do not write CHECKSUM and DATASUM keywords."),
    flag("-v", None, "Verbose: for each file, print sizes, ratio and time."),
    flag("-H", None, "Show this help."),
    flag("-V", None, "Show the version."),
    flag("--model", Some("PATH"), "Also load the model file PATH (.idfm or .pcnm) for IDF_1 or PCNN_1 tiles coded with a model that is not built in (models are found by SHA-256; FPACKNG_MODELS lists more model directories)."),
    flag("--device", Some("DEV"), "Where neural codecs compute: auto, cpu or cuda [default auto]; the pixels are identical on every device."),
    flag("--no-verify-checksums", None, "Do not check the CHECKSUM/DATASUM keywords of the input HDUs (by default a mismatch stops with an error naming the HDU)."),
    flag("--threads", Some("N"), "Use N threads for tiles [default: all cores]."),
    flag("--help", None, "Show this help."),
    flag("--version", None, "Show the version."),
];

// ---- `fpack-ng recompress` (archive jobs; see docs/recompress.md) ----
pub const RECOMPRESS_FLAGS: &[Flag] = &[
    flag("--to", Some("ALG"), "Target algorithm: any that fpack-ng writes, by ZCMPTYPE or short name (rice, gzip, gzip2, hcompress, plio, mixpred, jxl, ...); cubes stay standard with a standard target (CUBE_1 only with a non-standard one). Required."),
    flag("-t", Some("AXES"), "Comma-separated tile dimensions for the target [default: the algorithm's default tiling]."),
    flag("-w", None, "Compress each image as a single tile."),
    flag("--jxl-effort", Some("N"), "JPEG-XL encoder effort 1..10 [default 7]."),
    flag("--model", Some("PATH"), "With --to idf or --to pcnn, code with the model file PATH (.idfm or .pcnm) instead of the built-in model."),
    flag("--device", Some("DEV"), "Where neural codecs compute: auto, cpu or cuda [default auto]; the output is identical on every device."),
    flag("-C", None, "Do not write CHECKSUM and DATASUM keywords."),
    flag("-D", None, "Delete x.fits / x.fits.gz once x.fits.fz is written and verified (as fpack -D); by default originals are kept. .fz inputs are always replaced in place."),
    flag("--output-dir", Some("DIR"), "Write every result under DIR at the same relative path instead of beside or over the inputs; inputs are never modified."),
    flag("--files-from", Some("FILE"), "Also take the files listed in FILE (one per line, or the first tab-separated column of a manifest; relative to FILE's directory; # comments). May be repeated."),
    flag("--journal", Some("FILE"), "Journal to resume from and append to [default: fpack-ng-recompress.journal, or fpack-ng-recompress.shard-I-of-N.journal, in the current directory]."),
    flag("--restart", None, "Ignore an existing journal and start over."),
    flag("--shard", Some("I/N"), "Process only shard I of N (0 <= I < N): files are split by a stable hash of their relative output path, so N runs with the same arguments cover every file exactly once."),
    flag("--threads", Some("N"), "Threads for tiles, and files in flight unless --jobs is given [default: all cores]."),
    flag("--jobs", Some("N"), "Files processed at once [default: --threads]."),
    flag("--memory", Some("MB"), "Memory budget for the files in flight, in MB (estimated per file; a larger file runs alone) [default 4096]."),
    flag("--dry-run", None, "Change nothing: encode a sample in memory and estimate the savings."),
    flag("--sample", Some("N"), "With --dry-run, files sampled per kind of source [default 10]."),
    flag("--report", Some("FILE"), "Write the job report as JSON to FILE."),
    flag("--merge-reports", None, "The PATHs are JSON reports of shards of one job: merge them, print the table, and write --report."),
    flag("--quiet", None, "No progress bar and no summary table (failures are still reported)."),
    flag("-H", None, "Show this help."),
    flag("--help", None, "Show this help."),
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

/// A parsed argument list: flags with their values, in order, and files.
#[derive(Debug, Default)]
pub struct Parsed {
    pub flags: Vec<(String, Option<String>)>,
    pub files: Vec<String>,
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(f, _)| f == name)
    }
    pub fn value(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(f, _)| f == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Parse arguments against a table. `-` alone is a file (standard input);
/// `--` ends the flags.
pub fn parse(
    args: &[String],
    table: &[Flag],
    unsupported: &[(&str, &str)],
) -> Result<Parsed, String> {
    let mut out = Parsed::default();
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
            .or_else(|| table.iter().find(|f| f.prefix && a.starts_with(f.name)))
            .ok_or_else(|| format!("unknown flag {a} (see --help)"))?;
        let value = match def.value {
            Some(meta) => {
                let v = args
                    .get(i)
                    .ok_or_else(|| format!("{a} needs a value ({meta})"))?;
                i += 1;
                Some(v.clone())
            }
            None => None,
        };
        out.flags.push((a.clone(), value));
    }
    Ok(out)
}

/// `--help` text.
pub fn help(tool: &str, summary: &str, usage: &str, table: &[Flag]) -> String {
    let mut s = format!(
        "{tool} {} — {summary}\n\nusage: {usage}\n\n",
        env!("CARGO_PKG_VERSION")
    );
    for f in table {
        let left = match f.value {
            Some(v) => format!("{} {v}", f.name),
            None => f.name.to_string(),
        };
        s.push_str(&format!("  {left:<16} {}\n", f.help));
    }
    s
}

/// A man page (roff) generated from the same table.
pub fn man_page(
    tool: &str,
    summary: &str,
    usage: &str,
    table: &[Flag],
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
        match f.value {
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
