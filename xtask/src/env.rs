//! The environment every cargo build and every run gets: torch from the cached venv.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::setup::Torch;

/// The folder of a packed copy (`cargo xtask gpu-pack`) when this xtask runs from one on
/// another machine: `$STOKER_PACKED`. There the prebuilt `stoker` in that folder is used, the
/// folder is the workspace, and nothing is generated, built or installed.
pub fn packed() -> Option<PathBuf> {
    std::env::var_os("STOKER_PACKED").map(PathBuf::from)
}

/// The workspace root (the parent of `xtask/`, or the packed folder).
pub fn workspace_root() -> PathBuf {
    if let Some(dir) = packed() {
        return dir;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// The cargo target directory (`$CARGO_TARGET_DIR`, else `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::absolute(PathBuf::from(dir)).unwrap_or_default(),
        None => workspace_root().join("target"),
    }
}

fn prepend_path(var: &str, dir: &Path) -> String {
    match std::env::var(var) {
        Ok(old) if !old.is_empty() => format!("{}:{old}", dir.display()),
        _ => dir.display().to_string(),
    }
}

/// Sets what `torch-sys` needs to build against the venv's torch, and what a binary needs to
/// load its libraries, on `command`.
pub fn apply(command: &mut Command, torch: &Torch) {
    command
        .env("VIRTUAL_ENV", &torch.venv)
        .env("PATH", prepend_path("PATH", &torch.venv.join("bin")))
        .env("LIBTORCH_USE_PYTORCH", "1")
        .env("LIBTORCH_BYPASS_VERSION_CHECK", "1")
        .env(
            "LD_LIBRARY_PATH",
            prepend_path("LD_LIBRARY_PATH", &torch.lib_dir),
        )
        .env("STOKER_TORCH_LIB", &torch.lib_dir)
        .env("STOKER_PYTHON", torch.python());
}

/// A `cargo` command with the torch environment, run from the workspace root.
pub fn cargo(torch: &Torch) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    apply(&mut command, torch);
    command
}
