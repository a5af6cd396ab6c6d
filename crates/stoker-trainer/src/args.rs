//! The loop's arguments: what `trainer.args` holds for `Default_trainer`, and for every trainer
//! plugin that reuses the loop (it flattens [`LoopArgs`] into its own spec).

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::FloatDType;
use stoker::data::{DataInfo, Split};
use stoker::duration::WallTime;
use stoker::error::BuildError;
use stoker::registry::Named;
use stoker::schedule::Horizon;
use stoker::tuning::{AutoLrFind, AutoScaleBatchSize};
use stoker_derive::Args;

use crate::limits::{ClipAlgorithm, FastDevRun, Limit};
use crate::strategy::environment::process_world_size;

/// The arguments of the training loop (Lightning's `Trainer` flags).
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct LoopArgs {
    /// Stop after this many epochs (1000 when neither it nor max_steps nor max_time is set).
    #[serde(default)]
    pub max_epochs: Option<usize>,
    /// Train at least this many epochs, whatever early stopping asks.
    #[serde(default)]
    pub min_epochs: usize,
    /// Stop after this many optimizer steps.
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Stop once training has run this long ("DD:HH:MM:SS", "HH:MM:SS" or seconds), resumed time included.
    #[serde(default)]
    pub max_time: Option<WallTime>,
    /// Micro-batches whose gradients add up to one optimizer step (the loss of each is divided by this).
    #[serde(default = "one")]
    pub accumulate_grad_batches: usize,
    /// Clip gradients at this value (off when not given).
    #[serde(default)]
    pub gradient_clip_val: Option<f64>,
    /// `norm` (one global L2 norm, as torch's clip_grad_norm_) or `value` (clamp each value).
    #[serde(default)]
    pub gradient_clip_algorithm: ClipAlgorithm,
    /// Validate in every N-th epoch; null validates on val_check_interval batches alone.
    #[serde(default = "some_one")]
    pub check_val_every_n_epoch: Option<usize>,
    /// Validate every N training batches (an integer) or every fraction of an epoch (a float; 1.0 = at the epoch's end).
    #[serde(default = "all")]
    pub val_check_interval: Limit,
    /// Training batches per epoch: a count or a fraction.
    #[serde(default = "all")]
    pub limit_train_batches: Limit,
    /// Validation batches per validation: a count or a fraction.
    #[serde(default = "all")]
    pub limit_val_batches: Limit,
    /// Test batches: a count or a fraction.
    #[serde(default = "all")]
    pub limit_test_batches: Limit,
    /// Train on the same first batches every epoch, unshuffled (and validate on as many): a count or a fraction; 0 is off.
    #[serde(default = "none")]
    pub overfit_batches: Limit,
    /// `true` (1) or N: one epoch of N train, val and test batches, with no checkpoints and no logs, to find bugs fast.
    #[serde(default = "no_dev_run")]
    pub fast_dev_run: FastDevRun,
    /// Validation batches run before training to catch bugs in validation early; -1 runs them all.
    #[serde(default = "two")]
    pub num_sanity_val_steps: i64,
    /// Log step-level values (train_loss_step, monitors) every N optimizer steps.
    #[serde(default = "fifty")]
    pub log_every_n_steps: usize,
    /// Check every loss and gradient for NaN/Inf and stop with an error naming the step, batch and parameter.
    #[serde(default)]
    pub detect_anomaly: bool,
    /// After fitting, run the test split with the best checkpoint's weights and log test_* metrics.
    #[serde(default)]
    pub test_after_fit: bool,
    /// Add Lightning's implicit ModelCheckpoint (best by val_loss, and last) when no ModelCheckpoint is configured.
    #[serde(default = "yes")]
    pub enable_checkpointing: bool,
    /// Continue from the experiment's newest checkpoint when there is one.
    #[serde(default)]
    pub auto_resume: bool,
    /// A progress bar per epoch when stdout is a terminal (one plain line per epoch otherwise, and always).
    #[serde(default = "yes")]
    pub enable_progress_bar: bool,
    /// Logged values the progress bar shows besides the loss and the LR (default: the latest val_* values).
    #[serde(default)]
    pub progress_bar_metrics: Vec<String>,
    /// Print each layer's parameter count, the total, the trainable count and the size at the start.
    #[serde(default = "yes")]
    pub enable_model_summary: bool,
    /// Threads that take and augment the next training batches while the current step runs (DataLoader's num_workers; 0: the loop does it between steps). Batches and their augmentations stay the same whatever the number, so runs and resumes are identical.
    #[serde(default)]
    pub num_workers: usize,
    /// Batches each worker prepares ahead of the step (DataLoader's prefetch_factor).
    #[serde(default = "two_batches")]
    pub prefetch_factor: usize,
    /// Processes on each machine for data-parallel training (Lightning's devices). `stoker train` (and `cargo xtask train`) starts them itself, as `--nproc`; under torchrun or srun it must match the processes they started per machine.
    #[serde(default)]
    pub devices: Option<usize>,
    /// Machines taking part (Lightning's num_nodes): each runs `cargo xtask train CONFIG --nproc DEVICES --nnodes NUM_NODES --node-rank I --master-addr HOST --master-port PORT`, or torchrun/srun starts them.
    #[serde(default = "one")]
    pub num_nodes: usize,
    /// Batch normalization's batch statistics over the batches of every process of a data-parallel run, not each process's own (Lightning's sync_batchnorm; with one process they are the whole batch's already).
    #[serde(default)]
    pub sync_batchnorm: bool,
    /// How training is spread over devices and processes, a strategy by name (cargo xtask list strategy): `auto` picks one.
    #[serde(default = "auto")]
    pub strategy: Named,
    /// The number format of a training step, a precision by name (cargo xtask list precision), Lightning's names: 32-true, bf16-mixed, 16-mixed, bf16-true (and the old 32, 16, bf16).
    #[serde(default = "full_precision")]
    pub precision: Named,
    /// The seeds' switch for mixed precision: true picks 16-mixed on CUDA and bf16-mixed on the CPU, and the run log says which; beside an explicit `precision` it must name a mixed one.
    #[serde(default)]
    pub mixed_precision: bool,
    /// Run Lightning's learning-rate finder before training and train with the rate it suggests (saved as optimizer.args.lr in the run's config.yaml, the curve in lr_find.csv and the report): true, or {min_lr: 1e-8, max_lr: 1.0, num_training: 100, mode: exponential, early_stop_threshold: 4.0}.
    #[serde(default)]
    pub auto_lr_find: AutoLrFind,
    /// Find the largest batch size that fits before training (Lightning's BatchSizeFinder) and train with it (saved as data.args.batch_size in config.yaml): power or binsearch (true: power), or {mode, steps_per_trial: 3, init_val: 2, max_trials: 25, max_memory_mb}; on the CPU max_memory_mb (peak resident memory) is the limit, on CUDA the out-of-memory error.
    #[serde(default)]
    pub auto_scale_batch_size: AutoScaleBatchSize,
    /// Keep only each block's input for the backward pass and run the block again there (torch.utils.checkpoint, Hugging Face's gradient_checkpointing): less memory for a second forward pass, in the models whose blocks use stoker::native::checkpoint (FluidDecoder).
    #[serde(default)]
    pub gradient_checkpointing: bool,
}

