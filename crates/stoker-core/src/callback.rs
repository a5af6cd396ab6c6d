//! The callback contract: hooks the loop calls at fixed points, and what a callback may ask of
//! the loop in return (stop, save a checkpoint, delete one, log values).
//!
//! Hooks receive a [`HookContext`]. A callback never writes a checkpoint itself: it asks for one
//! ([`Control::save`]) and the loop writes it at the next point where the whole training state
//! is consistent (after the current optimizer step and any validation it triggers), including
//! every callback's own state as [`Callback::on_save_checkpoint`] returns it then.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::optim::GradientsParams;
use burn::tensor::Device;

use crate::batch::Batch;
use crate::data::DataModule;
use crate::error::Result;
use crate::metric::StepView;
use crate::model::DynModel;

/// Where the loop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// The current epoch (0-based).
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub global_step: usize,
    /// Training batches of the current epoch done so far.
    pub batch: usize,
    /// Training batches the current epoch will run.
    pub batches_in_epoch: usize,
}

/// A checkpoint a callback asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveRequest {
    /// Where to write it.
    pub path: PathBuf,
    /// Only the model weights (not resumable).
    pub weights_only: bool,
}

/// What callbacks ask of the loop during one hook.
#[derive(Debug, Default)]
pub struct Control {
    /// Stop training, for this reason (the loop still honours `min_epochs`).
    pub stop: Option<String>,
    /// Checkpoints to write.
    pub saves: Vec<SaveRequest>,
    /// Checkpoint files to delete once the saves are written.
    pub deletes: Vec<PathBuf>,
    /// Values to log at the current step.
    pub log: Vec<(String, f64)>,
    /// Lines to print (warnings, notices).
    pub notes: Vec<String>,
}

impl Control {
    /// Asks the loop to stop.
    pub fn stop(&mut self, reason: impl Into<String>) {
        self.stop.get_or_insert(reason.into());
    }

    /// Asks for a checkpoint at `path`.
    pub fn save(&mut self, path: PathBuf, weights_only: bool) {
        self.saves.push(SaveRequest { path, weights_only });
    }

    /// Logs `value` as `name` at the current step.
    pub fn log(&mut self, name: impl Into<String>, value: f64) {
        self.log.push((name.into(), value));
    }
}

/// What a hook can see and change.
pub struct HookContext<'a> {
    /// Where the loop is.
    pub position: Position,
    /// The latest value of every logged metric (`train_loss`, `val_loss`, ...).
    pub metrics: &'a BTreeMap<String, f64>,
    /// The current epoch's training and validation values, in the order they were logged (what
    /// the epoch line shows).
    pub epoch_metrics: &'a [(String, f64)],
    /// The model being trained.
    pub model: &'a mut dyn DynModel,
    /// The data.
    pub data: &'a dyn DataModule,
    /// The device.
    pub device: &'a Device,
    /// The run directory.
    pub run_dir: &'a Path,
    /// The learning rate of the next optimizer step.
    pub lr: f64,
    /// Seconds trained, time before a resume included (what `max_time` bounds).
    pub elapsed: f64,
    /// The optimizer's registered name.
    pub optimizer: &'a str,
    /// `trainer.args.log_every_n_steps`: how often step-level values are logged.
    pub log_every_n_steps: usize,
    /// Whether this process is the one that writes files (always, but for ranks other than 0
    /// when several processes train together).
    pub is_global_zero: bool,
    /// Requests to the loop.
    pub control: &'a mut Control,
}

/// A callback. Every hook has a default that does nothing.
pub trait Callback: Send {
    /// Whether this callback logs a value named `name` (`grad_norm_total`, say): a monitor of
    /// it is then not refused before training as a name nothing logs.
    fn logs(&self, _name: &str) -> bool {
        false
    }

    /// Training starts (also when resuming).
    fn on_fit_start(&mut self, _ctx: &mut HookContext<'_>) -> Result<()> {
        Ok(())
    }

    /// Training ended normally (not after an error or an interrupt).
    fn on_fit_end(&mut self, _ctx: &mut HookContext<'_>) -> Result<()> {
        Ok(())
    }

    /// A training epoch starts.
    fn on_train_epoch_start(&mut self, _ctx: &mut HookContext<'_>) -> Result<()> {
        Ok(())
    }

    /// A training epoch ended, after its validation if one ran; `ctx.metrics` holds the epoch's
    /// `train_*` values.
    fn on_train_epoch_end(&mut self, _ctx: &mut HookContext<'_>) -> Result<()> {
        Ok(())
    }

    /// A training batch is about to go through the model.
    fn on_train_batch_start(&mut self, _ctx: &mut HookContext<'_>, _batch: &Batch) -> Result<()> {
        Ok(())
    }

    /// A training batch went through; `stepped` says whether an optimizer step followed it
    /// (not every micro-batch ends one when gradients accumulate).
    fn on_train_batch_end(
        &mut self,
        _ctx: &mut HookContext<'_>,
        _step: &StepView<'_>,
        _stepped: bool,
    ) -> Result<()> {
        Ok(())
    }

    /// Validation starts.
    fn on_validation_start(&mut self, _ctx: &mut HookContext<'_>) -> Result<()> {
        Ok(())
    }

    /// Validation ended; `ctx.metrics` holds the new `val_*` values.
    fn on_validation_end(&mut self, _ctx: &mut HookContext<'_>) -> Result<()> {
        Ok(())
    }

    /// The gradients are computed (and clipped) and the optimizer is about to step.
    fn on_before_optimizer_step(
        &mut self,
        _ctx: &mut HookContext<'_>,
        _grads: &GradientsParams,
    ) -> Result<()> {
        Ok(())
    }

    /// Training failed with `error`; the model holds the weights of the last optimizer step.
    fn on_exception(&mut self, _ctx: &mut HookContext<'_>, _error: &str) -> Result<()> {
        Ok(())
    }

    /// The callback's state to keep in a checkpoint.
    fn on_save_checkpoint(&mut self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    /// Restores the state [`on_save_checkpoint`](Callback::on_save_checkpoint) returned.
    fn on_load_checkpoint(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }

    /// Whether the loop should run this callback after the others (checkpointing callbacks
    /// do, so that they see what the others logged, as in Lightning).
    fn runs_last(&self) -> bool {
        false
    }

    /// Whether this callback writes the run's regular checkpoints (`ModelCheckpoint` does).
    /// When no configured callback does and `enable_checkpointing` is on, the loop adds the
    /// implicit `ModelCheckpoint`.
    fn writes_checkpoints(&self) -> bool {
        false
    }

    /// The best checkpoint this callback has written, and what made it best.
    fn best_checkpoint(&self) -> Option<BestCheckpoint> {
        None
    }
}

/// A checkpoint a callback judged best.
#[derive(Debug, Clone, PartialEq)]
pub struct BestCheckpoint {
    /// The file.
    pub path: PathBuf,
    /// The metric that judged it.
    pub monitor: String,
    /// Its value.
    pub value: f64,
}
