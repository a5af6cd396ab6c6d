//! The batch-size finder (Lightning's `BatchSizeFinder`, `trainer.args.auto_scale_batch_size`):
//! trials of a few training steps at growing batch sizes until one fails for memory, then the
//! largest that ran.
//!
//! - `power` doubles from `init_val` until a trial fails and keeps the last size that ran;
//!   `binsearch` then bisects between that size and the one that failed. Both stop at
//!   `max_trials` and at the training split's size, as Lightning's.
//! - A trial fails on CUDA's out-of-memory error, or when the process's peak resident memory
//!   passes `max_memory_mb` (the CPU's limit; required there, where nothing else fails first).
//!   The peak is the kernel's high-water mark, reset before each trial (`/proc/self/clear_refs`)
//!   after the allocator gave back what the last trial freed (`malloc_trim`). It counts
//!   everything the process holds during the trial: libtorch, the data, the model and the
//!   step, which is what the training at that size will need.
//! - Each trial is a run of the experiment itself with `data.args.batch_size` set, in a
//!   temporary directory; the training that follows is assembled with the size found.

use std::path::Path;

use stoker::console;
use stoker::tuning::{BatchSizeArgs, ScaleMode};

use super::{Scratch, short_run_sets};
use crate::train::{RunError, TrainOptions};

/// How one trial went.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It trained; the process's peak resident memory during it, MiB.
    Ran {
        /// Peak resident memory, MiB.
        peak_mb: f64,
    },
    /// It failed for memory, for this reason.
    Failed(String),
}

/// One trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// The batch size tried.
    pub batch_size: usize,
    /// How it went.
    pub outcome: Outcome,
}

/// What the finder found.
#[derive(Debug, Clone)]
pub struct Scaled {
    /// Every trial, in order.
    pub trials: Vec<Trial>,
    /// The batch size to train with.
    pub batch_size: usize,
}

impl Scaled {
    /// `batch_size_find.csv`: each trial's batch size, whether it ran, its peak memory and why
    /// it failed.
    pub fn csv(&self) -> String {
        let mut out = String::from("trial,batch_size,ran,peak_mb,failure\n");
        for (i, t) in self.trials.iter().enumerate() {
            let (ran, peak, why) = match &t.outcome {
                Outcome::Ran { peak_mb } => (1, format!("{peak_mb:.1}"), String::new()),
                Outcome::Failed(why) => (0, String::new(), why.replace(',', ";")),
            };
            out.push_str(&format!("{i},{},{ran},{peak},{why}\n", t.batch_size));
        }
        out
    }
}

/// The sizes a search tries, given how each trial goes (`run`); Lightning's `power` and
/// `binsearch` scaling, capped at `limit` (the training split's size). Returns the trials
/// and the size found, or `None` when no size ran.
pub fn search(
    args: &BatchSizeArgs,
    limit: usize,
    mut run: impl FnMut(usize) -> std::result::Result<Outcome, RunError>,
) -> std::result::Result<(Vec<Trial>, Option<usize>), RunError> {
    let mut trials = Vec::new();
    let mut size = args.init_val.min(limit).max(1);
    let mut low: Option<usize> = None;
    let mut high: Option<usize> = None;
    while trials.len() < args.max_trials {
        let outcome = run(size)?;
        let ran = matches!(outcome, Outcome::Ran { .. });
        trials.push(Trial {
            batch_size: size,
            outcome,
        });
        let next = if ran {
            low = Some(size);
            match (args.mode, high) {
                (ScaleMode::Binsearch, Some(high)) => (size + high) / 2,
                _ => (size * 2).min(limit),
            }
        } else {
            high = Some(size);
            match (args.mode, low) {
                (ScaleMode::Power, _) => break,
                (ScaleMode::Binsearch, Some(low)) => (low + size) / 2,
                (ScaleMode::Binsearch, None) => size / 2,
            }
        };
        let tried = trials.iter().any(|t| t.batch_size == next);
        if next == 0 || next == size || tried {
            break;
        }
        size = next;
    }
    Ok((trials, low))
}

/// Runs the finder on the experiment `config` with `sets` applied; `limit` is the training
/// split's size.
pub fn find(
    config: &Path,
    sets: &[String],
    args: &BatchSizeArgs,
    limit: usize,
) -> std::result::Result<Scaled, RunError> {
    let scratch = Scratch::new("batch-size-find");
    let mut base = sets.to_vec();
    base.extend(short_run_sets(args.steps_per_trial, &scratch.dir));
    let (trials, found) = search(args, limit, |size| {
        let outcome = trial(config, &base, size, args.max_memory_mb)?;
        console::note(match &outcome {
            Outcome::Ran { peak_mb } => {
                format!("batch-size finder: batch size {size} ran (peak memory {peak_mb:.0} MiB)")
            }
            Outcome::Failed(why) => format!("batch-size finder: batch size {size} failed: {why}"),
        });
        Ok(outcome)
    })?;
    let batch_size = found.ok_or_else(|| {
        RunError::BadInput(format!(
            "batch-size finder: already batch size {} fails ({}); lower trainer.args.auto_scale_batch_size.init_val or raise max_memory_mb",
            trials[0].batch_size,
            match &trials[0].outcome {
                Outcome::Failed(why) => why.as_str(),
                Outcome::Ran { .. } => "",
            }
        ))
    })?;
    Ok(Scaled { trials, batch_size })
}

