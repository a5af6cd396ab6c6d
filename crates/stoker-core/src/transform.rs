//! Time-frequency representations of signals, computed on the device: the `transform` kind of
//! component, which a multi-representation model names (`MultiTFR_CNN`'s `transforms:`).

use std::fmt::Debug;

use burn::tensor::Tensor;

use crate::error::Result;

/// A representation of signals `[batch, n]` as images `[batch, rows, cols]`.
pub trait SignalTransform: Debug + Send + Sync {
    /// The image of `x` (`[batch, n]`, the `n` the transform was built for).
    fn image(&self, x: Tensor<2>) -> Result<Tensor<3>>;

    /// The image's `[rows, cols]`.
    fn shape(&self) -> [usize; 2];
}
