//! Studies stored in Optuna's journal file format (`JournalFileBackend` of optuna 5.0), so that
//! `optuna.load_study(storage=JournalStorage(JournalFileBackend(path)))` and optuna-dashboard
//! open a stoker sweep, and a sweep survives `kill -9` at any moment.
//!
//! The file is JSON lines, only ever appended. Each append takes Optuna's lock, first reads
//! what other writers appended, then writes its lines in one `write` and syncs them to disk.
//! A line cut short by a crash is the last one: opening the journal cuts it off (Optuna would
//! refuse the file once anything followed it).

pub mod lock;
pub mod ops;
pub mod pyjson;
pub mod replay;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use lock::JournalLock;
use replay::Replay;

/// An open journal and the state its lines describe.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// The `worker_id` of this process's lines.
    worker_id: String,
    /// Bytes applied so far (always just after a newline).
    offset: u64,
    /// Every study and trial, as of the last read.
    pub replay: Replay,
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> String {
    format!("{}: cannot {what}: {e}", path.display())
}

impl Journal {
    /// Opens (or creates) the journal at `path`: under the lock, a torn last line left by a
    /// crash is cut off, then every line is read.
    pub fn open(path: &Path) -> Result<Journal, String> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, "create the study journal", e))?;
        // The lock links to this path: absolute, it resolves from the link's own folder, so
        // Optuna's workers can tell a lock left by a dead holder too.
        let path = &std::path::absolute(path).map_err(|e| io_error(path, "locate", e))?;
        let worker_id = format!(
            "stoker-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        let mut journal = Journal {
            path: path.to_path_buf(),
            worker_id,
            offset: 0,
            replay: Replay::default(),
        };
        let _lock = JournalLock::acquire(path).map_err(|e| io_error(path, "lock", e))?;
        journal.repair()?;
        journal.catch_up()?;
        Ok(journal)
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cuts off a last line without its newline, or a last line that is not JSON (a torn line
    /// another line was appended to).
    fn repair(&mut self) -> Result<(), String> {
        let bytes = std::fs::read(&self.path).map_err(|e| io_error(&self.path, "read", e))?;
        let mut keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if keep > 0 {
            let start = bytes[..keep - 1]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let last = String::from_utf8_lossy(&bytes[start..keep - 1]);
            if !last.trim().is_empty() && pyjson::parse_line(&last).is_err() {
                keep = start;
            }
        }
        if keep < bytes.len() {
            let file = OpenOptions::new()
                .write(true)
                .open(&self.path)
                .map_err(|e| io_error(&self.path, "open", e))?;
            file.set_len(keep as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error(&self.path, "cut off its torn last line", e))?;
            stoker::console::note(format!(
                "{}: cut off a torn last line ({} bytes) left by a process that stopped while writing",
                self.path.display(),
                bytes.len() - keep
            ));
        }
        Ok(())
    }

    /// Applies the complete lines appended since the last read.
    pub fn catch_up(&mut self) -> Result<(), String> {
        let mut file = File::open(&self.path).map_err(|e| io_error(&self.path, "open", e))?;
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| io_error(&self.path, "read", e))?;
        let mut new = Vec::new();
        file.read_to_end(&mut new)
            .map_err(|e| io_error(&self.path, "read", e))?;
        let complete = new.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let text = String::from_utf8_lossy(&new[..complete]);
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match pyjson::parse_line(line) {
                Ok(op) => {
                    self.replay.apply(&op);
                }
                // As Optuna: a bad last line is skipped, a bad line with others after it is fatal.
                Err(_) if i + 1 == lines.len() => {}
                Err(e) => {
                    return Err(format!(
                        "{}: a line is not JSON ({e}), and lines follow it: the file was edited or corrupted; Optuna cannot read it either",
                        self.path.display()
                    ));
                }
            }
        }
        self.offset += complete as u64;
        Ok(())
    }

    /// Appends `ops` (each gets this process's `worker_id`) after reading what others wrote;
    /// says for each whether it was accepted.
    pub fn append(&mut self, ops: Vec<Value>) -> Result<Vec<bool>, String> {
        let _lock =
            JournalLock::acquire(&self.path).map_err(|e| io_error(&self.path, "lock", e))?;
        self.catch_up()?;
        let mut text = String::new();
        let mut ops = ops;
        for op in &mut ops {
            if let Value::Object(map) = op {
                map.insert("worker_id".into(), Value::String(self.worker_id.clone()));
            }
            text.push_str(&pyjson::to_line(op));
            text.push('\n');
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, "open", e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| io_error(&self.path, "append to", e))?;
        self.offset += text.len() as u64;
        Ok(ops.iter().map(|op| self.replay.apply(op)).collect())
    }
}

#[cfg(test)]
mod tests;