/// One trial: `steps_per_trial` steps at `size`, its peak memory measured.
fn trial(
    config: &Path,
    base: &[String],
    size: usize,
    max_memory_mb: Option<f64>,
) -> std::result::Result<Outcome, RunError> {
    let mut sets = base.to_vec();
    sets.push(format!("data.args.batch_size={size}"));
    release_and_reset_peak();
    let trained = crate::setup(config, &sets)
        .map_err(|e| RunError::BadInput(e.to_string()))
        .and_then(|assembled| {
            assembled.train(&TrainOptions {
                no_report: true,
                ..TrainOptions::default()
            })
        });
    let failure = match trained {
        Ok(_) => None,
        Err(RunError::Failed { message, .. } | RunError::BadInput(message))
            if message.contains("out of memory") =>
        {
            Some("out of memory".to_string())
        }
        Err(error) => return Err(error),
    };
    let peak_mb = peak_resident_mb();
    let outcome = match (failure, max_memory_mb) {
        (Some(why), _) => Outcome::Failed(why),
        (None, Some(max)) if peak_mb > max => Outcome::Failed(format!(
            "peak memory {peak_mb:.0} MiB is above max_memory_mb {max:.0}"
        )),
        (None, _) => Outcome::Ran { peak_mb },
    };
    release_and_reset_peak();
    Ok(outcome)
}

/// Gives the memory the allocator holds free back to the system and resets the kernel's
/// high-water mark of resident memory to what the process holds now.
fn release_and_reset_peak() {
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    // "5" resets VmHWM (Linux 4.0 and later); without it the peak only grows, which still
    // measures growing trials right.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident memory since the last reset, MiB (`VmHWM`).
fn peak_resident_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes a search tries when every size up to `fits` runs.
    fn sizes(mode: ScaleMode, fits: usize, limit: usize) -> (Vec<usize>, Option<usize>) {
        let args = BatchSizeArgs::of(mode);
        let (trials, found) = search(&args, limit, |size| {
            Ok(if size <= fits {
                Outcome::Ran { peak_mb: 1.0 }
            } else {
                Outcome::Failed("too big".into())
            })
        })
        .unwrap();
        (trials.iter().map(|t| t.batch_size).collect(), found)
    }

    #[test]
    fn power_doubles_until_a_trial_fails_and_keeps_the_last_that_ran() {
        // Lightning's power scaling from 2: 2, 4, ..., 64 fails, 32 is kept.
        assert_eq!(
            sizes(ScaleMode::Power, 40, 10_000),
            (vec![2, 4, 8, 16, 32, 64], Some(32))
        );
    }

    #[test]
    fn binsearch_bisects_between_the_last_that_ran_and_the_first_that_failed() {
        // 2 .. 64 as power, then between 32 (ran) and 64 (failed): 48 ran, 56 failed, 52 ran,
        // 54 failed, 53 failed; 52 is the largest that ran.
        assert_eq!(
            sizes(ScaleMode::Binsearch, 52, 10_000),
            (vec![2, 4, 8, 16, 32, 64, 48, 56, 52, 54, 53], Some(52))
        );
    }

    #[test]
    fn the_search_stops_at_the_training_split_and_at_max_trials() {
        // 100 samples: 2, ..., 64, then 100 (the whole split), which runs: no larger batch.
        assert_eq!(
            sizes(ScaleMode::Power, 1000, 100),
            (vec![2, 4, 8, 16, 32, 64, 100], Some(100))
        );
        let args = BatchSizeArgs {
            max_trials: 3,
            ..BatchSizeArgs::of(ScaleMode::Power)
        };
        let (trials, found) = search(&args, 10_000, |_| Ok(Outcome::Ran { peak_mb: 1.0 })).unwrap();
        assert_eq!(trials.len(), 3);
        assert_eq!(found, Some(8));
        // Nothing runs: no size.
        assert_eq!(sizes(ScaleMode::Power, 1, 100), (vec![2], None));
        assert_eq!(sizes(ScaleMode::Binsearch, 0, 100), (vec![2, 1], None));
    }
}
