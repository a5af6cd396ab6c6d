//! `cargo xtask gpu-pack [DIR]`: everything the one-call GPU check needs, in one folder of at
//! most 64 MiB (default `.gpu/`, which git ignores), for a GPU machine with its own torch but
//! no Rust and no internet (`../shared/GPU.md`):
//!
//! - `stoker`, the runner as `cargo xtask train` builds it (this project's one optimized
//!   profile), stripped; it loads that machine's libtorch through `LD_LIBRARY_PATH`;
//! - `xtask`, this program, which runs `bench` there as here when `STOKER_PACKED` names the
//!   folder (it then builds and installs nothing);
//! - `configs/`, `data/`, `bench/configs/`, `bench/reference/`: what the runs read;
//! - `run.sh`, the check itself, and `compare.py`, which turns its runs into `summary.md`.
//!
//! There: `bash .gpu/run.sh` (or with `OUT=...`); `DEVICE=cpu QUICK=1` runs the same script
//! briefly on a CPU, which is how it is tested here.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::workspace_root;
use crate::{runner, setup};

/// The most a device call carries.
const LIMIT_BYTES: u64 = 64 << 20;

/// The check's script and its summary, written into the folder.
const RUN_SH: &str = include_str!("gpu_check/run.sh");
const COMPARE_PY: &str = include_str!("gpu_check/compare.py");

/// Marks a folder as a pack, so that packing again may empty it.
const MARKER: &str = "STOKER_GPU_PACK";

/// The folders copied from the workspace, with the extensions kept.
const COPIED: [(&str, &[&str]); 4] = [
    ("configs", &["yaml"]),
    ("data/fno", &["npz", "md"]),
    ("bench/configs", &["yaml"]),
    ("bench/reference", &["py"]),
];

/// `cargo xtask gpu-pack [DIR]`.
pub fn run(args: &[String]) -> Result<i32, String> {
    if args.len() > 1 || args.first().is_some_and(|a| a.starts_with('-')) {
        return Err("usage: cargo xtask gpu-pack [DIR]   (default: .gpu)".into());
    }
    let root = workspace_root();
    let dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".gpu"));
    let torch = setup::ensure_torch()?;
    let binary = runner::build(&torch)?;
    empty(&dir)?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    write(
        MARKER,
        "a folder written by cargo xtask gpu-pack; packing again empties it\n",
    )?;
    strip(&binary, &dir.join("stoker"))?;
    let xtask = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    strip(&xtask, &dir.join("xtask"))?;
    for (folder, extensions) in COPIED {
        copy_folder(&root.join(folder), &dir.join(folder), extensions)?;
    }
    write("run.sh", RUN_SH)?;
    write("compare.py", COMPARE_PY)?;
    let size = folder_size(&dir)?;
    if size > LIMIT_BYTES {
        return Err(format!(
            "{} holds {} MiB, more than the {} MiB a device call carries",
            dir.display(),
            size >> 20,
            LIMIT_BYTES >> 20
        ));
    }
    println!(
        "packed {} ({:.1} MiB). On the GPU machine: bash {}/run.sh  (results in $OUT)",
        dir.display(),
        size as f64 / (1 << 20) as f64,
        dir.file_name()
            .map_or(".".into(), |n| n.to_string_lossy().into_owned())
    );
    Ok(0)
}

/// Creates `dir`, or empties it when an earlier pack made it; refuses any other folder with
/// something in it.
fn empty(dir: &Path) -> Result<(), String> {
    if dir.join(MARKER).is_file() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("emptying {}: {e}", dir.display()))?;
    } else if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(format!(
            "{} is not empty and was not written by gpu-pack: give an empty or new folder",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Copies `binary` without its symbols (`strip`), or as it is where `strip` is missing.
fn strip(binary: &Path, to: &Path) -> Result<(), String> {
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(to)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        eprintln!("gpu-pack: `strip` failed or is missing: the binary goes unstripped");
        copy(binary, to)?;
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

/// Copies the files of `from` (not its subfolders) whose extension is one of `extensions`.
fn copy_folder(from: &Path, to: &Path, extensions: &[&str]) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let kept = path
            .extension()
            .is_some_and(|e| extensions.iter().any(|x| e == *x));
        if path.is_file() && kept {
            copy(
                &path,
                &to.join(path.file_name().expect("a file has a name")),
            )?;
        }
    }
    Ok(())
}

fn folder_size(dir: &Path) -> Result<u64, String> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let meta = entry.metadata().map_err(|e| e.to_string())?;
        total += if meta.is_dir() {
            folder_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
