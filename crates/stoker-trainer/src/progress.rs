//! The per-epoch progress bar: step / total, it/s, ETA, the live loss, chosen metrics and the
//! LR. Drawn only when stdout is a terminal; otherwise there is nothing per batch and the epoch
//! line (printed either way) is the only output, with no control codes.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use stoker::console;

/// How often the bar's message (which reads the loss off the device) is refreshed at most.
const MESSAGE_EVERY: Duration = Duration::from_millis(250);

/// One epoch's bar, or nothing when stdout is not a terminal or the bar is off.
pub struct EpochProgress {
    bar: Option<ProgressBar>,
    last_message: Option<Instant>,
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} {bar:25.cyan/blue} {pos}/{len} [{elapsed_precise}<{eta_precise}, {rate}] {msg}",
    )
    .expect("the template is valid")
    .with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1} it/s", state.per_sec());
        },
    )
    .progress_chars("=> ")
}

impl EpochProgress {
    /// A bar over `total` batches, `done` of which already ran (a resumed epoch), labelled
    /// `prefix` (`epoch 3/20`); drawn only when `enabled` and stdout is a terminal.
    pub fn start(enabled: bool, prefix: String, done: usize, total: usize) -> Self {
        if !enabled || !std::io::stdout().is_terminal() {
            return EpochProgress {
                bar: None,
                last_message: None,
            };
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stdout())
            .with_style(style())
            .with_prefix(prefix)
            .with_position(done as u64);
        bar.reset_eta();
        console::set_progress_bar(Some(bar.clone()));
        EpochProgress {
            bar: Some(bar),
            last_message: None,
        }
    }

    /// Whether the message is due for a refresh (a bar is drawn and it is older than a
    /// quarter second): the caller then reads the loss and calls [`advance`](Self::advance)
    /// with a message.
    pub fn message_due(&self) -> bool {
        self.bar.is_some()
            && self
                .last_message
                .is_none_or(|at| at.elapsed() >= MESSAGE_EVERY)
    }

    /// Moves the bar to `done` batches, with a new message when given.
    pub fn advance(&mut self, done: usize, message: Option<String>) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            if let Some(message) = message {
                bar.set_message(message);
                self.last_message = Some(Instant::now());
            }
        }
    }

    /// Removes the bar (the epoch line replaces it).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            console::set_progress_bar(None);
        }
    }
}

impl Drop for EpochProgress {
    fn drop(&mut self) {
        self.finish();
    }
}
