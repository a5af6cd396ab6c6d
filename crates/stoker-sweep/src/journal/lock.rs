//! The locks around a journal file.
//!
//! - [`JournalLock`]: Optuna's own `JournalFileSymlinkLock`, held while reading new lines and
//!   appending: a symlink `<journal>.lock` to the journal, made atomically by `symlink(2)`;
//!   released by renaming it to a unique name and removing that. A lock whose journal has not
//!   changed for 30 s is taken to belong to a process that died and is broken, as Optuna does
//!   (which reads the journal's time through the link; this reads the journal's own).
//!   Python workers, and optuna-dashboard (which writes too), take the same lock.
//! - [`CoordinatorLock`]: stoker's own: an exclusive `flock` on `<journal>.coordinator` for the
//!   life of a sweep, which the kernel drops when the process dies however it dies; so a second
//!   sweep on the same study is refused, and a sweep that holds it knows every trial still
//!   marked running was left by one that died.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use stoker::console;

/// How long a lock may sit on an unchanged journal before it is broken (Optuna's
/// `grace_period`).
const GRACE: Duration = Duration::from_secs(30);

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A unique suffix: the process, the time and a counter.
fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Optuna's symlink lock on a journal, held until dropped.
#[derive(Debug)]
pub struct JournalLock {
    lock: PathBuf,
}

impl JournalLock {
    /// Waits for the lock on `journal` (1 ms, doubling to 1 s between tries), breaking one that
    /// is stale.
    pub fn acquire(journal: &Path) -> io::Result<JournalLock> {
        Self::acquire_with_grace(journal, GRACE)
    }

    /// [`JournalLock::acquire`], breaking a lock after `grace` without a write to the journal.
    ///
    /// Staleness is read from the journal itself, not through the link: a link made with a
    /// relative path (Optuna's, or ours from a relative `output_dir`) points nowhere from its
    /// own folder, and following it would never find the holder gone.
    fn acquire_with_grace(journal: &Path, grace: Duration) -> io::Result<JournalLock> {
        let lock = with_suffix(journal, ".lock");
        let mut sleep = Duration::from_millis(1);
        let mut unchanged_since: Option<(Option<SystemTime>, Instant)> = None;
        let mut warned = false;
        loop {
            match std::os::unix::fs::symlink(journal, &lock) {
                Ok(()) => return Ok(JournalLock { lock }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            let modified = std::fs::metadata(journal).and_then(|m| m.modified()).ok();
            match unchanged_since {
                Some((seen, since)) if seen == modified => {
                    if since.elapsed() > grace {
                        console::warn(format!(
                            "breaking the lock {}: {} has not changed for {} s, so its holder died",
                            lock.display(),
                            journal.display(),
                            grace.as_secs()
                        ));
                        Self::release_path(&lock);
                        unchanged_since = None;
                        continue;
                    }
                    if !warned && since.elapsed() > Duration::from_secs(10) {
                        warned = true;
                        console::note(format!(
                            "waiting for the lock {} (another process is writing the study; a lock left by one that died is broken after {} s)",
                            lock.display(),
                            grace.as_secs()
                        ));
                    }
                }
                _ => unchanged_since = Some((modified, Instant::now())),
            }
            std::thread::sleep(sleep);
            sleep = (sleep * 2).min(Duration::from_secs(1));
        }
    }

    fn release_path(lock: &Path) {
        let renamed = with_suffix(lock, &format!("{}.rename", unique()));
        if std::fs::rename(lock, &renamed).is_ok() {
            let _ = std::fs::remove_file(renamed);
        }
    }
}

impl Drop for JournalLock {
    fn drop(&mut self) {
        Self::release_path(&self.lock);
    }
}

/// The sweep's exclusive hold on a study, for its whole life.
#[derive(Debug)]
pub struct CoordinatorLock {
    _file: File,
}

impl CoordinatorLock {
    /// Takes the hold on `journal`'s study, or says that another sweep has it (`Ok(None)`).
    pub fn try_acquire(journal: &Path) -> io::Result<Option<CoordinatorLock>> {
        let path = with_suffix(journal, ".coordinator");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        // SAFETY: flock on a file descriptor this function owns.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        Ok(taken.then_some(CoordinatorLock { _file: file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_excludes_and_is_released_on_drop() {
        let dir = std::env::temp_dir().join(format!("stoker-lock-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let journal = dir.join("study.journal");
        std::fs::write(&journal, "").unwrap();
        let held = JournalLock::acquire(&journal).unwrap();
        assert!(std::os::unix::fs::symlink(&journal, dir.join("study.journal.lock")).is_err());
        drop(held);
        assert!(!dir.join("study.journal.lock").exists());
        let _again = JournalLock::acquire(&journal).unwrap();

        let first = CoordinatorLock::try_acquire(&journal).unwrap();
        assert!(first.is_some());
        // flock is per open file: a second open in the same process is refused too.
        assert!(CoordinatorLock::try_acquire(&journal).unwrap().is_none());
        drop(first);
        assert!(CoordinatorLock::try_acquire(&journal).unwrap().is_some());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_lock_left_by_a_dead_holder_is_broken_even_when_its_link_is_relative() {
        let dir = std::env::temp_dir().join(format!("stoker-lock-stale-{}", unique()));
        std::fs::create_dir_all(dir.join("out")).unwrap();
        std::fs::write(dir.join("out/study.journal"), "").unwrap();
        // What a holder killed with SIGKILL leaves when the journal's path was relative: a link
        // whose target, read from its own folder, does not exist.
        std::os::unix::fs::symlink("out/study.journal", dir.join("out/study.journal.lock"))
            .unwrap();
        assert!(std::fs::metadata(dir.join("out/study.journal.lock")).is_err());
        let (done, finished) = std::sync::mpsc::channel();
        let journal = dir.join("out/study.journal");
        std::thread::spawn(move || {
            let taken = JournalLock::acquire_with_grace(&journal, Duration::from_millis(300));
            let _ = done.send(taken.map(|held| held.lock.clone()));
        });
        let taken = finished
            .recv_timeout(Duration::from_secs(20))
            .expect("the stale lock was never broken")
            .unwrap();
        assert_eq!(taken, dir.join("out/study.journal.lock"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
