//! The learning-rate scheduler contract.

use std::collections::BTreeMap;

use crate::error::Result;

/// How long training is planned to run, which schedules that anneal over the run need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    /// Planned epochs, if bounded by epochs.
    pub epochs: Option<usize>,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// Planned optimizer steps in all, if known.
    pub total_steps: Option<usize>,
}

/// A built learning-rate scheduler. The loop asks [`lr`](LrScheduler::lr) before each optimizer
/// step, then reports the step, and reports each epoch's end with that epoch's metrics.
pub trait LrScheduler: Send {
    /// The learning rate for the next optimizer step.
    fn lr(&self) -> f64;

    /// One optimizer step was taken.
    fn on_optimizer_step(&mut self);

    /// An epoch ended, with its logged metrics (`val_loss`, ...). An error stops training
    /// (a monitored metric that is not logged).
    fn on_epoch_end(&mut self, metrics: &BTreeMap<String, f64>) -> Result<()>;

    /// The state to put in a checkpoint.
    fn state(&self) -> serde_json::Value;

    /// Restores a state written by [`state`](LrScheduler::state).
    fn load_state(&mut self, state: &serde_json::Value) -> Result<()>;
}
