//! Build script: a static libstdc++ for the command-line tools (last
//! paragraph), and libtorch_cuda kept linked with the `tch` feature.
//!
//! With `tch`: Rust links with `--as-needed`, and nothing references a
//! libtorch_cuda symbol directly (CUDA kernels register themselves when the
//! library loads), so the linker drops it and
//! `tch::Cuda::is_available()` is false even on a GPU machine (tch-rs issues
//! #907, #980). `--no-as-needed -ltorch` keeps libtorch.so, whose own
//! DT_NEEDED entries include libtorch_cuda.so; the rpath finds libtorch where
//! it was at build time (elsewhere: LD_LIBRARY_PATH, see docs/neural-gpu.md).
//! `DEP_TCH_LIBTORCH_LIB` comes from torch-sys (`links = "tch"`), which is
//! why torch-sys is a direct dependency. Link args reach only this package's
//! own binaries and tests, so the CLI crate runs this same script
//! (`build = "../build.rs"`) and depends on torch-sys too.
//!
//! Always, for the fpack-ng package (the two command-line tools): link
//! libstdc++, which libjxl's encoder needs, statically. Loading the shared
//! libstdc++ (its relocations and symbol lookups) cost about 0.9 ms of CPU
//! per process, a sixth of compressing a small frame. jpegxl-src asks for
//! `-lstdc++`; a search directory holding only `libstdc++.a` (a copy of the
//! compiler's own), placed before the system ones, makes the linker take the
//! archive. Without a C++ compiler that reports one, the link stays dynamic.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    static_libstdcxx();
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report libtorch's lib dir: CUDA may be unavailable at run time");
        return;
    };
    let lib = std::path::PathBuf::from(lib);
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}

/// The search directory for a static libstdc++ (see the module comment).
fn static_libstdcxx() {
    let gnu_linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if std::env::var("CARGO_PKG_NAME").as_deref() != Ok("fpack-ng") || !gnu_linux {
        return;
    }
    println!("cargo:rerun-if-env-changed=CXX");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let Ok(out) = std::process::Command::new(&cxx)
        .arg("-print-file-name=libstdc++.a")
        .output()
    else {
        return;
    };
    let archive = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // An unknown file is printed back bare, not as a path.
    if !out.status.success() || !archive.is_absolute() || !archive.is_file() {
        return;
    }
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(out_dir).join("static-libstdcxx");
    let link = dir.join("libstdc++.a");
    if std::fs::create_dir_all(&dir).is_err() || std::fs::copy(&archive, &link).is_err() {
        return;
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
}
