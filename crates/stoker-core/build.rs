//! Compiles `csrc/native.cpp`, the LibTorch functions `stoker::native` calls that tch does not
//! bind, against the libtorch that torch-sys found (its `DEP_TCH_LIBTORCH_LIB`).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/native.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect(
        "torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB); \
         build through `cargo xtask`, which sets LIBTORCH_USE_PYTORCH=1",
    ));
    let root = lib.parent().expect("libtorch's lib/ has a parent");
    // PyPI's torch wheels (stoker pins 2.11.0) use the C++11 ABI, as torch-sys assumes.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("csrc/native.cpp")
        .compile("stoker_native");
}
