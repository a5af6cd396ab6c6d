//! `cargo xtask` keeps working after a plugin crate is removed (or renamed, or absent on another
//! branch): the generated runner that still names it is regenerated before cargo needs it.
//!
//! Runs on a copy of the workspace's sources with its own target directory (only xtask is built).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The workspace's manifests and sources (no data, no build outputs, no runs).
fn copy_workspace(root: &Path) -> PathBuf {
    let copy = std::env::temp_dir().join(format!("stoker-plugin-removal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    for dir in [".cargo", "crates", "plugins", "xtask", "tests", "examples"] {
        copy_tree(&root.join(dir), &copy.join(dir));
    }
    for file in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(root.join(file), copy.join(file)).unwrap();
    }
    copy
}

fn cargo(dir: &Path, args: &[&str]) -> Output {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn xtask_works_after_a_plugin_is_removed_or_renamed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = copy_workspace(root);
    let manifest = copy.join("runner/stoker/Cargo.toml");

    let created = cargo(&copy, &["xtask", "new-plugin", "short-lived"]);
    assert!(created.status.success(), "{}", text(&created));
    let runner = std::fs::read_to_string(&manifest).unwrap();
    assert!(runner.contains("plugins/short-lived"), "{runner}");

    // Removed: every command still starts, and the runner no longer names it.
    std::fs::remove_dir_all(copy.join("plugins/short-lived")).unwrap();
    let help = cargo(&copy, &["xtask", "help"]);
    assert!(help.status.success(), "{}", text(&help));
    let runner = std::fs::read_to_string(&manifest).unwrap();
    assert!(!runner.contains("short-lived"), "{runner}");
    let metadata = cargo(&copy, &["metadata", "--no-deps", "--format-version", "1"]);
    assert!(metadata.status.success(), "{}", text(&metadata));

    // Renamed: the runner follows the new directory.
    std::fs::rename(
        copy.join("plugins/example-plugin"),
        copy.join("plugins/renamed-example"),
    )
    .unwrap();
    let help = cargo(&copy, &["xtask", "help"]);
    assert!(help.status.success(), "{}", text(&help));
    let runner = std::fs::read_to_string(&manifest).unwrap();
    assert!(runner.contains("plugins/renamed-example"), "{runner}");
    let metadata = cargo(&copy, &["metadata", "--no-deps", "--format-version", "1"]);
    assert!(metadata.status.success(), "{}", text(&metadata));

    std::fs::remove_dir_all(&copy).unwrap();
}
