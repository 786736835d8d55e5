#!/usr/bin/env bash
# Build one fuzz target with stable rustc and run it under libFuzzer.
#
#   fuzz/run-stable.sh TARGET SECONDS [extra libFuzzer flags...]
#   fuzz/run-stable.sh decode 1200
#   fuzz/run-stable.sh codec_tile 60 -use_value_profile=1
#   fuzz/run-stable.sh decode 600 -max_len=8640   # small files: far more runs/s
#
# TARGET is a bin of fuzz/Cargo.toml (decode, codec_tile). No nightly and no
# cargo-fuzz: the coverage instrumentation cargo-fuzz would ask for is made of
# stable codegen options (-Cpasses=sancov-module and -Cllvm-args), and
# libfuzzer-sys 0.4 builds libFuzzer itself with the system C++ compiler. No
# AddressSanitizer (-Zsanitizer is nightly-only), which the library does not
# need: it is #![forbid(unsafe_code)]; what is caught is panics (debug
# assertions and overflow checks included), hangs (-timeout) and memory
# blow-ups (-rss_limit_mb, -malloc_limit_mb).
#
# Everything it writes lives outside the repository, under
# ${FPACKNG_FUZZ_HOME:-$HOME/.cache/fpack-ng}:
#   target-fuzz/            the build (CARGO_TARGET_DIR)
#   fuzz-corpus/TARGET/     the corpus: seeded on first use (see below), then
#                           grown by libFuzzer; delete it to reseed
#   fuzz-artifacts/TARGET/  crash-*, timeout-*, oom-* inputs libFuzzer found
#
# Seeds. decode: the small fixtures/*.fits, tests/compat/*.fz, and the
# small fixtures compressed by Debian's fpack (RICE_1, GZIP_1, GZIP_2,
# HCOMPRESS_1, PLIO_1, none; 32x8 tiles) and, where a built fpack-ng is found
# ($FPACKNG_BIN, or the release build in ~/.cache/fpack-ng/target), by
# fpack-ng with each of its codecs. codec_tile: every tile of those .fz
# files that fits decode_tile's shapes (at most 64x16), with the 4 bytes
# decode_tile reads first (codec, pixel type, width-1, height-1) put in
# front; this needs python3 with astropy, and is skipped without it.
#
# Every process runs under `nice -n 19`. The exit status is libFuzzer's: 0
# when the time ran out without a finding.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer flags...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2

repo=$(cd "$(dirname "$0")/.." && pwd)
home=${FPACKNG_FUZZ_HOME:-$HOME/.cache/fpack-ng}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$home/target-fuzz}
corpus=$home/fuzz-corpus/$target
artifacts=$home/fuzz-artifacts/$target
triple=$(rustc -vV | sed -n 's/^host: //p')

# What cargo-fuzz passes with --sanitizer none, plus --cfg fuzzing. --target
# keeps these flags away from build scripts and proc macros.
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks"

nice -n 19 cargo build --release --manifest-path "$repo/fuzz/Cargo.toml" \
    --target "$triple" --bin "$target"
bin=$CARGO_TARGET_DIR/$triple/release/$target

# Small .fz files to seed from, made once into $home/fuzz-seeds/fz.
make_fz_seeds() {
    local dir=$home/fuzz-seeds/fz
    if [ -f "$dir/.done" ]; then
        echo "$dir"
        return
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$repo"/tests/compat/*.fz "$dir"/ 2>/dev/null || true
    local small=(tiny onerow onecol bitpix8 bitpix16 bitpix32 bitpix64
        int32_bzero uint16 headers primary_plus_ext plio_mask float32_constant
        flat_constant cube3d)
    local f
    if command -v fpack >/dev/null; then
        for f in "${small[@]}"; do
            for opt in -r -g -g2 -h -p -d; do
                nice -n 19 fpack $opt -t 32,8 -S "$repo/fixtures/$f.fits" \
                    >"$dir/fpack${opt}-$f.fits.fz" 2>/dev/null \
                    || rm -f "$dir/fpack${opt}-$f.fits.fz"
            done
        done
    fi
    local fpackng=${FPACKNG_BIN:-$HOME/.cache/fpack-ng/target/release/fpack-ng}
    if [ -x "$fpackng" ]; then
        for f in tiny bitpix8 bitpix16 uint16 float32_constant cube3d; do
            for codec in rice gzip2 hcompress jxl mixpred idf pcnn cube; do
                nice -n 19 timeout 60 "$fpackng" --codec "$codec" -t 32,8 \
                    -O "$dir/fpackng-$codec-$f.fits.fz" "$repo/fixtures/$f.fits" \
                    >/dev/null 2>&1 || rm -f "$dir/fpackng-$codec-$f.fits.fz"
            done
        done
    fi
    # Keep the corpus fast: nothing above 64 KiB.
    find "$dir" -name '*.fz' -size +64k -delete
    touch "$dir/.done"
    echo "$dir"
}

