//! stoker's metrics. Each accumulates exactly over an epoch, on the device.
//!
//! - `loss` ([`loss::LossMetricSpec`]): the epoch's mean loss (always tracked).
//! - `mse` ([`mse::MseMetricSpec`]): mean squared error.
//! - `accuracy` ([`accuracy::AccuracySpec`]): top-1 accuracy.

pub mod accuracy;
pub mod loss;
pub mod mse;
pub mod sum;
