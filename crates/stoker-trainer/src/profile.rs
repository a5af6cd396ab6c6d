//! Where a training step's time goes: the loop times each phase of every step with a monotonic
//! clock (a few tens of nanoseconds per reading) and reports the mean per phase in microseconds,
//! like Lightning's `SimpleProfiler`. On a CPU device the phases are exact; on CUDA, kernels run
//! asynchronously, so a phase measures its launches and the phase that next waits for the device
//! (reading the loss for logging) absorbs the rest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A phase of a training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Freeing the previous step's batch, outputs and autodiff graph.
    Release,
    /// Taking the batch from the data module and augmenting it.
    Data,
    /// The model's forward pass and the loss.
    Forward,
    /// Decoding and metric updates.
    Metrics,
    /// The backward pass and gradient accumulation.
    Backward,
    /// Clipping, the optimizer update and the scheduler.
    Optimizer,
    /// Logging (reading the loss, writing rows) and the progress bar.
    Logging,
    /// Callback hooks, validation and checkpoints due after the step.
    Hooks,
}

impl Phase {
    const ALL: [Phase; 8] = [
        Phase::Release,
        Phase::Data,
        Phase::Forward,
        Phase::Metrics,
        Phase::Backward,
        Phase::Optimizer,
        Phase::Logging,
        Phase::Hooks,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Release => "release",
            Phase::Data => "data",
            Phase::Forward => "forward",
            Phase::Metrics => "metrics",
            Phase::Backward => "backward",
            Phase::Optimizer => "optimizer",
            Phase::Logging => "logging",
            Phase::Hooks => "hooks",
        }
    }
}

/// Time per phase summed over the steps of this process.
#[derive(Debug, Default)]
pub struct StepProfile {
    totals: [Duration; 8],
    steps: usize,
}

impl StepProfile {
    /// Adds the time since `mark` to `phase` and moves `mark` to now.
    pub fn lap(&mut self, phase: Phase, mark: &mut Instant) {
        let now = Instant::now();
        self.totals[phase as usize] += now - *mark;
        *mark = now;
    }

    /// Counts one more step.
    pub fn step(&mut self) {
        self.steps += 1;
    }

    /// Mean microseconds per step of each phase and of them all (`step`); empty before a step.
    pub fn mean_micros(&self) -> BTreeMap<String, f64> {
        if self.steps == 0 {
            return BTreeMap::new();
        }
        let per_step = |d: Duration| d.as_secs_f64() * 1e6 / self.steps as f64;
        let mut means: BTreeMap<String, f64> = Phase::ALL
            .iter()
            .map(|&p| (p.name().to_string(), per_step(self.totals[p as usize])))
            .collect();
        means.insert("step".into(), per_step(self.totals.iter().sum()));
        means
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_add_up_to_the_step_and_are_means_per_step() {
        let mut profile = StepProfile::default();
        assert!(profile.mean_micros().is_empty());
        for _ in 0..2 {
            let mut mark = Instant::now() - Duration::from_millis(3);
            profile.lap(Phase::Forward, &mut mark);
            mark -= Duration::from_millis(1);
            profile.lap(Phase::Backward, &mut mark);
            profile.step();
        }
        let means = profile.mean_micros();
        assert!((means["forward"] - 3000.0).abs() < 500.0, "{means:?}");
        assert!((means["backward"] - 1000.0).abs() < 500.0, "{means:?}");
        assert_eq!(means["data"], 0.0);
        let sum: f64 = Phase::ALL.iter().map(|p| means[p.name()]).sum();
        assert!((means["step"] - sum).abs() < 1e-6);
    }
}
