//! Builds libjxl 0.11 from the sources shipped in the `jpegxl-src` crate
//! (cmake + the system C++ compiler) and links it statically.
//!
//! The cmake crate picks CMAKE_BUILD_TYPE from this package's profile
//! (opt-level 0 gives an unoptimised "Debug" libjxl, tens of times slower);
//! the workspace sets `[profile.dev.package.libjxl-enc] opt-level = 3` so
//! debug test builds still link an optimised libjxl.

fn main() {
    // Only this script decides how libjxl is built; without this line cargo
    // would rerun it (and cmake) whenever any file of the package changes.
    println!("cargo:rerun-if-changed=build.rs");
    jpegxl_src::build();
}
