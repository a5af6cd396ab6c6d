//! `cargo xtask example NAME [ARGS]...`: runs one of the workspace's examples (`examples/`) with
//! the torch environment the runner gets, so that a program using the library API finds libtorch.

use crate::env;
use crate::setup;

/// Builds and runs example `args[0]` with the rest of `args` as its arguments.
pub fn run(args: &[String]) -> Result<i32, String> {
    let Some((name, rest)) = args.split_first() else {
        return Err("usage: cargo xtask example NAME [ARGS]... (examples/NAME.rs)".into());
    };
    let torch = setup::ensure_torch()?;
    let status = env::cargo(&torch)
        .args(["run", "--quiet", "--example", name, "--"])
        .args(rest)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    Ok(status.code().unwrap_or(1))
}
