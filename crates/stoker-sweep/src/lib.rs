//! Hyper-parameter search: `cargo xtask sweep SWEEP.yaml`.
//!
//! - [`space`]: the registered parameter types of a sweep file's `space:`.
//! - [`sampler`]: the registered samplers, `grid`, `random` and `tpe` (Optuna 5.0's).
//! - [`pruner`]: the registered pruners, `none`, `median`, `percentile` and
//!   `successive_halving` (Optuna's rules).

pub mod pruner;
pub mod sampler;
pub mod space;
pub mod journal;
