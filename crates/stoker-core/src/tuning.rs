//! What a trainer asks the runner to tune before training: the learning-rate finder's
//! arguments (`trainer.args.auto_lr_find`, Lightning's `Tuner.lr_find`).

use serde::{Deserialize, Serialize};

/// The learning-rate range test's arguments, with Lightning's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrFindArgs {
    /// The first learning rate tried (Lightning: 1e-8).
    #[serde(default = "min_lr")]
    pub min_lr: f64,
    /// The last learning rate tried (Lightning: 1.0).
    #[serde(default = "max_lr")]
    pub max_lr: f64,
    /// Optimizer steps of the test, one learning rate each (Lightning: 100).
    #[serde(default = "num_training")]
    pub num_training: usize,
    /// How the rate grows from step to step: `exponential` or `linear`.
    #[serde(default)]
    pub mode: LrFindMode,
    /// Stop once the smoothed loss exceeds this multiple of the best one so far (Lightning:
    /// 4.0); `null` never stops early.
    #[serde(default = "early_stop_threshold")]
    pub early_stop_threshold: Option<f64>,
}

/// How the rate grows over the range test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrFindMode {
    /// Geometrically from `min_lr` to `max_lr`.
    #[default]
    Exponential,
    /// Arithmetically from `min_lr` to `max_lr`.
    Linear,
}

fn min_lr() -> f64 {
    1e-8
}
fn max_lr() -> f64 {
    1.0
}
fn num_training() -> usize {
    100
}
fn early_stop_threshold() -> Option<f64> {
    Some(4.0)
}

impl Default for LrFindArgs {
    fn default() -> Self {
        LrFindArgs {
            min_lr: min_lr(),
            max_lr: max_lr(),
            num_training: num_training(),
            mode: LrFindMode::default(),
            early_stop_threshold: early_stop_threshold(),
        }
    }
}

impl LrFindArgs {
    /// Why these arguments cannot run, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if !(self.min_lr > 0.0 && self.min_lr.is_finite()) {
            return Some("min_lr must be a positive number".into());
        }
        if !(self.max_lr > self.min_lr && self.max_lr.is_finite()) {
            return Some("max_lr must be larger than min_lr".into());
        }
        if self.num_training < 2 {
            return Some("num_training must be at least 2 (one learning rate per step)".into());
        }
        if self
            .early_stop_threshold
            .is_some_and(|t| t.is_nan() || t <= 1.0)
        {
            return Some("early_stop_threshold must be above 1 (or null)".into());
        }
        None
    }
}

/// `trainer.args.auto_lr_find`: `false`, `true` (Lightning's defaults) or the arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AutoLrFind {
    /// Off, or on with the defaults.
    Switch(bool),
    /// On with these arguments.
    Args(LrFindArgs),
}

impl Default for AutoLrFind {
    fn default() -> Self {
        AutoLrFind::Switch(false)
    }
}

impl AutoLrFind {
    /// The arguments when it is on.
    pub fn args(&self) -> Option<LrFindArgs> {
        match self {
            AutoLrFind::Switch(false) => None,
            AutoLrFind::Switch(true) => Some(LrFindArgs::default()),
            AutoLrFind::Args(args) => Some(args.clone()),
        }
    }
}

/// How the batch-size finder grows the batch (Lightning's `BatchSizeFinder` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScaleMode {
    /// Double the batch until a trial fails; keep the last size that ran.
    Power,
    /// Double until a trial fails, then bisect between the last size that ran and the first
    /// that failed.
    Binsearch,
}

/// The batch-size finder's arguments, with Lightning's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSizeArgs {
    /// `power` or `binsearch`.
    pub mode: ScaleMode,
    /// Optimizer steps each trial trains (Lightning: 3).
    #[serde(default = "steps_per_trial")]
    pub steps_per_trial: usize,
    /// The first batch size tried (Lightning: 2).
    #[serde(default = "init_val")]
    pub init_val: usize,
    /// Trials at most (Lightning: 25).
    #[serde(default = "max_trials")]
    pub max_trials: usize,
    /// A trial fails when the process's peak resident memory passes this many MiB: the limit on
    /// the CPU, which has no out-of-memory error to stop at (on CUDA, the device's
    /// out-of-memory error stops it, and this is optional).
    #[serde(default)]
    pub max_memory_mb: Option<f64>,
}

fn steps_per_trial() -> usize {
    3
}
fn init_val() -> usize {
    2
}
fn max_trials() -> usize {
    25
}

impl BatchSizeArgs {
    /// The arguments of `mode` with Lightning's defaults.
    pub fn of(mode: ScaleMode) -> Self {
        BatchSizeArgs {
            mode,
            steps_per_trial: steps_per_trial(),
            init_val: init_val(),
            max_trials: max_trials(),
            max_memory_mb: None,
        }
    }

    /// Why these arguments cannot run, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if self.steps_per_trial == 0 || self.init_val == 0 || self.max_trials == 0 {
            return Some("steps_per_trial, init_val and max_trials must be at least 1".into());
        }
        if self.max_memory_mb.is_some_and(|m| m.is_nan() || m <= 0.0) {
            return Some("max_memory_mb must be a positive number of MiB".into());
        }
        None
    }
}

/// `trainer.args.auto_scale_batch_size`: `null` or `false`, `true` (Lightning 1.x's spelling
/// of `power`), `power`, `binsearch`, or the arguments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AutoScaleBatchSize {
    /// Off.
    #[default]
    Off,
    /// `true` (power) or `false` (off).
    Switch(bool),
    /// On in this mode, with Lightning's defaults.
    Mode(ScaleMode),
    /// On with these arguments.
    Args(BatchSizeArgs),
}

impl AutoScaleBatchSize {
    /// The arguments when it is on.
    pub fn args(&self) -> Option<BatchSizeArgs> {
        match self {
            AutoScaleBatchSize::Off | AutoScaleBatchSize::Switch(false) => None,
            AutoScaleBatchSize::Switch(true) => Some(BatchSizeArgs::of(ScaleMode::Power)),
            AutoScaleBatchSize::Mode(mode) => Some(BatchSizeArgs::of(*mode)),
            AutoScaleBatchSize::Args(args) => Some(args.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale(yaml: &str) -> Option<BatchSizeArgs> {
        serde_yaml::from_str::<AutoScaleBatchSize>(yaml)
            .unwrap()
            .args()
    }

    fn lr(yaml: &str) -> Option<LrFindArgs> {
        serde_yaml::from_str::<AutoLrFind>(yaml).unwrap().args()
    }

    #[test]
    fn the_seeds_and_lightnings_spellings_parse() {
        assert_eq!(scale("null"), None);
        assert_eq!(scale("false"), None);
        assert_eq!(scale("true"), Some(BatchSizeArgs::of(ScaleMode::Power)));
        assert_eq!(
            scale("binsearch"),
            Some(BatchSizeArgs::of(ScaleMode::Binsearch))
        );
        let args = scale("{mode: power, max_memory_mb: 900}").unwrap();
        assert_eq!((args.max_memory_mb, args.init_val), (Some(900.0), 2));
        assert!(serde_yaml::from_str::<AutoScaleBatchSize>("sideways").is_err());
        assert_eq!(lr("false"), None);
        assert_eq!(lr("true"), Some(LrFindArgs::default()));
        assert_eq!(lr("{num_training: 30}").unwrap().num_training, 30);
        assert!(serde_yaml::from_str::<AutoLrFind>("{num_trainin: 30}").is_err());
    }
}
