//! Build script: does nothing unless the `tch` feature is on.
//!
//! With `tch`, keep libtorch_cuda linked. Rust links with `--as-needed`, and
//! nothing references a libtorch_cuda symbol directly (CUDA kernels register
//! themselves when the library loads), so the linker drops it and
//! `tch::Cuda::is_available()` is false even on a GPU machine (tch-rs issues
//! #907, #980). `--no-as-needed -ltorch` keeps libtorch.so, whose own
//! DT_NEEDED entries include libtorch_cuda.so; the rpath finds libtorch where
//! it was at build time (elsewhere: LD_LIBRARY_PATH, see docs/neural-gpu.md).
//! `DEP_TCH_LIBTORCH_LIB` comes from torch-sys (`links = "tch"`), which is
//! why torch-sys is a direct dependency. Link args reach only this package's
//! own binaries and tests, so the CLI crate runs this same script
//! (`build = "../build.rs"`) and depends on torch-sys too.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
