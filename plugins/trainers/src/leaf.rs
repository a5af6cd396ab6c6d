//! A batch tensor as an autodiff leaf: what a step needs for the gradient of the loss with
//! respect to its input.

use stoker::dataset::by_rank;
use stoker::prelude::*;

/// `batch` with its float tensor `name` replaced by a leaf that requires gradients, and that
/// leaf flattened to `[batch, values]` (the model sees the tensor in its own shape).
pub fn with_input_leaf(batch: &Batch, name: &str) -> Result<(Batch, Tensor<2>)> {
    let leaf = batch
        .float_flat(name)?
        .without_autodiff()
        .autodiff()
        .require_grad();
    let replaced = replaced(batch, name, leaf.clone())?;
    Ok((replaced, leaf))
}

/// `batch` with its tensor `name` replaced by `flat` (`[batch, values]`) in `name`'s shape.
pub fn replaced(batch: &Batch, name: &str, flat: Tensor<2>) -> Result<Batch> {
    replaced_as(batch, name, flat, &batch.shape(name)?)
}

/// `batch` with its tensor `name` replaced by `flat` (`[batch, values]`) in `shape`.
pub fn replaced_as(batch: &Batch, name: &str, flat: Tensor<2>, shape: &[usize]) -> Result<Batch> {
    let rank = shape.len();
    let bridge = by_rank!(rank, R => {
        let dims: [usize; R] = shape.try_into().expect("the rank matches");
        flat.reshape(dims).into_bridge()
    }, return Err(StokerError::msg(format!("`{name}` has an unsupported rank {rank}"))));
    let mut batch = batch.clone();
    batch.insert_bridge(name.to_string(), bridge);
    Ok(batch)
}
