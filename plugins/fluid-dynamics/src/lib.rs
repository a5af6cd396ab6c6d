//! Learning the time evolution of fluid fields, as a stoker plugin.
//!
//! Registers, from this crate alone:
//! - the data `Trajectories` ([`trajectories::TrajectoriesSpec`]): a file of trajectories
//!   `[samples, time, points]` as next-step pairs (`x` = steps 0..T-1, `y` = steps 1..T);
//! - the model `FluidDecoder` ([`decoder::FluidDecoderSpec`]): a causal transformer decoder
//!   over time steps, trained teacher-forced for next-step prediction and evaluated by
//!   autoregressive rollout from the initial state;
//! - the metric `rollout` ([`rollout::RolloutSpec`]): rollout errors (relative L2 mean and
//!   final, MSE, MAE, boundary error, drift of the conserved mean), with the per-step table
//!   written as a CSV file beside the run.

pub mod blocks;
pub mod decoder;
pub mod rollout;
pub mod trajectories;
