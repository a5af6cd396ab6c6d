//! Files written so that a crash at any moment leaves either the old file or the new one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, StokerError};

/// What [`write_atomic`]'s temporary file names carry before the writer's process ID:
/// `.<name>.tmp-<pid>`.
const TMP_MARK: &str = ".tmp-";

/// Whether `name` is a temporary file of [`write_atomic`].
fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(TMP_MARK)
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()))
}

/// Removes the temporary files a killed [`write_atomic`] left in `dir` and its subdirectories
/// (one level deep, where checkpoints are); returns them. Call it only while no other process
/// writes there (with the run directory's lock held).
pub fn remove_stale_temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let mut dirs = vec![(dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if depth == 0 {
                    dirs.push((path, depth + 1));
                }
            } else if is_temporary(&entry.file_name().to_string_lossy())
                && fs::remove_file(&path).is_ok()
            {
                removed.push(path);
            }
        }
    }
    removed.sort();
    removed
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed to disk,
/// then renamed over `path`. Readers never see a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| StokerError::msg(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}{TMP_MARK}{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StokerError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("stoker-fs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn removes_only_the_temporaries_of_killed_writes() {
        let dir = std::env::temp_dir().join(format!("stoker-stale-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("checkpoints")).unwrap();
        let keep = [
            "metrics.csv",
            "checkpoints/last.safetensors",
            "checkpoints/.hidden",
            "notes.tmp-1",
            ".x.tmp-abc",
        ];
        let stale = [
            ".summary.json.tmp-77",
            "checkpoints/.epoch=1-step=89.safetensors.tmp-1504",
        ];
        for name in keep.iter().chain(&stale) {
            fs::write(dir.join(name), b"x").unwrap();
        }
        let removed = remove_stale_temporaries(&dir);
        let mut expected: Vec<PathBuf> = stale.iter().map(|n| dir.join(n)).collect();
        expected.sort();
        assert_eq!(removed, expected);
        for name in keep {
            assert!(dir.join(name).is_file(), "{name} was removed");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
