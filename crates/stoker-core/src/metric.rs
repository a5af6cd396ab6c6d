//! The metric contract: accumulate over a whole epoch, then compute.

use burn::tensor::Device;

use crate::batch::{Batch, Output};
use crate::error::Result;
use crate::loss::LossValue;

/// Whether a lower or a higher value of a monitored metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Lower is better (losses, errors).
    #[default]
    Min,
    /// Higher is better (accuracy).
    Max,
}

impl Mode {
    /// Whether `candidate` beats `best` by more than `min_delta` (a NaN never does).
    pub fn improves(self, candidate: f64, best: Option<f64>, min_delta: f64) -> bool {
        if candidate.is_nan() {
            return false;
        }
        match (self, best) {
            (_, None) => true,
            (Mode::Min, Some(b)) => candidate < b - min_delta,
            (Mode::Max, Some(b)) => candidate > b + min_delta,
        }
    }

    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        self.improves(a, Some(b), 0.0)
    }
}

/// What a metric sees of one step.
pub struct StepView<'a> {
    /// The batch.
    pub batch: &'a Batch,
    /// The model's output on it.
    pub output: &'a Output,
    /// The loss on it.
    pub loss: &'a LossValue,
}

/// A built metric. One instance serves one stage (train, val or test) and is reset at the start
/// of each epoch. It accumulates exactly over the epoch (sums and counts, not a mean of batch
/// means), and should keep its sums on the device so that an update never waits for it.
pub trait Metric: Send {
    /// Adds one step.
    fn update(&mut self, step: &StepView<'_>) -> Result<()>;

    /// The values over everything since the last reset, as `(name, value)` pairs; names are
    /// without the stage prefix (`mse`, `accuracy`).
    fn compute(&mut self) -> Result<Vec<(String, f64)>>;

    /// Forgets everything accumulated.
    fn reset(&mut self);

    /// What has been accumulated, exactly, for a checkpoint taken in the middle of an epoch.
    /// The default (`null`) makes a mid-epoch resume start this metric's sums afresh.
    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    /// Restores [`state`](Metric::state), putting sums back on `device`.
    fn load_state(&mut self, _state: &serde_json::Value, _device: &Device) -> Result<()> {
        Ok(())
    }

    /// Files to keep with the run after [`compute`](Metric::compute), as `(name, CSV text)`;
    /// the loop writes each to `<run>/<name>_<split>.csv` (a confusion matrix, say).
    fn artifacts(&mut self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn improves_by_mode_delta_and_never_with_nan() {
        assert!(Mode::Min.improves(1.0, None, 0.0));
        assert!(Mode::Min.improves(0.5, Some(1.0), 0.0));
        assert!(!Mode::Min.improves(0.95, Some(1.0), 0.1));
        assert!(!Mode::Min.improves(1.5, Some(1.0), 0.0));
        assert!(Mode::Max.improves(1.5, Some(1.0), 0.0));
        assert!(!Mode::Max.improves(f64::NAN, Some(1.0), 0.0));
        assert!(!Mode::Min.improves(f64::NAN, None, 0.0));
    }
}
