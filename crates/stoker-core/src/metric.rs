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

/// Combines values over the processes of a data-parallel run (a collective: every process
/// makes the same calls, with slices of the same length, in the same order).
pub trait Reducer {
    /// Replaces each value by its sum over the processes.
    fn sum(&mut self, values: &mut [f64]) -> Result<()>;

    /// Replaces each value by its maximum over the processes.
    fn max(&mut self, values: &mut [f64]) -> Result<()>;
}

/// Sums `values` over the processes where some may hold none yet (state that takes its size
/// from the first batch, on a process that saw no batch): the longest length is agreed first,
/// and a process without values adds zeros. `None` when no process has any.
pub fn sum_sized(reducer: &mut dyn Reducer, values: Option<Vec<f64>>) -> Result<Option<Vec<f64>>> {
    reduce_sized(reducer, values, 0.0, false)
}

/// As [`sum_sized`], for maxima (a process without values offers negative infinity).
pub fn max_sized(reducer: &mut dyn Reducer, values: Option<Vec<f64>>) -> Result<Option<Vec<f64>>> {
    reduce_sized(reducer, values, f64::NEG_INFINITY, true)
}

fn reduce_sized(
    reducer: &mut dyn Reducer,
    values: Option<Vec<f64>>,
    empty: f64,
    max: bool,
) -> Result<Option<Vec<f64>>> {
    let own = values.as_ref().map_or(0, Vec::len);
    let mut length = [own as f64];
    reducer.max(&mut length)?;
    let length = length[0] as usize;
    if length == 0 {
        return Ok(None);
    }
    if own != 0 && own != length {
        return Err(crate::error::StokerError::msg(format!(
            "a metric holds {own} values in this process and {length} in another: its state must have the same shape in every process"
        )));
    }
    let mut values = values.unwrap_or_else(|| vec![empty; length]);
    if max {
        reducer.max(&mut values)?;
    } else {
        reducer.sum(&mut values)?;
    }
    Ok(Some(values))
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

    /// Replaces what has been accumulated by its combination over the processes of a
    /// data-parallel run (sums and counts added, maxima taken), so that
    /// [`compute`](Metric::compute) gives the value over every process's samples, each counted
    /// once: never a mean of per-process means. Every process calls it at the same point, and
    /// its calls of `reducer` must be the same on every process (same operations, same order).
    /// What it keeps on the device goes back on `device`.
    fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()>;

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

    /// Two processes simulated in one: the other process's values are fixed.
    struct Pair {
        other: Vec<Vec<f64>>,
    }

    impl Reducer for Pair {
        fn sum(&mut self, values: &mut [f64]) -> Result<()> {
            let other = self.other.remove(0);
            values.iter_mut().zip(other).for_each(|(v, o)| *v += o);
            Ok(())
        }
        fn max(&mut self, values: &mut [f64]) -> Result<()> {
            let other = self.other.remove(0);
            values
                .iter_mut()
                .zip(other)
                .for_each(|(v, o)| *v = v.max(o));
            Ok(())
        }
    }

    #[test]
    fn sized_reductions_agree_on_the_length_and_fill_a_process_without_values() {
        // This process saw no batch; the other holds [1, 2]: its lengths first, then its values.
        let mut other = Pair {
            other: vec![vec![2.0], vec![1.0, 2.0]],
        };
        assert_eq!(sum_sized(&mut other, None).unwrap(), Some(vec![1.0, 2.0]));
        let mut other = Pair {
            other: vec![vec![2.0], vec![-5.0, 7.0]],
        };
        assert_eq!(max_sized(&mut other, None).unwrap(), Some(vec![-5.0, 7.0]));
        let mut both = Pair {
            other: vec![vec![2.0], vec![1.0, 2.0]],
        };
        assert_eq!(
            sum_sized(&mut both, Some(vec![3.0, 4.0])).unwrap(),
            Some(vec![4.0, 6.0])
        );
        let mut neither = Pair {
            other: vec![vec![0.0]],
        };
        assert_eq!(sum_sized(&mut neither, None).unwrap(), None);
        let mut mismatch = Pair {
            other: vec![vec![3.0]],
        };
        assert!(sum_sized(&mut mismatch, Some(vec![1.0])).is_err());
    }

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
