//! Predictions against their targets: what losses and metrics both compute (the flattened
//! pair, squared errors, relative Lp errors, class labels), so that a metric and the loss of
//! the same name agree without one crate depending on the other.

use burn::tensor::{Int, Tensor};

use crate::batch::{Batch, Output};
use crate::error::{Result, StokerError};

/// `pred` and `target`, each flattened to `[batch, values]`, after checking they hold as many
/// values per sample.
pub fn pair(
    output: &Output,
    pred: &str,
    batch: &Batch,
    target: &str,
) -> Result<(Tensor<2>, Tensor<2>)> {
    let p = output.float_flat(pred)?;
    let t = batch.float_flat(target)?;
    if p.dims() != t.dims() {
        return Err(StokerError::msg(format!(
            "`{pred}` has shape {:?} but `{target}` has shape {:?}: they must hold as many values per sample",
            output.shape(pred)?,
            batch.shape(target)?
        )));
    }
    Ok((p, t))
}

/// `pred - target` flattened per sample, after checking the shapes agree.
pub fn difference(output: &Output, pred: &str, batch: &Batch, target: &str) -> Result<Tensor<2>> {
    let (p, t) = pair(output, pred, batch, target)?;
    Ok(p - t)
}

/// The squared errors of a prediction against its target, both flattened to `[batch, values]`.
pub fn squared_errors(
    output: &Output,
    pred: &str,
    batch: &Batch,
    target: &str,
) -> Result<Tensor<2>> {
    Ok(difference(output, pred, batch, target)?.square())
}

/// The Lp norm of each row, `[batch]`.
pub fn row_norm(x: Tensor<2>, p: f64) -> Tensor<1> {
    let [n, _] = x.dims();
    let summed = if p == 2.0 {
        x.square().sum_dim(1)
    } else {
        x.abs().powf_scalar(p).sum_dim(1)
    };
    summed.reshape([n]).powf_scalar(1.0 / p)
}

/// Per-sample relative Lp errors, `[batch]`.
pub fn relative_lp(pred: Tensor<2>, target: Tensor<2>, p: f64) -> Tensor<1> {
    row_norm(pred - target.clone(), p) / row_norm(target, p)
}

/// The class targets of a batch.
pub enum ClassTargets {
    /// Integer labels, `[batch]`.
    Labels(Tensor<1, Int>),
    /// Class probabilities, `[batch, classes]`: soft labels in the data, or labels mixed by the
    /// `mixup` and `cutmix` augmentations.
    Probabilities(Tensor<2>),
}

/// The class targets under `name`: integer labels stored as `[batch]` or `[batch, 1]`, or float
/// class probabilities `[batch, classes]`.
pub fn class_targets(batch: &Batch, name: &str) -> Result<ClassTargets> {
    if !batch.is_int(name)? {
        return match batch.shape(name)?.len() {
            2 => Ok(ClassTargets::Probabilities(batch.float::<2>(name)?)),
            _ => Err(StokerError::msg(format!(
                "`{name}` holds floats of shape {:?}; class targets are integer labels [batch] or probabilities [batch, classes]",
                batch.shape(name)?
            ))),
        };
    }
    Ok(ClassTargets::Labels(match batch.shape(name)?.as_slice() {
        [n, 1] => batch.int::<2>(name)?.reshape([*n]),
        _ => batch.int::<1>(name)?,
    }))
}

/// One label per sample for metrics: the labels, or the most probable class of probability
/// targets (the dominant class of a mixed sample).
pub fn hard_labels(batch: &Batch, name: &str) -> Result<Tensor<1, Int>> {
    match class_targets(batch, name)? {
        ClassTargets::Labels(labels) => Ok(labels),
        ClassTargets::Probabilities(p) => {
            let [n, _] = p.dims();
            Ok(p.argmax(1).reshape([n]))
        }
    }
}