fn one() -> usize {
    1
}
fn some_one() -> Option<usize> {
    Some(1)
}
fn two() -> i64 {
    2
}
fn two_batches() -> usize {
    2
}
fn fifty() -> usize {
    50
}
fn yes() -> bool {
    true
}
fn all() -> Limit {
    Limit::Fraction(1.0)
}
fn none() -> Limit {
    Limit::Batches(0)
}
fn no_dev_run() -> FastDevRun {
    FastDevRun::Flag(false)
}
fn auto() -> Named {
    Named::new("auto")
}
fn full_precision() -> Named {
    Named::new("32-true")
}

/// The epoch limit when nothing else bounds training (Lightning's).
pub const DEFAULT_MAX_EPOCHS: usize = 1000;

/// Lightning's old names of its precisions (`precision: 16`), and what they name now.
pub const OLD_PRECISION_NAMES: [(&str, &str); 3] = [
    ("32", "32-true"),
    ("16", "16-mixed"),
    ("bf16", "bf16-mixed"),
];

impl LoopArgs {
    /// The name of the precision, under its current name when an old one was given.
    pub fn precision_name(&self) -> &str {
        let name = self.precision.name.as_str();
        OLD_PRECISION_NAMES
            .iter()
            .find(|(old, _)| *old == name)
            .map_or(name, |(_, new)| new)
    }

    /// The float type of every tensor of the device: bfloat16 for `bf16-true`.
    pub fn float_dtype(&self) -> Option<FloatDType> {
        (self.precision_name() == "bf16-true").then_some(FloatDType::BF16)
    }

    /// The epoch limit in effect.
    pub fn epochs(&self) -> Option<usize> {
        if self.fast_dev_run.batches().is_some() {
            return Some(1);
        }
        match (self.max_epochs, self.max_steps, self.max_time) {
            (Some(e), _, _) => Some(e),
            (None, None, None) => Some(DEFAULT_MAX_EPOCHS),
            _ => None,
        }
    }

    /// Training batches per epoch for a train split of `n` batches.
    pub fn train_batches(&self, n: usize) -> usize {
        if let Some(k) = self.fast_dev_run.batches() {
            return k.min(n);
        }
        if !self.overfit_batches.is_zero() {
            return self.overfit_batches.of(n);
        }
        self.limit_train_batches.of(n)
    }

