//! stoker's losses.
//!
//! - `mse` ([`mse::MseSpec`]): mean squared error.
//! - `cross_entropy` ([`cross_entropy::CrossEntropySpec`]): softmax cross entropy.

pub mod cross_entropy;
pub mod mse;
pub mod names;
