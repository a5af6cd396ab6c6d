//! stoker's optimizers and learning-rate schedulers.
//!
//! Optimizers are update rules ([`rules`]) on burn-optim's `ModuleOptimizer`, each written as
//! PyTorch's single-tensor implementation computes it and checked against `torch.optim` over 100
//! steps: `sgd`, `adam`, `adamw`, `rmsprop`, `adagrad`, and `adabound` (against its authors'
//! reference). Every optimizer takes parameter [`groups`]. Schedulers: [`schedule`].

pub mod adabound;
pub mod adam;
pub mod check;
pub mod groups;
pub mod rmsprop;
pub mod rules;
pub mod schedule;
pub mod sgd;
pub mod state;
