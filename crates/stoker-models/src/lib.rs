//! stoker's general-purpose models.
//!
//! - `MLP` ([`mlp::MlpSpec`]): a multi-layer perceptron.

pub mod activation;
pub mod mlp;
