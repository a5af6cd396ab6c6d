//! What a run says while it trains: notes on stdout, warnings on stderr, each also recorded in
//! the run's application log (`run.log`, through `tracing`), and kept clear of the progress bar.
//!
//! Components print through these functions rather than `println!`, so a live progress bar is
//! not torn by their lines and `run.log` holds everything the terminal showed.

use std::fmt::Display;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use indicatif::ProgressBar;

static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// This process's rank among the processes of a data-parallel run (0 when alone).
static RANK: AtomicUsize = AtomicUsize::new(0);

/// Tells the console this process's rank: the global rank 0 prints notes and lines, the others
/// print only warnings, prefixed with `[rank N]`, so that N processes on one terminal read as
/// one run. `run.log` (rank 0's) records as before.
pub fn set_rank(rank: usize) {
    RANK.store(rank, Ordering::Relaxed);
}

fn rank() -> usize {
    RANK.load(Ordering::Relaxed)
}

/// Whether notes and lines go to stderr ([`notes_to_stderr`]).
static TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Sends notes and lines to stderr from now on, so that stdout carries only what a command
/// prints for programs to read (`eval --json`).
pub fn notes_to_stderr() {
    TO_STDERR.store(true, Ordering::Relaxed);
}

/// `text` on stdout, or on stderr after [`notes_to_stderr`].
fn say(text: &str) {
    if TO_STDERR.load(Ordering::Relaxed) {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

fn print(f: impl FnOnce()) {
    let bar = BAR.lock().map(|b| b.clone()).unwrap_or(None);
    match bar {
        Some(bar) if !bar.is_finished() => bar.suspend(f),
        _ => f(),
    }
}

/// A note: `stoker: <message>` on stdout (stderr after [`notes_to_stderr`]), `INFO` in
/// `run.log`.
pub fn note(message: impl Display) {
    let message = message.to_string();
    tracing::info!("{message}");
    if rank() == 0 {
        print(|| say(&format!("stoker: {message}")));
    }
}

/// A warning: `warning: <message>` on stderr, `WARN` in `run.log`.
pub fn warn(message: impl Display) {
    let message = message.to_string();
    tracing::warn!("{message}");
    match rank() {
        0 => print(|| eprintln!("warning: {message}")),
        rank => print(|| eprintln!("[rank {rank}] warning: {message}")),
    }
}

/// A line as it is (the epoch line, a table) on stdout, `INFO` in `run.log`.
pub fn line(message: impl Display) {
    let message = message.to_string();
    tracing::info!("{message}");
    if rank() == 0 {
        print(|| say(&message));
    }
}

/// Makes `bar` the live progress bar that notes are printed around; `None` when it is done.
pub fn set_progress_bar(bar: Option<ProgressBar>) {
    if let Ok(mut slot) = BAR.lock() {
        *slot = bar;
    }
}
