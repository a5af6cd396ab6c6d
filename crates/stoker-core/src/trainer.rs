//! The trainer contract: what the runner hands a training loop, and what it gets back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use serde::Serialize;

use crate::data::{DataModule, Split};
use crate::error::Result;
use crate::logger::{Logger, RunInfo};
use crate::loss::Loss;
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
    /// The data.
    pub data: Box<dyn DataModule>,
    /// The model, initialized on `device.autodiff()`.
    pub model: Box<dyn DynModel>,
    /// The loss.
    pub loss: Box<dyn Loss>,
    /// The metrics of each split.
    pub metrics: SplitMetrics,
    /// The optimizer.
    pub optimizer: ModuleOptimizer,
    /// The learning-rate scheduler.
    pub scheduler: Box<dyn LrScheduler>,
    /// The loggers.
    pub loggers: Vec<Box<dyn Logger>>,
}

/// What a finished fit reports; the runner writes it into `summary.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FitReport {
    /// The metrics of the last epoch.
    pub final_metrics: BTreeMap<String, f64>,
    /// The metrics of the best epoch by `monitor`.
    pub best_metrics: BTreeMap<String, f64>,
    /// The metric that decides the best epoch (`val_loss`, or `train_loss` without validation).
    pub monitor: String,
    /// The best epoch (0-based).
    pub best_epoch: Option<usize>,
    /// Epochs run.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub global_step: usize,
    /// The checkpoint of the best epoch.
    pub best_checkpoint: Option<PathBuf>,
    /// The checkpoint of the last epoch.
    pub last_checkpoint: Option<PathBuf>,
}

/// A built training loop.
pub trait Trainer: Send {
    /// Trains, validating and checkpointing as configured, and logs into `run`.
    fn fit(&mut self, parts: TrainingParts, run: &RunInfo) -> Result<FitReport>;
}
