//! The metric contract: accumulate over a whole epoch, then compute.

use crate::batch::{Batch, Output};
use crate::error::Result;
use crate::loss::LossValue;

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
}
