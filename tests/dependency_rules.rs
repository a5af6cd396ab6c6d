//! The workspace's layers, read from `cargo metadata`, so that a crate breaking them fails CI
//! (docs/architecture.md, "Who may depend on whom"):
//! - `stoker-core`, the contracts, depends on no workspace crate but its derive, and builds no
//!   C++ (no `cc`, no `torch-sys` below it);
//! - the base (the contracts, the loop, the LibTorch fast paths, the data building blocks, and
//!   the facade `stoker` over them) depends on nothing outside it;
//! - no crate depends on a component crate (one that registers components, outside the base)
//!   or on the run lifecycle, except the lifecycle itself, which links them;
//! - only the generated runner names a plugin.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A workspace package: its manifest's directory and its dependencies on workspace crates.
struct Package {
    dir: PathBuf,
    /// (dependency, kind: "normal", "dev" or "build").
    workspace_deps: Vec<(String, String)>,
}

fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn packages() -> BTreeMap<String, Package> {
    let output = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let members: BTreeSet<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            let workspace_deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| members.contains(d["name"].as_str().unwrap()))
                .map(|d| {
                    let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                    (d["name"].as_str().unwrap().to_string(), kind)
                })
                .collect();
            let package = Package {
                dir: manifest.parent().unwrap().to_path_buf(),
                workspace_deps,
            };
            (p["name"].as_str().unwrap().to_string(), package)
        })
        .collect()
}

/// Whether any Rust file under `dir` registers a component (`#[component(...)]`).
fn registers_components(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            registers_components(&path)
        } else {
            path.extension().is_some_and(|e| e == "rs")
                && std::fs::read_to_string(&path).is_ok_and(|text| {
                    text.lines()
                        .any(|line| line.trim_start().starts_with("#[component("))
                })
        }
    })
}

/// The base every crate may build on: the contracts, the loop, the LibTorch fast paths, the data
/// building blocks, and the facade that re-exports them. (The loop registers its own
/// components, `Default_trainer`, `ModelCheckpoint`, ..., and is part of the base all the same.)
const BASE: [&str; 6] = [
    "stoker-core",
    "stoker-derive",
    "stoker-trainer",
    "stoker-native",
    "stoker-dataset",
    "stoker",
];
/// The run lifecycle, which links the framework's component crates, and the binary.
const LIFECYCLE: [&str; 3] = ["stoker-run", "stoker-cli", "stoker-runner"];

#[test]
fn the_crates_keep_to_their_layers() {
    let packages = packages();
    let plugins_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let is_plugin = |name: &str| packages[name].dir.starts_with(&plugins_dir);
    let components: BTreeSet<&str> = packages
        .iter()
        .filter(|(n, p)| !BASE.contains(&n.as_str()) && registers_components(&p.dir.join("src")))
        .map(|(n, _)| n.as_str())
        .collect();
    // Sanity: the detection sees the framework's and the plugins' component crates.
    for expected in [
        "stoker-models",
        "stoker-losses",
        "stoker-loggers",
        "neural-operator",
    ] {
        assert!(components.contains(expected), "{components:?}");
    }
    assert!(!components.contains("stoker-report"), "{components:?}");
    let mut broken = Vec::new();
    for (name, package) in &packages {
        let name = name.as_str();
        for (dep, kind) in &package.workspace_deps {
            let dep = dep.as_str();
            if is_plugin(dep) && name != "stoker-runner" {
                broken.push(format!(
                    "{name} names the plugin {dep} ({kind}): only the runner may"
                ));
            }
            if kind == "dev" || LIFECYCLE.contains(&name) || name == "stoker-e2e" {
                continue;
            }
            if name == "stoker-core" && dep != "stoker-derive" {
                broken.push(format!(
                    "stoker-core depends on {dep}: the contracts depend on no other crate"
                ));
            }
            if BASE.contains(&name) && !BASE.contains(&dep) {
                broken.push(format!(
                    "{name} (base) depends on {dep}, which is not part of the base"
                ));
            }
            if components.contains(dep) {
                broken.push(format!("{name} depends on the component crate {dep}"));
            }
            if LIFECYCLE.contains(&dep) {
                broken.push(format!("{name} depends on {dep}, the run lifecycle"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "dependency rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_contracts_crate_builds_no_cpp() {
    let output = cargo()
        .args([
            "tree",
            "-p",
            "stoker-core",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--offline",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let crates: BTreeSet<&str> = tree.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(crates.contains("burn"), "{tree}");
    for cpp in ["cc", "torch-sys", "tch", "cmake"] {
        assert!(!crates.contains(cpp), "stoker-core pulls in {cpp}:\n{tree}");
    }
}
