//! stoker's losses, each checked against `torch.nn.functional` or a reference implementation
//! (values and gradients; `tests/torch_reference.rs`).
//!
//! - Regression: `mse`, `l1`, `huber`, `smooth_l1`; neural operators: `relative_lp`, `h1`.
//! - Classification: `cross_entropy` (weights, ignore_index, label_smoothing),
//!   `label_smoothing_cross_entropy`, `bce_with_logits`, `focal`, `distillation`, `supcon`.
//! - Composite: `weighted_sum`; physics: `physics_informed` with the physics terms
//!   `poisson_residual` and `dirichlet_boundary`, and `conservation`.

pub mod classification;
pub mod composite;
pub mod cross_entropy;
pub mod distillation;
pub mod mse;
pub mod physics;
pub mod pointwise;
pub mod relative;
pub mod supcon;
