//! stoker's metrics. Each accumulates exactly over an epoch (sums and counts on the device, not
//! a mean of batch means) and is checked against scikit-learn (`tests/sklearn_reference.rs`).
//!
//! - `loss` ([`loss::LossMetricSpec`]): the epoch's mean loss (always tracked).
//! - Regression: `mse`, `mae`, `rmse`, `r2`, `rel_l2`, `max_error` ([`regression`]).
//! - Classification: `accuracy`, `top_k_accuracy`, `precision`, `recall`, `f1`, `per_class`,
//!   `confusion_matrix` ([`classification`]).

pub mod accuracy;
pub mod classification;
pub mod loss;
pub mod mse;
pub mod regression;
pub mod sum;
