//! `run.log`: the run's application log. Every note, warning and epoch line the terminal shows
//! (through [`stoker::console`]) and what the runner records besides (the resolved config, the
//! device, timings, failures), with timestamps, appended across resumes.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::fmt;

/// Sends `tracing` events to `<run_dir>/run.log` for the rest of the process. A second call
/// (one process trains once) and a file that cannot be opened leave logging as it was; the
/// latter with a warning, since training can go on without it.
pub fn init(run_dir: &Path) {
    let path = run_dir.join("run.log");
    let file = match OpenOptions::new().create(true).append(true).open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("warning: {}: cannot write the run log: {e}", path.display());
            return;
        }
    };
    let subscriber = fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}