    /// Batches of `split` evaluated for a split of `n` batches.
    pub fn eval_batches(&self, split: Split, n: usize) -> usize {
        if let Some(k) = self.fast_dev_run.batches() {
            return k.min(n);
        }
        let limit = match split {
            Split::Val if !self.overfit_batches.is_zero() => self.overfit_batches,
            Split::Val => self.limit_val_batches,
            Split::Test => self.limit_test_batches,
            Split::Train => self.limit_train_batches,
        };
        limit.of(n)
    }

    /// Whether this is a fast dev run (no checkpoints, no logs).
    pub fn dev_run(&self) -> bool {
        self.fast_dev_run.batches().is_some()
    }

    /// How long training is planned to be, given the data: what schedules anneal over. A fast
    /// dev run plans like the run it stands for (it takes the first steps of the configured
    /// schedule); `overfit_batches` and `limit_train_batches` shorten the plan. With several
    /// processes (data-parallel), each trains on its shard: `ceil(n / world)` samples.
    pub fn horizon(&self, data: &DataInfo) -> Horizon {
        let planned = LoopArgs {
            fast_dev_run: FastDevRun::Flag(false),
            ..self.clone()
        };
        let world = process_world_size();
        // DistributedSampler's num_samples (the order padded to a multiple of the world).
        let rows = data.len(Split::Train).div_ceil(world);
        let batches = planned.train_batches(rows.div_ceil(data.batch_size.max(1)));
        let steps_per_epoch = batches.div_ceil(self.accumulate_grad_batches.max(1));
        let epochs = planned.epochs();
        let total = match (epochs, self.max_steps) {
            (Some(e), Some(s)) => Some((e * steps_per_epoch).min(s)),
            (Some(e), None) => Some(e * steps_per_epoch),
            (None, s) => s,
        };
        Horizon {
            epochs,
            steps_per_epoch,
            total_steps: total,
        }
    }

    /// Checks the arguments against each other and against the data, naming the argument at
    /// fault.
    pub fn validate(&self, data: &DataInfo) -> Result<(), BuildError> {
        if let Some(problem) = self.auto_lr_find.args().and_then(|args| args.problem()) {
            return Err(BuildError::at("auto_lr_find", problem));
        }
        if let Some(problem) = self
            .auto_scale_batch_size
            .args()
            .and_then(|args| args.problem())
        {
            return Err(BuildError::at("auto_scale_batch_size", problem));
        }
        let at_least_one = [
            ("max_epochs", self.max_epochs),
            ("max_steps", self.max_steps),
            (
                "accumulate_grad_batches",
                Some(self.accumulate_grad_batches),
            ),
            ("prefetch_factor", Some(self.prefetch_factor)),
            ("log_every_n_steps", Some(self.log_every_n_steps)),
        ];
        for (arg, value) in at_least_one {
            if value == Some(0) {
                return Err(BuildError::at(arg, "must be at least 1"));
            }
        }
        if let Some(max) = self.max_epochs
            && self.min_epochs > max
        {
            return Err(BuildError::at(
                "min_epochs",
                format!("{} is more than max_epochs {max}", self.min_epochs),
            ));
        }
        if let Some(v) = self.gradient_clip_val
            && !(v.is_finite() && v > 0.0)
        {
            return Err(BuildError::at(
                "gradient_clip_val",
                format!("{v} must be positive"),
            ));
        }
        if self.check_val_every_n_epoch == Some(0) {
            return Err(BuildError::at(
                "check_val_every_n_epoch",
                "must be at least 1, or null",
            ));
        }
        if self.check_val_every_n_epoch.is_none()
            && !matches!(self.val_check_interval, Limit::Batches(k) if k > 0)
        {
            return Err(BuildError::at(
                "val_check_interval",
                "with check_val_every_n_epoch null, validation runs every N batches: give N as an integer",
            ));
        }
        if self.val_check_interval.is_zero() {
            return Err(BuildError::at("val_check_interval", "must be positive"));
        }
        if self.num_sanity_val_steps < -1 {
            return Err(BuildError::at(
                "num_sanity_val_steps",
                "must be -1 (all), 0 or a count",
            ));
        }
        for (arg, limit) in [
            ("val_check_interval", self.val_check_interval),
            ("limit_train_batches", self.limit_train_batches),
            ("limit_val_batches", self.limit_val_batches),
            ("limit_test_batches", self.limit_test_batches),
            ("overfit_batches", self.overfit_batches),
        ] {
            limit.check(arg)?;
        }
        let train = data.len(Split::Train).div_ceil(data.batch_size.max(1));
        if self.train_batches(train) == 0 {
            return Err(
                BuildError::at("limit_train_batches", "leaves no training batch")
                    .hint("raise it, or give the data more samples"),
            );
        }
        Ok(())
    }
}
