//! stoker's training loop.
//!
//! - `Default_trainer` ([`spec::DefaultTrainerSpec`], run by [`fit::DefaultTrainer`]).
//! - [`evaluate::evaluate`]: the evaluation loop `stoker eval` shares.
//! - [`predict::predict`]: predictions for a split, written to a file.
//! - [`clip`], [`anomaly`], [`signals`]: gradient clipping, NaN/Inf detection, SIGINT/SIGTERM.
//! - [`progress`], [`summary`]: the per-epoch progress bar and the model summary.
//! - [`profile`]: the mean time of each phase of a training step.
//! - [`prefetch`]: training batches prepared in the loop or ahead by worker threads.

pub mod anomaly;
pub mod clip;
pub mod evaluate;
pub mod fit;
pub mod predict;
pub mod prefetch;
pub mod profile;
pub mod progress;
pub mod signals;
pub mod spec;
pub mod summary;
#[cfg(test)]
mod test_model;
