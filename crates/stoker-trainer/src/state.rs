//! Where the loop is and what it has done: the epoch, the batch of the epoch and the optimizer
//! step, a pending stop request, the time trained, and the epochs' history.

use std::collections::BTreeMap;
use std::time::Instant;

use stoker::callback::Position;

use crate::args::LoopArgs;

/// The loop's progress.
pub struct LoopState {
    /// The epoch the next batch belongs to (0-based).
    pub epoch: usize,
    /// Training batches of `epoch` already done.
    pub batch: usize,
    /// Optimizer steps taken.
    pub global_step: usize,
    /// A stop a callback asked for, with its reason (honoured once `min_epochs` are done).
    pub stop: Option<String>,
    /// Whether the loop said that `min_epochs` delays a stop.
    pub min_epochs_noted: bool,
    /// Whether this fit continues from a checkpoint.
    pub resumed: bool,
    /// When this process started training.
    pub started: Instant,
    /// Training time before this process (from the checkpoint), in seconds.
    pub elapsed_before: f64,
    /// The learning rate of the latest optimizer step.
    pub step_lr: f64,
    /// Wall seconds of each epoch this process ran.
    pub epoch_seconds: Vec<f64>,
    /// The values logged at the end of each epoch this process ran (train and validation).
    pub history: Vec<BTreeMap<String, f64>>,
}

impl LoopState {
    /// The state at the start of a fresh run.
    pub fn new() -> Self {
        LoopState {
            epoch: 0,
            batch: 0,
            global_step: 0,
            stop: None,
            min_epochs_noted: false,
            resumed: false,
            started: Instant::now(),
            elapsed_before: 0.0,
            step_lr: 0.0,
            epoch_seconds: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Seconds trained, resumed runs included.
    pub fn elapsed(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    /// The position callbacks see, in an epoch of `batches_in_epoch` batches.
    pub fn position(&self, batches_in_epoch: usize) -> Position {
        Position {
            epoch: self.epoch,
            global_step: self.global_step,
            batch: self.batch,
            batches_in_epoch,
        }
    }

    /// Whether `max_steps` is reached.
    pub fn steps_exhausted(&self, args: &LoopArgs) -> bool {
        args.max_steps.is_some_and(|max| self.global_step >= max)
    }

    /// Whether `max_epochs` (or a fast dev run's one epoch) is done.
    pub fn epochs_exhausted(&self, args: &LoopArgs) -> bool {
        args.epochs().is_some_and(|max| self.epoch >= max)
    }

    /// Whether a stop request may end training now (`min_epochs` done after `epochs_done`).
    pub fn may_stop(&self, args: &LoopArgs, epochs_done: usize) -> bool {
        self.stop.is_some() && epochs_done >= args.min_epochs
    }

    /// Records a stop request; the first one's reason is kept.
    pub fn request_stop(&mut self, reason: String) {
        self.stop.get_or_insert(reason);
    }
}

impl Default for LoopState {
    fn default() -> Self {
        Self::new()
    }
}
