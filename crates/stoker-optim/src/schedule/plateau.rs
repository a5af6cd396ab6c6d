//! `plateau`: lower the rate when a monitored metric stops improving.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

/// Whether `threshold` is relative to the best value or absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// An improvement beats the best by a factor of (1 ± threshold).
    #[default]
    Rel,
    /// An improvement beats the best by threshold.
    Abs,
}

/// Multiplies the rate by factor when the monitored metric has not improved for patience epochs, as torch.optim.lr_scheduler.ReduceLROnPlateau, checked at each epoch's end.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "plateau")]
pub struct PlateauSpec {
    /// The metric watched.
    #[serde(default = "default_monitor")]
    pub monitor: String,
    /// Whether lower (`min`) or higher (`max`) is better.
    #[serde(default)]
    pub mode: Mode,
    /// Factor of each reduction.
    #[serde(default = "default_factor")]
    pub factor: f64,
    /// Epochs without improvement before a reduction.
    #[serde(default = "default_patience")]
    pub patience: usize,
    /// The least change that counts as an improvement.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// `rel` or `abs`.
    #[serde(default)]
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction before counting again.
    #[serde(default)]
    pub cooldown: usize,
    /// The rate never goes below this.
    #[serde(default)]
    pub min_lr: f64,
    /// A reduction smaller than this is skipped.
    #[serde(default = "default_eps")]
    pub eps: f64,
}

fn default_monitor() -> String {
    "val_loss".into()
}
fn default_factor() -> f64 {
    0.1
}
fn default_patience() -> usize {
    10
}
fn default_threshold() -> f64 {
    1e-4
}
fn default_eps() -> f64 {
    1e-8
}

/// The built scheduler.
pub struct Plateau {
    spec: PlateauSpec,
    lr: f64,
    best: f64,
    num_bad: usize,
    cooldown_counter: usize,
}

impl Plateau {
    fn is_better(&self, a: f64) -> bool {
        let (t, best) = (self.spec.threshold, self.best);
        match (self.spec.mode, self.spec.threshold_mode) {
            (Mode::Min, ThresholdMode::Rel) => a < best * (1.0 - t),
            (Mode::Min, ThresholdMode::Abs) => a < best - t,
            (Mode::Max, ThresholdMode::Rel) => a > best * (t + 1.0),
            (Mode::Max, ThresholdMode::Abs) => a > best + t,
        }
    }

    /// One check with the metric's value (torch's `step(metrics)`).
    pub fn observe(&mut self, value: f64) {
        if self.is_better(value) {
            self.best = value;
            self.num_bad = 0;
        } else {
            self.num_bad += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad = 0;
        }
        if self.num_bad > self.spec.patience {
            let new_lr = (self.lr * self.spec.factor).max(self.spec.min_lr);
            if self.lr - new_lr > self.spec.eps {
                self.lr = new_lr;
            }
            self.cooldown_counter = self.spec.cooldown;
            self.num_bad = 0;
        }
    }
}

impl LrScheduler for Plateau {
    fn lr(&self) -> f64 {
        self.lr
    }

    fn on_optimizer_step(&mut self) {}

    fn on_epoch_end(&mut self, metrics: &BTreeMap<String, f64>) -> Result<()> {
        let value = *metrics.get(&self.spec.monitor).ok_or_else(|| {
            StokerError::msg(format!(
                "scheduler.args.monitor: plateau watches `{}`, which is not logged; logged metrics are: {}",
                self.spec.monitor,
                metrics.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        self.observe(value);
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "lr": self.lr, "best": self.best.to_string(), "num_bad": self.num_bad, "cooldown_counter": self.cooldown_counter })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let bad = || StokerError::msg(format!("plateau scheduler state {state} is incomplete"));
        self.lr = state["lr"].as_f64().ok_or_else(bad)?;
        self.best = state["best"]
            .as_str()
            .and_then(|b| b.parse().ok())
            .ok_or_else(bad)?;
        self.num_bad = state["num_bad"].as_u64().ok_or_else(bad)? as usize;
        self.cooldown_counter = state["cooldown_counter"].as_u64().ok_or_else(bad)? as usize;
        Ok(())
    }
}

impl SchedulerSpec for PlateauSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(BuildError::at("factor", "must be in (0, 1)"));
        }
        if !(self.threshold >= 0.0 && self.min_lr >= 0.0 && self.eps >= 0.0) {
            return Err(BuildError::new("threshold, min_lr and eps must be >= 0"));
        }
        let best = match self.mode {
            Mode::Min => f64::INFINITY,
            Mode::Max => f64::NEG_INFINITY,
        };
        Ok(Box::new(Plateau {
            spec: self.clone(),
            lr: ctx.base_lr()?,
            best,
            num_bad: 0,
            cooldown_counter: 0,
        }))
    }
}
