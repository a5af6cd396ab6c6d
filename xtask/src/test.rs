//! `cargo xtask test`: every test of the workspace, then the benchmark harness in its short mode.

use std::process::Command;

use crate::env;
use crate::runner;
use crate::setup;

fn has_nextest() -> bool {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `cargo xtask test`: every test of the workspace (with cargo-nextest when installed), then
/// `cargo xtask bench --short`.
pub fn run(args: &[String]) -> Result<i32, String> {
    let torch = setup::ensure_torch()?;
    setup::ensure_test_extras(&torch)?;
    let binary = runner::build(&torch)?;
    let mut command = env::cargo(&torch);
    if has_nextest() {
        command.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        eprintln!("stoker: cargo-nextest not found; running `cargo test`");
        command.args(["test", "--workspace", "--no-fail-fast"]);
    }
    command.args(args).env("STOKER_BIN", &binary);
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let tests = status.code().unwrap_or(1);
    if !args.is_empty() {
        // A filtered test run (`cargo xtask test -E ...`) is not the whole suite.
        return Ok(tests);
    }
    // xtask is a workspace of its own: its unit tests run here.
    eprintln!("stoker: cargo test --manifest-path xtask/Cargo.toml");
    let xtask_tests = env::cargo(&torch)
        .args(["test", "--quiet", "--manifest-path", "xtask/Cargo.toml"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?
        .code()
        .unwrap_or(1);
    let tests = if tests != 0 { tests } else { xtask_tests };
    // The benchmark harness in its short mode, so that the comparison code cannot rot (no
    // timing is judged; a PyTorch reference that trains another model than stoker fails it).
    eprintln!("stoker: cargo xtask bench --short");
    let bench = match crate::bench::run(&["--short".to_string()]) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("xtask error: bench --short: {message}");
            1
        }
    };
    Ok(if tests != 0 { tests } else { bench })
}
