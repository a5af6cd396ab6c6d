//! The loss contract.

use burn::tensor::Tensor;

use crate::batch::{Batch, Output};
use crate::error::Result;

/// A loss value: the scalar to back-propagate, and named terms logged on their own.
#[derive(Debug, Clone)]
pub struct LossValue {
    /// The total, shape `[1]`.
    pub total: Tensor<1>,
    /// Named parts of the total (empty for a single-term loss), each shape `[1]`.
    pub terms: Vec<(String, Tensor<1>)>,
}

impl LossValue {
    /// A single-term loss.
    pub fn single(total: Tensor<1>) -> Self {
        LossValue {
            total,
            terms: Vec::new(),
        }
    }
}

/// A built loss.
pub trait Loss: Send {
    /// The loss of one batch given the model's output.
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue>;
}

/// A physics constraint on a model's output: a PDE residual or a boundary condition, as a
/// penalty (usually a mean squared residual) that a `physics_informed` loss weighs in.
pub trait PhysicsTerm: Send {
    /// The penalty on one batch, shape `[1]`.
    fn penalty(&self, output: &Output, batch: &Batch) -> Result<Tensor<1>>;
}
