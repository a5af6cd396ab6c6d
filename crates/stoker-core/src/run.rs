//! Run directories: `<output_dir>/<name>/version_<N>/`, as Lightning's CSVLogger lays them out.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{Result, StokerError};

/// The highest `version_<N>` under `experiment_dir`, if any.
pub fn latest_version(experiment_dir: &Path) -> Option<usize> {
    fs::read_dir(experiment_dir)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()?
                .strip_prefix("version_")?
                .parse::<usize>()
                .ok()
        })
        .max()
}

/// Creates the next free `version_<N>` directory under `<output_dir>/<name>` and returns it
/// with its number. Safe against two runs starting at once: each gets its own version.
pub fn create_run_dir(output_dir: &Path, name: &str) -> Result<(PathBuf, usize)> {
    let experiment_dir = output_dir.join(name);
    fs::create_dir_all(&experiment_dir).map_err(|e| StokerError::io(&experiment_dir, e))?;
    let mut version = latest_version(&experiment_dir).map_or(0, |v| v + 1);
    loop {
        let dir = experiment_dir.join(format!("version_{version}"));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok((dir, version)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => version += 1,
            Err(e) => return Err(StokerError::io(&dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up() {
        let out = std::env::temp_dir().join(format!("stoker-run-{}", std::process::id()));
        let _ = fs::remove_dir_all(&out);
        let (a, va) = create_run_dir(&out, "exp").unwrap();
        let (b, vb) = create_run_dir(&out, "exp").unwrap();
        assert_eq!((va, vb), (0, 1));
        assert!(a.ends_with("exp/version_0") && b.ends_with("exp/version_1"));
        fs::remove_dir_all(&out).unwrap();
    }
}
