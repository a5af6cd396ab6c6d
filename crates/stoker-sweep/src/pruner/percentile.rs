//! `median` and `percentile`: Optuna's `MedianPruner` and `PercentilePruner`. A trial is stopped
//! at a checked epoch when its best value so far is worse than the given percentile of the
//! complete trials' values at that same epoch.

use serde::{Deserialize, Serialize};
use stoker::spec::PrunerSpec;
use stoker::sweep::{Direction, Pruner, Pruning, Study, Trial, TrialState};
use stoker::{BuildError, Component};

fn five() -> usize {
    5
}
fn one() -> usize {
    1
}
fn one_epoch() -> i64 {
    1
}

/// The settings both pruners share.
#[derive(Debug, Clone, Serialize, Deserialize, stoker::Args)]
pub struct PercentileArgs {
    /// Prune nothing until this many trials are complete.
    #[serde(default = "five")]
    pub n_startup_trials: usize,
    /// Prune no trial before this epoch (Optuna's n_warmup_steps).
    #[serde(default)]
    pub n_warmup_epochs: i64,
    /// Check every this many epochs after the warm-up (Optuna's interval_steps).
    #[serde(default = "one_epoch")]
    pub interval_epochs: i64,
    /// Prune only when at least this many complete trials reported the same epoch.
    #[serde(default = "one")]
    pub n_min_trials: usize,
}

/// Stops a trial whose best value so far is worse than the median of the complete trials' values at the same epoch, as Optuna's MedianPruner (n_startup_trials 5, no warm-up, every epoch).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[component(pruner, name = "median")]
pub struct MedianSpec {
    /// The shared settings.
    #[serde(flatten)]
    pub args: PercentileArgs,
}

/// Stops a trial whose best value so far is worse than the given percentile of the complete trials' values at the same epoch (the best `percentile` % are kept), as Optuna's PercentilePruner.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[component(pruner, name = "percentile")]
pub struct PercentileSpec {
    /// The percentile, 0 to 100 (25: prune a trial outside the best quarter).
    pub percentile: f64,
    /// The shared settings.
    #[serde(flatten)]
    pub args: PercentileArgs,
}

fn build(percentile: f64, args: &PercentileArgs) -> Result<Box<dyn Pruner>, BuildError> {
    if !(0.0..=100.0).contains(&percentile) {
        return Err(BuildError::at(
            "percentile",
            format!("{percentile}: between 0 and 100"),
        ));
    }
    if args.n_warmup_epochs < 0 {
        return Err(BuildError::at("n_warmup_epochs", "must be 0 or more"));
    }
    if args.interval_epochs < 1 {
        return Err(BuildError::at("interval_epochs", "must be at least 1"));
    }
    if args.n_min_trials < 1 {
        return Err(BuildError::at("n_min_trials", "must be at least 1"));
    }
    Ok(Box::new(PercentilePruner {
        percentile,
        args: args.clone(),
    }))
}

impl PrunerSpec for MedianSpec {
    fn build(&self) -> Result<Box<dyn Pruner>, BuildError> {
        build(50.0, &self.args)
    }
}

impl PrunerSpec for PercentileSpec {
    fn build(&self) -> Result<Box<dyn Pruner>, BuildError> {
        build(self.percentile, &self.args)
    }
}

/// The percentile pruner (the median is the 50th percentile).
#[derive(Debug, Clone)]
pub struct PercentilePruner {
    /// The percentile kept.
    pub percentile: f64,
    /// The settings.
    pub args: PercentileArgs,
}

/// numpy's `nanpercentile(values, q)` with linear interpolation (and its rounding: the value
/// is taken from the nearer end of the interval); `None` when there is no non-NaN value.
pub fn nan_percentile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let h = (sorted.len() - 1) as f64 * q / 100.0;
    let lo = h.floor() as usize;
    if lo + 1 >= sorted.len() {
        return Some(sorted[sorted.len() - 1]);
    }
    let t = h - lo as f64;
    let d = sorted[lo + 1] - sorted[lo];
    Some(if t < 0.5 {
        sorted[lo] + d * t
    } else {
        sorted[lo + 1] - d * (1.0 - t)
    })
}

impl Pruner for PercentilePruner {
    fn prune(&mut self, study: &Study<'_>, trial: &Trial) -> Pruning {
        let keep = Pruning::default();
        let complete: Vec<&Trial> = study
            .trials
            .iter()
            .filter(|t| t.state == TrialState::Complete)
            .collect();
        if complete.is_empty() || complete.len() < self.args.n_startup_trials {
            return keep;
        }
        let Some(step) = trial.last_step() else {
            return keep;
        };
        let (warmup, interval) = (self.args.n_warmup_epochs, self.args.interval_epochs);
        if step < warmup {
            return keep;
        }
        // Only the first report at or after each checkpoint warmup + k * interval is checked.
        let checkpoint = (step - warmup).div_euclid(interval) * interval + warmup;
        let previous = trial
            .intermediate
            .keys()
            .filter(|s| **s != step)
            .max()
            .copied()
            .unwrap_or(-1);
        if previous >= checkpoint {
            return keep;
        }
        let values = trial.intermediate.values().copied().filter(|v| !v.is_nan());
        let best = match study.direction {
            Direction::Minimize => values.fold(f64::NAN, f64::min),
            Direction::Maximize => values.fold(f64::NAN, f64::max),
        };
        if best.is_nan() {
            return Pruning {
                prune: true,
                system_attrs: Vec::new(),
            };
        }
        let at_step: Vec<f64> = complete
            .iter()
            .filter_map(|t| t.intermediate.get(&step).copied())
            .collect();
        if at_step.len() < self.args.n_min_trials {
            return keep;
        }
        let q = match study.direction {
            Direction::Minimize => self.percentile,
            Direction::Maximize => 100.0 - self.percentile,
        };
        let Some(p) = nan_percentile(&at_step, q) else {
            return keep;
        };
        Pruning {
            prune: study.direction.better(p, best),
            system_attrs: Vec::new(),
        }
    }
}
