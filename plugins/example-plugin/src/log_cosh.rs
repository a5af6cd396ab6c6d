//! `log_cosh`: a smooth loss, quadratic near zero and linear far from it.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

/// Log-cosh loss: the mean of log(cosh(pred - target)), like mse for small errors and like l1 for large ones.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "log_cosh")]
pub struct LogCoshSpec {
    /// The model output compared.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor it is compared with.
    #[serde(default = "default_target")]
    pub target: String,
}

fn default_pred() -> String {
    "pred".into()
}

fn default_target() -> String {
    "y".into()
}

/// The built loss.
pub struct LogCosh {
    pred: String,
    target: String,
}

/// log(cosh(d)) without overflow: |d| + log(1 + exp(-2|d|)) - log(2).
pub fn log_cosh<const D: usize>(d: Tensor<D>) -> Tensor<D> {
    let a = d.abs();
    a.clone() + a.mul_scalar(-2.0).exp().log1p() - std::f64::consts::LN_2
}

impl Loss for LogCosh {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let pred = output.float_flat(&self.pred)?;
        let target = batch.float_flat(&self.target)?;
        if pred.dims() != target.dims() {
            return Err(StokerError::msg(format!(
                "`{}` has shape {:?} but `{}` has shape {:?}",
                self.pred,
                pred.dims(),
                self.target,
                target.dims()
            )));
        }
        Ok(LossValue::single(log_cosh(pred - target).mean()))
    }
}

impl LossSpec for LogCoshSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        let data = ctx.data()?;
        data.require("target", &self.target)?;
        Ok(Box::new(LogCosh {
            pred: self.pred.clone(),
            target: self.target.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_values() {
        // log(cosh(0)) = 0, log(cosh(1)) = 0.43378083..., log(cosh(-2)) = 1.32500274...,
        // log(cosh(30)) = 30 - log 2 (where cosh itself would be fine, but e^60 is close to overflow in f32).
        let d = Tensor::<1>::from_floats([0.0, 1.0, -2.0, 30.0], &Device::flex());
        let values = log_cosh(d).into_data().try_to_vec::<f32>().unwrap();
        let expected = [
            0.0,
            0.433_780_83,
            1.325_002_7,
            30.0 - std::f32::consts::LN_2,
        ];
        for (v, e) in values.iter().zip(expected) {
            assert!((v - e).abs() < 1e-5, "{v} vs {e}");
        }
    }
}
