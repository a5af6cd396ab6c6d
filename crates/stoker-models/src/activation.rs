//! Activation functions selectable by name in YAML.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::{Tensor, activation};

/// An elementwise activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x).
    #[default]
    Relu,
    /// Gaussian error linear unit (exact, erf-based, as `torch.nn.GELU()`).
    Gelu,
    /// tanh(x).
    Tanh,
    /// 1 / (1 + exp(-x)).
    Sigmoid,
    /// x * sigmoid(x).
    Silu,
    /// x (no activation).
    Identity,
}

impl Activation {
    /// Applies the activation.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => stoker::native::relu(x),
            Activation::Gelu => activation::gelu(x),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::Silu => activation::silu(x),
            Activation::Identity => x,
        }
    }
}