# decode_tile's seeds: one file per tile of the .fz seeds.
make_tile_seeds() {
    local fz=$1 out=$2
    python3 - "$fz" "$out" <<'EOF' || echo "no codec_tile seeds from .fz files (python3 with astropy needed)" >&2
import hashlib, os, sys, warnings
from astropy.io import fits
warnings.simplefilter("ignore")
src, out = sys.argv[1], sys.argv[2]
# Index in fpackng::codec::REGISTRY (src/codec/mod.rs): keep in step.
REGISTRY = ["RICE_1", "GZIP_1", "GZIP_2", "HCOMPRESS_1", "PLIO_1", "JXL_1",
            "MIXPRED_1", "IDF_1", "PCNN_1", "CUBE_1", "NOCOMPRESS"]
# fpackng_fuzz::TYPES: U8, I16, I32, I64, F32, F64.
TYPES = {8: 0, 16: 1, 32: 2, 64: 3, -32: 4, -64: 5}
n = 0
for name in sorted(os.listdir(src)):
    if not name.endswith(".fz"):
        continue
    try:
        hdul = fits.open(os.path.join(src, name), disable_image_compression=True)
    except Exception:
        continue
    for hdu in hdul:
        h = hdu.header
        if not h.get("ZIMAGE") or h.get("ZCMPTYPE") not in REGISTRY:
            continue
        axes = [h.get(f"ZNAXIS{i}", 1) for i in range(1, h.get("ZNAXIS", 0) + 1)]
        tiles = [h.get(f"ZTILE{i}", 1) for i in range(1, len(axes) + 1)]
        if len(axes) < 1:
            continue
        w_img, t_w = axes[0], tiles[0]
        t_h = tiles[1] if len(axes) > 1 else 1
        h_img = axes[1] if len(axes) > 1 else 1
        zbitpix = h["ZBITPIX"]
        quantized = zbitpix < 0 and "ZSCALE" in hdu.columns.names
        ptype = TYPES[32] if quantized else TYPES.get(zbitpix, 2)
        per_row = -(-w_img // t_w)
        per_col = -(-h_img // t_h)
        for row, data in enumerate(hdu.data["COMPRESSED_DATA"]):
            tx, ty = row % per_row, (row // per_row) % per_col
            w = min(t_w, w_img - tx * t_w)
            hh = min(t_h, h_img - ty * t_h)
            if not (1 <= w <= 64 and 1 <= hh <= 16) or len(data) == 0:
                continue
            b = bytes([REGISTRY.index(h["ZCMPTYPE"]), ptype, w - 1, hh - 1]) + bytes(data)
            with open(os.path.join(out, hashlib.sha1(b).hexdigest()), "wb") as f:
                f.write(b)
            n += 1
print(f"{n} codec_tile seeds", file=sys.stderr)
EOF
}

# Two targets started together share the .fz seeds: one makes them.
mkdir -p "$home"
exec 9>"$home/fuzz-seeds.lock"
flock 9
if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
    mkdir -p "$corpus"
    fz=$(make_fz_seeds)
    case $target in
    decode)
        cp "$fz"/*.fz "$corpus"/
        find "$repo/fixtures" -name '*.fits' -size -32k -exec cp {} "$corpus"/ \;
        ;;
    codec_tile)
        make_tile_seeds "$fz" "$corpus"
        ;;
    esac
    echo "seeded $corpus with $(ls "$corpus" | wc -l) inputs" >&2
fi
exec 9>&-

mkdir -p "$artifacts"
exec nice -n 19 "$bin" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$@" "$corpus"
