//! `detect_anomaly`: NaN and Inf in the loss and the gradients.

use stoker::burn::optim::GradientsParams;
use stoker::burn::tensor::{Int, Tensor};
use stoker::error::{Result, StokerError};
use stoker::model::DynModel;

/// Where the loop is, for the message.
pub struct Place {
    /// The epoch.
    pub epoch: usize,
    /// The optimizer step being taken (1-based).
    pub step: usize,
    /// The batch of the epoch (0-based).
    pub batch: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "epoch {}, step {}, batch {} of the epoch",
            self.epoch, self.step, self.batch
        )
    }
}

/// Fails when the loss is not finite (reads it from the device).
pub fn check_loss(loss: &Tensor<1>, place: &Place) -> Result<()> {
    let value = loss.clone().into_scalar::<f64>();
    if value.is_finite() {
        Ok(())
    } else {
        Err(StokerError::msg(format!(
            "detect_anomaly: the loss is {value} at {place}; lower the learning rate, clip gradients (gradient_clip_val), or check the data"
        )))
    }
}

/// Fails when a gradient has a NaN or an infinite value, naming the first such parameter
/// (one device read for all parameters).
pub fn check_gradients(model: &dyn DynModel, grads: &GradientsParams, place: &Place) -> Result<()> {
    let flat = model.gradients_flat(grads);
    if flat.is_empty() {
        return Ok(());
    }
    let (paths, bad): (Vec<String>, Vec<Tensor<1, Int>>) = flat
        .into_iter()
        .map(|(path, g)| (path, g.is_finite().bool_not().any().int()))
        .unzip();
    let flags = Tensor::cat(bad, 0)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| StokerError::msg(format!("detect_anomaly: {e:?}")))?;
    match paths.iter().zip(flags).find(|(_, f)| *f != 0) {
        None => Ok(()),
        Some((path, _)) => Err(StokerError::msg(format!(
            "detect_anomaly: the gradient of parameter `{path}` has NaN or infinite values at {place}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_model::gradients;

    #[test]
    fn names_the_parameter_with_a_non_finite_gradient() {
        let place = Place {
            epoch: 2,
            step: 31,
            batch: 4,
        };
        let (model, grads) = gradients([1.0, 2.0, 3.0, 4.0]);
        assert!(check_gradients(model.as_ref(), &grads, &place).is_ok());
        let (model, grads) = gradients([1.0, f32::NAN, 3.0, 4.0]);
        let error = check_gradients(model.as_ref(), &grads, &place)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "detect_anomaly: the gradient of parameter `a.weight` has NaN or infinite values at epoch 2, step 31, batch 4 of the epoch"
        );
        let (model, grads) = gradients([1.0, 2.0, f32::INFINITY, 4.0]);
        assert!(check_gradients(model.as_ref(), &grads, &place).is_err());
    }
}
