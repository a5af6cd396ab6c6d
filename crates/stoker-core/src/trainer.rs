//! The trainer contract: what the runner hands a training loop, and what it gets back.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use serde::Serialize;

use crate::augment::Augmentation;
use crate::batch::{Batch, Output};
use crate::callback::Callback;
use crate::checkpoint::{Checkpoint, CheckpointState};
use crate::data::{DataModule, Split};
use crate::error::Result;
use crate::logger::{Loggers, RunInfo};
use crate::loss::{Loss, LossValue};
use crate::metric::Metric;
use crate::model::DynModel;
use crate::schedule::LrScheduler;

/// One metric set per split; each split's metrics accumulate on their own.
pub struct SplitMetrics {
    /// Metrics of the training split.
    pub train: Vec<Box<dyn Metric>>,
    /// Metrics of the validation split.
    pub val: Vec<Box<dyn Metric>>,
    /// Metrics of the test split.
    pub test: Vec<Box<dyn Metric>>,
    /// Metrics of each named validation set ([`DataModule::named_vals`]), in order; `val`
    /// accumulates over all of them together.
    pub named_val: Vec<Vec<Box<dyn Metric>>>,
}

impl SplitMetrics {
    /// The metrics of `split`.
    pub fn of(&mut self, split: Split) -> &mut Vec<Box<dyn Metric>> {
        match split {
            Split::Train => &mut self.train,
            Split::Val => &mut self.val,
            Split::Test => &mut self.test,
        }
    }
}

/// Everything a training loop needs, built from the experiment file.
pub struct TrainingParts {
    /// The device the data lives on; the model trains on its autodiff variant.
    pub device: Device,
    /// `environment.seed`.
    pub seed: u64,
    /// The data (shared with the threads that prepare batches ahead).
    pub data: Arc<dyn DataModule>,
    /// The model, initialized on `device.autodiff()`.
    pub model: Box<dyn DynModel>,
    /// The loss.
    pub loss: Box<dyn Loss>,
    /// The metrics of each split.
    pub metrics: SplitMetrics,
    /// The optimizer.
    pub optimizer: ModuleOptimizer,
    /// The optimizer's registered name (`adam`).
    pub optimizer_name: String,
    /// The learning-rate scheduler.
    pub scheduler: Box<dyn LrScheduler>,
    /// The loggers, with their registered names. The loop starts (or resumes) them and logs;
    /// the runner keeps a handle and closes them after the loop.
    pub loggers: Loggers,
    /// The callbacks, with their registered names, in config order.
    pub callbacks: Vec<(String, Box<dyn Callback>)>,
    /// The augmentations of training batches, in config order (shared with the threads that
    /// prepare batches ahead).
    pub augmentations: Arc<Vec<Box<dyn Augmentation>>>,
    /// The checkpoint to resume from, if resuming.
    pub resume: Option<Resume>,
}

/// A checkpoint to resume from, checked against the config by the runner.
pub struct Resume {
    /// The file.
    pub path: PathBuf,
    /// What it holds.
    pub checkpoint: Checkpoint,
    /// Its training state.
    pub state: CheckpointState,
}

/// What a finished fit reports; the runner writes it into `summary.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FitReport {
    /// The metrics of the last epoch.
    pub final_metrics: BTreeMap<String, f64>,
    /// The metrics when the best checkpoint was written.
    pub best_metrics: BTreeMap<String, f64>,
    /// The metric that judged the best checkpoint.
    pub monitor: Option<String>,
    /// The epoch of the best checkpoint (0-based).
    pub best_epoch: Option<usize>,
    /// Epochs completed.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub global_step: usize,
    /// The checkpoint of the best epoch.
    pub best_checkpoint: Option<PathBuf>,
    /// The last checkpoint written.
    pub last_checkpoint: Option<PathBuf>,
    /// Why training stopped before its limits, if it did (early stopping, a time budget).
    pub stopped_early: Option<String>,
    /// Whether a signal interrupted training (a checkpoint to resume from was written).
    pub interrupted: bool,
    /// The test metrics, when `test_after_fit` ran.
    pub test_metrics: BTreeMap<String, f64>,
    /// The wall time of each training epoch this process ran (validation within it included).
    pub epoch_seconds: Vec<f64>,
    /// The values logged at the end of each epoch this process ran (`train_*`, `val_*`), in
    /// order: the learning curves.
    pub history: Vec<BTreeMap<String, f64>>,
    /// The mean microseconds per training step of each phase of the loop (`release`, `data`, `forward`,
    /// `metrics`, `backward`, `optimizer`, `logging`, `hooks`) and of the whole step (`step`).
    pub step_profile: BTreeMap<String, f64>,
    /// The model's trainable scalar parameters (what the optimizer updates).
    pub trainable_parameters: usize,
}

/// A built training loop.
pub trait Trainer: Send {
    /// Trains, validating and checkpointing as configured, and logs into `run`: starts (or
    /// resumes) the loggers and flushes every row, but leaves closing them to the runner.
    fn fit(&mut self, parts: TrainingParts, run: &RunInfo) -> Result<FitReport>;

    /// Whether the trainer logs a value named `name` beside the metrics (an adaptive loss
    /// weight, say): a monitor of it is then not refused before training.
    fn logs(&self, _name: &str) -> bool {
        false
    }

    /// One batch through the evaluation copy `model` and `loss` as this trainer validates:
    /// what `cargo xtask eval` and the trial batch before training run. The default is the
    /// model's forward pass and the loss; a trainer whose validation adds to the output (a
    /// teacher's scores, attacked predictions) overrides it.
    fn validation_step(
        &mut self,
        model: &dyn DynModel,
        loss: &dyn Loss,
        batch: &Batch,
    ) -> Result<(Output, LossValue)> {
        let output = model.forward(batch)?;
        let value = loss.forward(&output, batch)?;
        Ok((output, value))
    }
}
