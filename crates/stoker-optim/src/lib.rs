//! stoker's optimizers and learning-rate schedulers.
//!
//! Optimizers are burn-optim's, on its `ModuleOptimizer`, configured with PyTorch's defaults:
//! `sgd`, `adam`, `adamw`. Schedulers: `constant`, `cosine`.

pub mod adam;
pub mod check;
pub mod schedule;
pub mod sgd;
