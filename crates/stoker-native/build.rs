//! Compiles `csrc/native.cpp`, the LibTorch functions `stoker::native` calls that tch does not
//! bind, and `csrc/c10d.cpp`, libtorch's Gloo process group for data-parallel training, against
//! the libtorch torch-sys builds against: the same include directories and C++ ABI, found the
//! way torch-sys finds them.
//!
//! When that libtorch is a CUDA build whose Python environment holds the CUDA and NCCL headers
//! (`cargo xtask` installs them: torch's wheel brings NCCL's and the runtime's, the set-up adds
//! `nvidia-cuda-crt` and `nvidia-cuda-cccl`), `c10d.cpp` also gets libtorch's NCCL process group
//! (`STOKER_NCCL`), and Rust code sees `cfg(stoker_nccl)`.

use std::path::PathBuf;
use std::process::Command;

/// What torch-sys asks a Python interpreter when `LIBTORCH_USE_PYTORCH` is set.
const PYTORCH_DETAILS: &str = "
import torch
from torch.utils import cpp_extension
import os
print('CXX11:', torch._C._GLIBCXX_USE_CXX11_ABI)
for path in cpp_extension.include_paths():
    print('INCLUDE:', path)
print('CUDA:', torch.version.cuda)
print('SITE:', os.path.dirname(os.path.dirname(torch.__file__)))
";

/// The headers libtorch's `ProcessGroupNCCL.hpp` needs, each found in one of the include folders
/// of the `nvidia-*` packages.
const NCCL_HEADERS: [&str; 4] = [
    "nccl.h",
    "cuda_runtime_api.h",
    "crt/host_config.h",
    "nv/target",
];

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
    println!("cargo::rustc-check-cfg=cfg(stoker_nccl)");
    let torch = if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        from_python()
    } else {
        from_libtorch_dir()
    };
    let mut build = cc::Build::new();
    if let Some(cuda_includes) = &torch.nccl {
        build
            .includes(cuda_includes)
            .define("USE_C10D_NCCL", None)
            .define("USE_CUDA", None)
            .define("STOKER_NCCL", None);
        println!("cargo:rustc-cfg=stoker_nccl");
        // ProcessGroupNCCL and the CUDA streams it uses (torch-sys links torch_cuda already).
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
    let (includes, abi) = (torch.includes, torch.abi);
    build
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

/// What the shim compiles against.
struct Torch {
    /// libtorch's include directories.
    includes: Vec<PathBuf>,
    /// `_GLIBCXX_USE_CXX11_ABI`: "1" or "0".
    abi: String,
    /// The CUDA and NCCL include directories, when the NCCL process group can be compiled.
    nccl: Option<Vec<PathBuf>>,
}

/// The include folders of a CUDA build's `nvidia-*` packages under `site` that hold
/// [`NCCL_HEADERS`]; `None` when one is missing (with a warning when only the set-up's two
/// header packages are, so that a hand-made environment learns why NCCL is left out).
///
/// The headers must be the ones torch was built with: `ProcessGroupNCCL::Options` holds an
/// `ncclConfig_t` whose layout follows `nccl.h`, and the shim allocates it at the size its headers
/// give. torch's wheel pins its `nvidia-nccl` package, so the `nccl.h` beside it is that version.
fn nccl_includes(site: &std::path::Path) -> Option<Vec<PathBuf>> {
    let nvidia = site.join("nvidia");
    if !nvidia.is_dir() {
        return None;
    }
    println!("cargo:rerun-if-changed={}", nvidia.display());
    let mut candidates = Vec::new();
    for package in std::fs::read_dir(&nvidia).ok()?.flatten() {
        let include = package.path().join("include");
        candidates.push(include.join("cccl"));
        candidates.push(include);
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for header in NCCL_HEADERS {
        match candidates.iter().find(|dir| dir.join(header).exists()) {
            Some(dir) if !found.contains(dir) => found.push(dir.clone()),
            Some(_) => {}
            None => missing.push(header),
        }
    }
    if missing.is_empty() {
        return Some(found);
    }
    if !missing.contains(&"nccl.h") {
        println!(
            "cargo:warning=stoker-native: built without NCCL (data-parallel training on CUDA): {} not found under {}; `pip install nvidia-cuda-crt nvidia-cuda-cccl` (of torch's CUDA version) into torch's environment, as `cargo xtask` does",
            missing.join(", "),
            nvidia.display()
        );
    }
    None
}

/// The include directories and ABI of the torch the active Python imports (torch-sys's
/// `LIBTORCH_USE_PYTORCH` mode, which `cargo xtask` uses), and its NCCL headers.
fn from_python() -> Torch {
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
    let mut cuda = false;
    let mut site = None;
    for line in stdout.lines() {
        if let Some(flag) = line.strip_prefix("CXX11: ") {
            abi = Some(if flag == "True" { "1" } else { "0" }.to_owned());
        }
        if let Some(path) = line.strip_prefix("INCLUDE: ") {
            includes.push(PathBuf::from(path));
        }
        if let Some(version) = line.strip_prefix("CUDA: ") {
            cuda = version != "None";
        }
        if let Some(path) = line.strip_prefix("SITE: ") {
            site = Some(PathBuf::from(path));
        }
    }
    let abi = abi.unwrap_or_else(|| {
        panic!(
            "{python} did not report torch's C++ ABI: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let nccl = match (cuda, site) {
        (true, Some(site)) => nccl_includes(&site),
        _ => None,
    };
    Torch {
        includes,
        abi,
        nccl,
    }
}

/// The include directories and ABI of a libtorch directory (torch-sys's `LIBTORCH` mode):
/// `LIBTORCH_INCLUDE` or the parent of the lib directory torch-sys reports, and
/// `LIBTORCH_CXX11_ABI` (default 1). NCCL is not looked for there.
fn from_libtorch_dir() -> Torch {
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
    Torch {
        includes,
        abi,
        nccl: None,
    }
}
