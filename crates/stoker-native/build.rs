//! Compiles `csrc/native.cpp`, the LibTorch functions `stoker::native` calls that tch does not
//! bind, and `csrc/c10d.cpp`, libtorch's Gloo process group for data-parallel training, against
//! the libtorch torch-sys builds against: the same include directories and C++ ABI, found the
//! way torch-sys finds them.

use std::path::PathBuf;
use std::process::Command;

/// What torch-sys asks a Python interpreter when `LIBTORCH_USE_PYTORCH` is set.
const PYTORCH_DETAILS: &str = "
import torch
from torch.utils import cpp_extension
print('CXX11:', torch._C._GLIBCXX_USE_CXX11_ABI)
for path in cpp_extension.include_paths():
    print('INCLUDE:', path)
";

fn main() {
    println!("cargo:rerun-if-changed=csrc/native.cpp");
    println!("cargo:rerun-if-changed=csrc/c10d.cpp");
    println!("cargo:rerun-if-changed=csrc/error.h");
    println!("cargo:rerun-if-changed=vendor/gloo");
    for var in [
        "LIBTORCH_USE_PYTORCH",
        "LIBTORCH_INCLUDE",
        "LIBTORCH_CXX11_ABI",
        "VIRTUAL_ENV",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let (includes, abi) = if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        from_python()
    } else {
        from_libtorch_dir()
    };
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .includes(&includes)
        // Gloo's headers, which libtorch's ProcessGroupGloo.hpp includes (vendor/gloo/README.md).
        .include("vendor/gloo/include")
        .define("USE_C10D_GLOO", None)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("csrc/native.cpp")
        .file("csrc/c10d.cpp")
        .compile("stoker_native");
}

/// The include directories and ABI of the torch the active Python imports (torch-sys's
/// `LIBTORCH_USE_PYTORCH` mode, which `cargo xtask` uses).
fn from_python() -> (Vec<PathBuf>, String) {
    // torch-sys's choice of interpreter: `python` inside a virtual environment, else `python3`.
    let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
        "python"
    } else {
        "python3"
    };
    let output = Command::new(python)
        .args(["-c", PYTORCH_DETAILS])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} to locate torch's headers: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut includes = Vec::new();
    let mut abi = None;
    for line in stdout.lines() {
        if let Some(flag) = line.strip_prefix("CXX11: ") {
            abi = Some(if flag == "True" { "1" } else { "0" }.to_owned());
        }
        if let Some(path) = line.strip_prefix("INCLUDE: ") {
            includes.push(PathBuf::from(path));
        }
    }
    let abi = abi.unwrap_or_else(|| {
        panic!(
            "{python} did not report torch's C++ ABI: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (includes, abi)
}

/// The include directories and ABI of a libtorch directory (torch-sys's `LIBTORCH` mode):
/// `LIBTORCH_INCLUDE` or the parent of the lib directory torch-sys reports, and
/// `LIBTORCH_CXX11_ABI` (default 1).
fn from_libtorch_dir() -> (Vec<PathBuf>, String) {
    let root = match std::env::var_os("LIBTORCH_INCLUDE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let lib = std::env::var_os("DEP_TCH_LIBTORCH_LIB").expect(
                "torch-sys did not report its libtorch (DEP_TCH_LIBTORCH_LIB); set \
                 LIBTORCH_INCLUDE to the directory holding libtorch's include/",
            );
            PathBuf::from(lib)
                .parent()
                .expect("libtorch's lib directory has a parent")
                .to_path_buf()
        }
    };
    let includes = vec![
        root.join("include"),
        root.join("include/torch/csrc/api/include"),
    ];
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    (includes, abi)
}
