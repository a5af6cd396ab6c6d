//! Run directories: `<output_dir>/<name>/version_<N>/`, as Lightning's CSVLogger lays them out.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Read, Seek, Write};
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

/// The file in a run directory whose advisory lock marks the process that owns the directory.
pub const LOCK_FILE: &str = ".lock";

/// A run directory owned by this process until the value is dropped (or the process ends, even
/// by `kill -9`: the operating system releases the lock, so a killed run never blocks the next).
#[derive(Debug)]
pub struct RunDirLock {
    _file: File,
}

/// Why a run directory could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; its PID when it could be read.
    Held {
        /// The run directory.
        dir: PathBuf,
        /// The owner's process ID, as it wrote it into the lock file.
        pid: Option<u32>,
    },
    /// The lock file could not be opened or locked.
    Io(StokerError),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { dir, pid } => {
                let owner = pid.map_or("another process".to_string(), |p| format!("process {p}"));
                write!(
                    f,
                    "the run directory {} is in use by {owner} (it holds {}): two processes writing one run would write every row of metrics.csv twice and overwrite each other's checkpoints",
                    dir.display(),
                    dir.join(LOCK_FILE).display()
                )
            }
            LockError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Takes the advisory lock of `dir` (`.lock`, holding this process's ID) without waiting.
pub fn lock_run_dir(dir: &Path) -> std::result::Result<RunDirLock, LockError> {
    let path = dir.join(LOCK_FILE);
    let io = |e| LockError::Io(StokerError::io(&path, e));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(LockError::Held {
                dir: dir.to_path_buf(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(RunDirLock { _file: file })
}

/// The process holding the lock of `dir`, if one does: `Some(pid)` (the PID when it could be
/// read). Probes without taking the lock for longer than the probe and without writing.
pub fn lock_holder(dir: &Path) -> Option<Option<u32>> {
    let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Some(text.trim().parse().ok())
        }
        Err(TryLockError::Error(_)) => None,
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

    #[test]
    fn a_locked_run_directory_names_its_owner_until_released() {
        let dir = std::env::temp_dir().join(format!("stoker-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(lock_holder(&dir), None, "no lock file yet");
        let held = lock_run_dir(&dir).unwrap();
        assert_eq!(lock_holder(&dir), Some(Some(std::process::id())));
        // A second open file description conflicts with the first, even in one process.
        match lock_run_dir(&dir) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected the lock to be held: {other:?}"),
        }
        drop(held);
        assert_eq!(lock_holder(&dir), None, "released");
        let again = lock_run_dir(&dir).unwrap();
        drop(again);
        fs::remove_dir_all(&dir).unwrap();
    }
}
