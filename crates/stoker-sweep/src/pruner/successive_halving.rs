//! `successive_halving`: Optuna's `SuccessiveHalvingPruner` (asynchronous successive halving).
//! Rung `r` is reached at epoch `min_resource * reduction_factor^(min_early_stopping_rate + r)`;
//! a trial that reaches it records its value there (`completed_rung_r`, stored on the trial) and
//! goes on only if that value is among the best `1 / reduction_factor` of every value recorded
//! at that rung so far.

use serde::{Deserialize, Serialize};
use stoker::spec::PrunerSpec;
use stoker::sweep::{Direction, Pruner, Pruning, Study, Trial, TrialState};
use stoker::{BuildError, Component};

fn four() -> u64 {
    4
}

/// `min_resource`: a number of epochs, or `auto`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MinResource {
    /// Epochs.
    Epochs(u64),
    /// `auto`: a hundredth of the longest complete trial's last epoch (at least 1), once one is
    /// complete; no trial is pruned before.
    Auto(String),
}

fn auto() -> MinResource {
    MinResource::Auto("auto".into())
}

/// Asynchronous successive halving as Optuna's SuccessiveHalvingPruner: at epochs min_resource * reduction_factor^(min_early_stopping_rate + r) a trial continues only if its value is in the best 1/reduction_factor of all values recorded at that rung.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(pruner, name = "successive_halving")]
pub struct SuccessiveHalvingSpec {
    /// The epoch of the first rung (times reduction_factor^min_early_stopping_rate), or auto.
    #[serde(default = "auto")]
    pub min_resource: MinResource,
    /// The factor between rungs; 1/reduction_factor of the trials go on at each.
    #[serde(default = "four")]
    pub reduction_factor: u64,
    /// Skips this many rungs at the start.
    #[serde(default)]
    pub min_early_stopping_rate: u32,
    /// Prune at a rung until it holds more than this many values (not with min_resource: auto).
    #[serde(default)]
    pub bootstrap_count: usize,
}

impl PrunerSpec for SuccessiveHalvingSpec {
    fn build(&self) -> Result<Box<dyn Pruner>, BuildError> {
        let min_resource = match &self.min_resource {
            MinResource::Epochs(0) => {
                return Err(BuildError::at(
                    "min_resource",
                    "must be at least 1 (or auto)",
                ));
            }
            MinResource::Epochs(n) => Some(*n as i64),
            MinResource::Auto(text) if text == "auto" => None,
            MinResource::Auto(text) => {
                return Err(BuildError::at(
                    "min_resource",
                    format!("`{text}`: a number of epochs or `auto`"),
                ));
            }
        };
        if self.reduction_factor < 2 {
            return Err(BuildError::at("reduction_factor", "must be at least 2"));
        }
        if min_resource.is_none() && self.bootstrap_count > 0 {
            return Err(BuildError::at(
                "bootstrap_count",
                "cannot be used with min_resource: auto (as in Optuna)",
            )
            .hint("give min_resource a number of epochs"));
        }
        Ok(Box::new(SuccessiveHalving {
            min_resource,
            reduction_factor: self.reduction_factor as i64,
            min_early_stopping_rate: self.min_early_stopping_rate,
            bootstrap_count: self.bootstrap_count,
        }))
    }
}

/// The successive-halving pruner.
#[derive(Debug, Clone)]
pub struct SuccessiveHalving {
    /// The first rung's epoch (before the early-stopping rate); `None` until `auto` knows it.
    pub min_resource: Option<i64>,
    /// The factor between rungs.
    pub reduction_factor: i64,
    /// Rungs skipped.
    pub min_early_stopping_rate: u32,
    /// Values a rung needs before it promotes.
    pub bootstrap_count: usize,
}

fn rung_key(rung: u32) -> String {
    format!("completed_rung_{rung}")
}

impl Pruner for SuccessiveHalving {
    fn prune(&mut self, study: &Study<'_>, trial: &Trial) -> Pruning {
        let mut out = Pruning::default();
        let Some(step) = trial.last_step() else {
            return out;
        };
        let mut rung = (0..)
            .find(|r| !trial.system_attrs.contains_key(&rung_key(*r)))
            .unwrap_or(0);
        let value = trial.intermediate[&step];
        loop {
            if self.min_resource.is_none() {
                let longest = study
                    .trials
                    .iter()
                    .filter(|t| t.state == TrialState::Complete)
                    .filter_map(|t| t.last_step())
                    .max();
                let Some(longest) = longest else {
                    return out;
                };
                self.min_resource = Some((longest / 100).max(1));
            }
            let min_resource = self.min_resource.unwrap_or(1);
            let rung_step = min_resource.saturating_mul(
                self.reduction_factor
                    .saturating_pow(self.min_early_stopping_rate + rung),
            );
            if step < rung_step {
                return out;
            }
            if value.is_nan() {
                out.prune = true;
                return out;
            }
            let key = rung_key(rung);
            out.system_attrs
                .push((key.clone(), serde_json::json!(value)));
            // Every trial's value at this rung (this trial's own once), then this one's.
            let mut competing: Vec<f64> = study
                .trials
                .iter()
                .filter(|t| t.number != trial.number)
                .filter_map(|t| t.system_attrs.get(&key)?.as_f64())
                .collect();
            competing.push(value);
            if competing.len() <= self.bootstrap_count {
                out.prune = true;
                return out;
            }
            let index = (competing.len() as i64 / self.reduction_factor - 1).max(0) as usize;
            competing.sort_by(f64::total_cmp);
            let promotable = match study.direction {
                Direction::Minimize => value <= competing[index],
                Direction::Maximize => value >= competing[competing.len() - 1 - index],
            };
            if !promotable {
                out.prune = true;
                return out;
            }
            rung += 1;
        }
    }
}
