//! What a run says while it trains: notes on stdout, warnings on stderr, each also recorded in
//! the run's application log (`run.log`, through `tracing`), and kept clear of the progress bar.
//!
//! Components print through these functions rather than `println!`, so a live progress bar is
//! not torn by their lines and `run.log` holds everything the terminal showed.

use std::fmt::Display;
use std::sync::Mutex;

use indicatif::ProgressBar;

static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn print(f: impl FnOnce()) {
    let bar = BAR.lock().map(|b| b.clone()).unwrap_or(None);
    match bar {
        Some(bar) if !bar.is_finished() => bar.suspend(f),
        _ => f(),
    }
}

/// A note: `stoker: <message>` on stdout, `INFO` in `run.log`.
pub fn note(message: impl Display) {
    let message = message.to_string();
    tracing::info!("{message}");
    print(|| println!("stoker: {message}"));
}

/// A warning: `warning: <message>` on stderr, `WARN` in `run.log`.
pub fn warn(message: impl Display) {
    let message = message.to_string();
    tracing::warn!("{message}");
    print(|| eprintln!("warning: {message}"));
}

/// A line as it is (the epoch line, a table) on stdout, `INFO` in `run.log`.
pub fn line(message: impl Display) {
    let message = message.to_string();
    tracing::info!("{message}");
    print(|| println!("{message}"));
}

/// Makes `bar` the live progress bar that notes are printed around; `None` when it is done.
pub fn set_progress_bar(bar: Option<ProgressBar>) {
    if let Ok(mut slot) = BAR.lock() {
        *slot = bar;
    }
}
