//! `run.log`: the run's application log. Every note, warning and epoch line the terminal shows
//! (through [`stoker::console`]) and what the runner records besides (the resolved config, the
//! device, timings, failures), with timestamps, appended across resumes.
//!
//! One `tracing` subscriber serves the process; each run points it at its own file, so a program
//! that trains several runs one after another gets one `run.log` per run.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, Once};

use tracing_subscriber::fmt;

/// The file the subscriber writes into: the current run's `run.log`.
static CURRENT: Mutex<Option<File>> = Mutex::new(None);
/// What was logged while the run was being built, before its directory existed (the data
/// module's choice of memory, say): written at the top of its `run.log`.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Writes into [`CURRENT`].
struct CurrentRunLog;

impl Write for CurrentRunLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match CURRENT.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(file) => file.write(buf),
            None => {
                PENDING
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match CURRENT.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Starts keeping what is logged for the run about to be built, before its directory exists;
/// [`init`] writes it at the top of the run's `run.log`. Called when a run starts loading.
pub fn capture() {
    *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = None;
    PENDING.lock().unwrap_or_else(|p| p.into_inner()).clear();
    install();
}

fn install() {
    INSTALL.call_once(|| {
        let subscriber = fmt()
            .with_writer(|| CurrentRunLog)
            .with_ansi(false)
            .with_target(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Sends `tracing` events to `<run_dir>/run.log` until the next call, after what was logged
/// since [`capture`]. A file that cannot be opened leaves the events unwritten, with a warning,
/// since training can go on without it. Another subscriber set by the program first is left in
/// place (and gets the events).
pub fn init(run_dir: &Path) {
    let path = run_dir.join("run.log");
    let file = match OpenOptions::new().create(true).append(true).open(&path) {
        Ok(mut file) => {
            let pending = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|p| p.into_inner()));
            let _ = file.write_all(&pending);
            Some(file)
        }
        Err(e) => {
            eprintln!("warning: {}: cannot write the run log: {e}", path.display());
            None
        }
    };
    *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = file;
    install();
}
